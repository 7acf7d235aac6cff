"""Object storage (S3 API): SeaweedFS by default, AWS S3 or MinIO by settings.

Every object key starts with its owner's id, so one user's objects can never be listed or
addressed through another user's prefix.
"""

from __future__ import annotations

import re
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from services.common.errors import InvalidInput
from services.common.outbound import OutboundPolicy, guard_boto_client, policy_for
from services.common.settings import BaseServiceSettings

_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


# What S3 (and look-alikes) answer when credentials are wrong or lack the permission.
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "401"}
)


def error_code(error: ClientError) -> str:
    """The S3 error code of a failed call ("NoSuchKey", "AccessDenied", "404", ...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def s3_client(settings: BaseServiceSettings) -> Any:
    """The platform's own object store."""
    secret = settings.s3_secret_access_key
    return bucket_client(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
    )


def bucket_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    max_attempts: int = 5,
    timeout_seconds: float = 60,
    policy: OutboundPolicy | None = None,
    max_response_bytes: int = 64 * 1024 * 1024,
) -> Any:
    """An S3 client for any S3-compatible store: ours, or a bucket a user attached. A user's
    bucket gets its `policy` (attached_bucket_policy): every request goes through the
    outbound guard, so its address is checked at each connection."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or "us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=min(timeout_seconds, 10),
            read_timeout=timeout_seconds,
        ),
    )
    if policy is None:
        return client
    return guard_boto_client(
        client, policy, timeout=timeout_seconds, max_response_bytes=max_response_bytes
    )


def attached_bucket_policy(
    settings: BaseServiceSettings, *, allow_private: bool | None = None
) -> OutboundPolicy:
    """What a bucket a user attaches may be: never our own store; private or loopback only
    when the operator allows it (RAG_ALLOW_PRIVATE_BUCKET_ENDPOINTS)."""
    return policy_for(
        settings,
        purpose="bucket endpoint",
        allow_private=settings.rag_allow_private_bucket_endpoints
        if allow_private is None
        else allow_private,
        refused_urls=[settings.s3_endpoint_url],
        own_endpoint_message="That endpoint is Forgeline's own object store; upload your "
        "documents to the knowledge base instead of attaching it.",
    )


def ensure_bucket(client: Any, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        client.create_bucket(Bucket=bucket)


def owner_key(owner_id: str, *parts: str) -> str:
    """`<owner>/<part>/<part>`; refuses parts that could climb out of the owner's prefix."""
    for part in (owner_id, *parts):
        if not _SAFE_PART.match(part) or ".." in part:
            raise InvalidInput("invalid_object_name", f"'{part}' is not a valid object name.")
    return "/".join((owner_id, *parts))
