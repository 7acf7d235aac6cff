"""Uploads to the object store, shared by every route that takes files (knowledge-base
documents, datasets): safe names, size limits checked before the first byte is written,
zip expansion, and nothing half-written when the store fails."""

from __future__ import annotations

import io
import mimetypes
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, BinaryIO

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import UploadFile
from fastapi.concurrency import run_in_threadpool

from services.common.archives import ArchiveLimits, iter_zip_members
from services.common.errors import InvalidInput, NotFound, PayloadTooLarge, Unavailable
from services.common.logging import get_logger

log = get_logger(__name__)

MAX_NAME_BYTES = 255
MAX_KEY_BYTES = 1024  # S3's limit
_SPACES = re.compile(r"\s+")
# Bidirectional overrides and isolates make `report‮fdp.exe` read as `reportexe.pdf`.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


@dataclass(frozen=True)
class StoredObject:
    name: str
    source: str
    key: str
    etag: str
    size: int


@dataclass(frozen=True)
class UploadQuota:
    """How much one user's uploads (datasets and knowledge-base documents together) may
    take in the platform's store; 0: no quota."""

    owner_id: str
    max_bytes: int

    @property
    def prefixes(self) -> tuple[str, ...]:
        return (f"{self.owner_id}/datasets/", f"{self.owner_id}/kbs/")


@dataclass(frozen=True)
class ObjectToStore:
    name: str
    key: str
    body: BinaryIO


def safe_file_name(raw: str | None) -> str:
    """A file name fit to be the last part of an object key, kept readable.

    Unicode is put in NFC form and runs of whitespace become one space. Path separators,
    `..`, a leading dot, control characters and bidirectional overrides are refused, as are
    names over 255 bytes.
    """
    name = _SPACES.sub(" ", unicodedata.normalize("NFC", raw or "")).strip()
    problem: str | None = None
    if not name:
        problem = "is empty"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator ('/' or '\\')"
    elif ".." in name:
        problem = "contains '..'"
    elif name.startswith("."):
        problem = "starts with a dot, which marks a hidden file"
    elif any(unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS for ch in name):
        problem = "contains control characters"
    elif len(name.encode()) > MAX_NAME_BYTES:
        problem = f"is longer than {MAX_NAME_BYTES} bytes"
    if problem is not None:
        raise InvalidInput(
            "invalid_file_name",
            f"The file name '{printable(raw or '')}' {problem}; rename the file and upload it "
            "again.",
        )
    return name


def printable(text: str) -> str:
    shown = "".join(ch if ch.isprintable() and ch not in _BIDI_CONTROLS else "?" for ch in text)
    return shown if len(shown) <= 100 else shown[:99] + "…"


def object_key(prefix: str, name: str) -> str:
    key = prefix + name
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidInput(
            "invalid_file_name", f"The name '{printable(name)}' is too long to be stored."
        )
    return key


def file_size(file: BinaryIO) -> int:
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(0)
    return size


