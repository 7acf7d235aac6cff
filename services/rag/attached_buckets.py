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

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from services.common.errors import InvalidInput
from services.common.settings import BaseServiceSettings
from services.common.storage import ACCESS_DENIED_CODES, bucket_client, error_code


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(
            "invalid_endpoint", "The endpoint must be an http:// or https:// URL with a host."
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a port that is not a number
        raise InvalidInput("invalid_endpoint", "The endpoint's port is not valid.") from exc
    return parts.hostname.lower(), port


def _addresses(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise InvalidInput(
            "bucket_unreachable", f"The endpoint's host '{host}' could not be resolved."
        ) from exc
    return {_canonical(ipaddress.ip_address(str(info[4][0]).split("%")[0])) for info in infos}


# Every spelling of "this machine" connects to the same servers: 0.0.0.0 and :: do too, and
# an IPv4-mapped IPv6 address is its IPv4 address. They are compared as one address, or
# http://0.0.0.0:<port> would pass for a different endpoint than http://127.0.0.1:<port>.
_THIS_MACHINE = ipaddress.ip_address("127.0.0.1")


def _canonical(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return _THIS_MACHINE
    return address


def check_endpoint(
    endpoint_url: str | None, *, settings: BaseServiceSettings, allow_private: bool
) -> None:
    """Refuses endpoints inside our network (see the module docstring)."""
    if endpoint_url is None:  # AWS S3 itself
        return
    host, port = _host_port(endpoint_url)
    addresses = _addresses(host, port)
    if settings.s3_endpoint_url:
        own_host, own_port = _host_port(settings.s3_endpoint_url)
        if own_port == port and addresses & _addresses(own_host, own_port):
            raise InvalidInput(
                "endpoint_not_allowed",
                "That endpoint is Forgeline's own object store; upload your documents to the "
                "knowledge base instead of attaching it.",
            )
    if allow_private:
        return
    for address in addresses:
        if not address.is_global:
            raise InvalidInput(
                "endpoint_not_allowed",
                "That endpoint is a private or local address, which this platform does not "
                "reach on a user's behalf. An administrator can allow it with "
                "RAG_ALLOW_PRIVATE_BUCKET_ENDPOINTS=true.",
            )


def dry_run(
    *,
    bucket: str,
    prefix: str,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str,
    secret_access_key: str,
) -> None:
    """Lists one key under the prefix with the user's credentials, or says why it cannot."""
    client: Any = bucket_client(
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
