"""Presigned upload forms for what a training machine stores: checkpoints and artefacts.

A presigned PUT URL accepts a body of any size for as long as it lives, so a leaked one
could fill the object store's disk. A presigned POST carries a signed policy that the store
itself enforces (S3, GCS's XML API and SeaweedFS do): the one key, and at most `max_bytes`
(`content-length-range`). The node posts the file as multipart form data
(services/trainer/engine/node_bootstrap.py: upload).
"""

from __future__ import annotations

from typing import Any, TypedDict

# S3 takes at most 5 GiB in one POST (or PUT): past that a file needs a multipart upload.
S3_SINGLE_UPLOAD_MAX_BYTES = 5 * 1024**3


class UploadForm(TypedDict):
    url: str
    fields: dict[str, str]
    max_bytes: int


def upload_form(s3: Any, bucket: str, key: str, *, max_bytes: int, seconds: int) -> UploadForm:
    """A form that stores one file of 1 to `max_bytes` bytes at `key` for `seconds`."""
    post = s3.generate_presigned_post(
        bucket, key, Conditions=[["content-length-range", 1, max_bytes]], ExpiresIn=seconds
    )
    return {"url": post["url"], "fields": dict(post["fields"]), "max_bytes": max_bytes}
