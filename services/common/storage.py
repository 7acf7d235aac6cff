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
from services.common.settings import BaseServiceSettings

_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def s3_client(settings: BaseServiceSettings) -> Any:
    secret = settings.s3_secret_access_key
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
        ),
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