def mib(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MiB" if size >= 1024 * 1024 else f"{size:,} bytes"


async def store_upload(
    upload: UploadFile,
    *,
    prefix: str,
    bucket: str,
    s3: Any,
    max_bytes: int,
    expand_zip: bool,
    quota: UploadQuota | None = None,
) -> list[StoredObject]:
    """Check one uploaded file whole, then store it (or, with `expand_zip`, each member of a
    zip as its own object).

    Every check happens before the first byte is written; if a write fails, what this file
    had already written is deleted again.
    """
    name = safe_file_name(upload.filename)
    if await run_in_threadpool(file_size, upload.file) > max_bytes:
        raise PayloadTooLarge(
            "file_too_large",
            f"'{name}' is larger than {mib(max_bytes)}, the most one file may be.",
        )
    if expand_zip and os.path.splitext(name)[1].lower() == ".zip":
        objects = await run_in_threadpool(zip_objects, upload.file, name, prefix, max_bytes)
    else:
        objects = [ObjectToStore(name=name, key=object_key(prefix, name), body=upload.file)]
    if quota is not None and quota.max_bytes:
        await run_in_threadpool(check_quota, s3, bucket, quota, name, objects)
    return await run_in_threadpool(put_all, s3, bucket, objects, upload.filename or name)


def stored_upload_bytes(s3: Any, bucket: str, quota: UploadQuota) -> int:
    total = 0
    try:
        for prefix in quota.prefixes:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                total += sum(int(obj.get("Size", 0)) for obj in page.get("Contents", []))
    except (BotoCoreError, ClientError) as error:
        raise storage_unavailable() from error
    return total


def check_quota(
    s3: Any, bucket: str, quota: UploadQuota, name: str, objects: list[ObjectToStore]
) -> None:
    """Refuses a file that would take the user's uploads past the quota. Two uploads at the
    same moment can each pass and overshoot by one file; the next is refused."""
    incoming = sum(file_size(obj.body) for obj in objects)
    used = stored_upload_bytes(s3, bucket, quota)
    if used + incoming > quota.max_bytes:
        raise PayloadTooLarge(
            "quota_exceeded",
            f"'{name}' ({mib(incoming)}) would take your uploads past your quota of "
            f"{mib(quota.max_bytes)} ({mib(used)} used). Delete datasets or documents you no "
            "longer need, or ask an administrator for more.",
        )


def zip_objects(file: BinaryIO, archive: str, prefix: str, limit: int) -> list[ObjectToStore]:
    defaults = ArchiveLimits()
    limits = ArchiveLimits(max_member_bytes=min(defaults.max_member_bytes, limit))
    file.seek(0)
    # Gather every member first: the archive may be refused after some were read.
    members = list(iter_zip_members(file, limits=limits))
    if not members:
        raise InvalidInput("archive_empty", f"'{archive}' holds no files.")
    objects = []
    for member in members:
        try:
            name = "/".join(safe_file_name(part) for part in member.name.split("/"))
        except InvalidInput as error:
            raise InvalidInput(error.code, f"In '{archive}': {error.message}") from None
        objects.append(
            ObjectToStore(name=name, key=object_key(prefix, name), body=io.BytesIO(member.data))
        )
    return objects


def storage_unavailable() -> Unavailable:
    return Unavailable(
        "storage_unavailable",
        "The object store is not reachable right now. Please try again shortly.",
    )


def put_all(s3: Any, bucket: str, objects: list[ObjectToStore], source: str) -> list[StoredObject]:
    stored: list[StoredObject] = []
    try:
        for obj in objects:
            obj.body.seek(0)
            content_type = mimetypes.guess_type(obj.name)[0] or "application/octet-stream"
            s3.upload_fileobj(obj.body, bucket, obj.key, ExtraArgs={"ContentType": content_type})
            head = s3.head_object(Bucket=bucket, Key=obj.key)
            stored.append(
                StoredObject(
                    name=obj.name,
                    source=source,
                    key=obj.key,
                    etag=str(head["ETag"]).strip('"'),
                    size=int(head["ContentLength"]),
                )
            )
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        log.warning("object store write failed", bucket=bucket, error=type(exc).__name__)
        for done in stored:  # nothing half-written: take back this file's other objects
            try:
                s3.delete_object(Bucket=bucket, Key=done.key)
            except (BotoCoreError, ClientError):
                log.error("could not remove a partly uploaded object", key=done.key)
        raise storage_unavailable() from None
    return stored


def delete_object(s3: Any, bucket: str, key: str) -> None:
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as exc:
        log.warning("object store delete failed", bucket=bucket, error=type(exc).__name__)
        raise storage_unavailable() from None


def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:  # a page holds at most 1,000 keys, as many as one delete_objects takes
                done = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                if done.get("Errors"):
                    log.error("some objects not deleted", bucket=bucket, count=len(done["Errors"]))
    except (BotoCoreError, ClientError) as exc:
        log.warning("object store delete failed", bucket=bucket, error=type(exc).__name__)
        raise storage_unavailable() from None


def open_object(s3: Any, bucket: str, key: str) -> tuple[Any, str, int]:
    """The object's streaming body, content type and size; NotFound when it is gone."""
    try:
        reply = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise NotFound("document_not_found", "No such document.") from None
        log.warning("object store read failed", bucket=bucket, error=type(exc).__name__)
        raise storage_unavailable() from None
    except BotoCoreError as exc:
        log.warning("object store read failed", bucket=bucket, error=type(exc).__name__)
        raise storage_unavailable() from None
    content_type = (
        mimetypes.guess_type(key)[0] or reply.get("ContentType") or "application/octet-stream"
    )
    return reply["Body"], content_type, int(reply.get("ContentLength") or 0)
