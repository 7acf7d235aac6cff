"""Checks on a bucket a user attaches to a knowledge base, before anything is stored.

Two things can go wrong with someone else's endpoint:

- it may point inside our own network: the platform's object store (whose other tenants'
  prefixes the user could then read with its credentials), a cloud metadata address, or any
  private service the indexer can reach but the user cannot (SSRF). Private, loopback and
  link-local endpoints are refused unless the operator allows them (a MinIO next to a
  one-machine install); the platform's own store is always refused;
- the credentials may not work. A dry run (list one key under the prefix) answers now, with a
  stable code, instead of as a document that fails later for reasons the user cannot see.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from services.common.errors import InvalidInput
from services.common.outbound import OutboundPolicy, OutboundRefused
from services.common.settings import BaseServiceSettings
from services.common.storage import (
    ACCESS_DENIED_CODES,
    attached_bucket_policy,
    bucket_client,
    error_code,
)


def check_endpoint(
    endpoint_url: str | None, *, settings: BaseServiceSettings, allow_private: bool
) -> None:
    """Refuses endpoints inside our network (see the module docstring), now, with a clear
    code; the indexer's client checks again at every connection (DNS can change)."""
    if endpoint_url is None:  # AWS S3 itself
        return
    try:
        attached_bucket_policy(settings, allow_private=allow_private).check_url(endpoint_url)
    except OutboundRefused as refused:
        if refused.code == "endpoint_unreachable":
            raise InvalidInput("bucket_unreachable", refused.message) from None
        raise


def dry_run(
    *,
    bucket: str,
    prefix: str,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str,
    secret_access_key: str,
    policy: OutboundPolicy | None = None,
) -> None:
    """Lists one key under the prefix with the user's credentials, or says why it cannot."""
    client: Any = bucket_client(
        policy=policy,
        endpoint_url=endpoint_url,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        max_attempts=2,
        timeout_seconds=10,
    )
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ClientError as error:
        code = error_code(error)
        if code in {"NoSuchBucket", "404"}:
            raise InvalidInput(
                "bucket_not_found", f"There is no bucket named '{bucket}' at that endpoint."
            ) from None
        if code in ACCESS_DENIED_CODES:
            raise InvalidInput(
                "bucket_access_denied",
                "Those credentials cannot list the bucket; they need s3:ListBucket and "
                "s3:GetObject on it.",
            ) from None
        raise InvalidInput(
            "bucket_unreachable", f"The bucket answered with an error ({code or 'unknown'})."
        ) from None
    except (EndpointConnectionError, BotoCoreError) as error:
        raise InvalidInput(
            "bucket_unreachable", f"The bucket's endpoint did not answer: {type(error).__name__}."
        ) from None
