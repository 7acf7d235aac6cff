"""What may be attached as a user's bucket, and what a failed dry run tells the user."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from services.common.errors import InvalidInput
from services.common.settings import BaseServiceSettings
from services.rag import attached_buckets

OWN_STORE = BaseServiceSettings(s3_endpoint_url="http://127.0.0.1:8333")


def refused(endpoint: str, *, allow_private: bool = False) -> str:
    with pytest.raises(InvalidInput) as caught:
        attached_buckets.check_endpoint(endpoint, settings=OWN_STORE, allow_private=allow_private)
    return caught.value.code


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9000",
        "http://localhost:9000",
        "http://10.0.0.5",
        "http://192.168.1.20:9000",
        "http://169.254.169.254/latest/meta-data",  # a cloud's metadata service
        "http://[::1]:9000",
    ],
)
def test_private_and_local_endpoints_are_refused_by_default(endpoint: str) -> None:
    assert refused(endpoint) == "endpoint_not_allowed"


def test_the_platforms_own_store_is_refused_even_when_private_ones_are_allowed() -> None:
    assert refused("http://127.0.0.1:8333", allow_private=True) == "endpoint_not_allowed"
    assert refused("http://localhost:8333/", allow_private=True) == "endpoint_not_allowed"
    # other spellings of this machine reach the same store
    for other in ("http://0.0.0.0:8333", "http://[::ffff:127.0.0.1]:8333", "http://[::1]:8333"):
        assert refused(other, allow_private=True) == "endpoint_not_allowed", other
    # another port on the same machine is someone's MinIO, which the operator allowed
    attached_buckets.check_endpoint("http://127.0.0.1:9000", settings=OWN_STORE, allow_private=True)


def test_aws_itself_and_public_endpoints_pass() -> None:
    attached_buckets.check_endpoint(None, settings=OWN_STORE, allow_private=False)
    attached_buckets.check_endpoint("https://8.8.8.8:443", settings=OWN_STORE, allow_private=False)


@pytest.mark.parametrize("endpoint", ["ftp://files.example", "http://", "http://host:port"])
def test_malformed_endpoints_are_refused(endpoint: str) -> None:
    assert refused(endpoint, allow_private=True) == "invalid_endpoint"


@pytest.mark.parametrize(
    ("error_code", "expected"),
    [
        ("NoSuchBucket", "bucket_not_found"),
        ("AccessDenied", "bucket_access_denied"),
        ("InvalidAccessKeyId", "bucket_access_denied"),
        ("SignatureDoesNotMatch", "bucket_access_denied"),
        ("InternalError", "bucket_unreachable"),
    ],
)
def test_a_failed_dry_run_says_why(
    monkeypatch: pytest.MonkeyPatch, error_code: str, expected: str
) -> None:
    client: Any = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    stubber = Stubber(client)
    stubber.add_client_error("list_objects_v2", service_error_code=error_code)
    stubber.activate()
    monkeypatch.setattr(attached_buckets, "bucket_client", lambda **_: client)
    with pytest.raises(InvalidInput) as caught:
        attached_buckets.dry_run(
            bucket="docs",
            prefix="p/",
            endpoint_url=None,
            region=None,
            access_key_id="a",
            secret_access_key="the-secret",
        )
    assert caught.value.code == expected
    assert "the-secret" not in str(caught.value)
