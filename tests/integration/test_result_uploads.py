"""A training machine stores its results through presigned upload forms that the object
store itself holds to a size and to one key: a leaked link can neither fill the store's disk
nor write anywhere else (issue 14, resource exhaustion)."""

from __future__ import annotations

import secrets
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from services.trainer.result_uploads import upload_form
from tests.integration.conftest import Stack
from tests.integration.kb_helpers import platform_s3


def test_an_upload_form_holds_to_its_size_and_key(
    stack: Stack, tmp_path: Path, node_bootstrap: ModuleType
) -> None:
    s3 = platform_s3(stack.platform)
    bucket = stack.platform.env.get("S3_BUCKET", "forgeline")
    key = f"probe-{secrets.token_hex(4)}/jobs/j1/artefacts/adapter.tar.gz"
    form = upload_form(s3, bucket, key, max_bytes=1000, seconds=60)

    small = tmp_path / "small.tar.gz"
    small.write_bytes(b"x" * 500)
    node_bootstrap.upload(form, small)
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 500

    # The node says why before it sends anything...
    big = tmp_path / "big.tar.gz"
    big.write_bytes(b"y" * 5000)
    with pytest.raises(ValueError, match="5000 bytes, over the 1000"):
        node_bootstrap.upload(form, big)
    # ...and the store refuses it from anyone holding the form.
    oversized = httpx.post(form["url"], data=form["fields"], files={"file": big.read_bytes()})
    assert oversized.status_code == 400 and "EntityTooLarge" in oversized.text
    elsewhere = httpx.post(
        form["url"],
        data={**form["fields"], "key": key.replace("j1", "another-job")},
        files={"file": b"z" * 10},
    )
    assert elsewhere.status_code == 403
    empty = httpx.post(form["url"], data=form["fields"], files={"file": b""})
    assert empty.status_code == 400
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"x" * 500  # untouched
