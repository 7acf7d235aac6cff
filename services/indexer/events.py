"""Bucket notifications from three sources → one `BucketEvent` model.

The indexer learns about puts and deletes in a knowledge base's bucket from:

- AWS S3 event notifications (`{"Records": [...]}`), read from SQS, possibly wrapped in an SNS
  envelope (S3 → SNS → SQS);
- MinIO, which sends the same records through its webhook and Redis targets;
- SeaweedFS (the embedded default), whose filer posts its own `EventNotification` JSON to a
  webhook (`notification.toml`, see `services/supervisor/seaweedfs_notifications.py`).

The parsers are pure: no network, no clock. They keep what the indexer needs to apply an event
idempotently (bucket, key, ETag/version) and drop everything else. Delivery order is not
guaranteed by any of the sources, so a consumer re-checks the object (`head_object`) before it
acts, and the periodic reconcile pass heals lost events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from services.common.timestamps import as_utc

EventKind = Literal["put", "delete"]
EventSource = Literal["s3", "minio", "seaweedfs"]


class EventParseError(ValueError):
    """The body is not valid JSON, or not a bucket notification of the expected shape."""


class BucketEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: EventKind
    bucket: str
    key: str  # decoded: "docs/My Report.pdf", never "docs%2FMy+Report.pdf"
    etag: str | None = None  # without quotes, as head_object's ETag once stripped
    version_id: str | None = None
    # S3's hex sequencer: compare two events on the same key after left-padding with zeros.
    sequencer: str | None = None
    size: int | None = None
    event_time: datetime | None = None  # aware, UTC
    source: EventSource

    @field_validator("etag")
    @classmethod
    def _strip_quotes(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip('"') or None

    @field_validator("event_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _event(**fields: Any) -> BucketEvent:
    """A BucketEvent, or EventParseError for a field of the wrong type (an `eTag` of 42):
    a body we can never read must be dropped by the consumer, not retried forever."""
    try:
        return BucketEvent(**fields)
    except ValidationError as error:
        raise EventParseError(f"an event field has the wrong type: {error}") from error


def _load(body: str | bytes | dict[str, Any] | list[Any]) -> Any:
    if isinstance(body, dict | list):
        return body
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EventParseError(f"bucket event body is not valid JSON: {error}") from error


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)  # 3.11 reads "2026-11-29T06:33:23.731Z"
    except ValueError as error:
        raise EventParseError(f"bad eventTime {value!r}") from error


def _require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EventParseError(f"{what} is not a JSON object")
    return value


# ---------------------------------------------------------------------------------------------
# AWS S3 (and the records MinIO sends)

# AWS names events "ObjectCreated:Put"; MinIO prefixes the same names with "s3:".
_PUT_PREFIXES = ("ObjectCreated:",)
_DELETE_PREFIXES = (
    "ObjectRemoved:",  # Delete, DeleteMarkerCreated (MinIO also: DeleteAllVersions, NoOP)
    "LifecycleExpiration:",  # Delete, DeleteMarkerCreated: the object is gone just the same
)


def _kind_of(event_name: str) -> EventKind | None:
    name = event_name.removeprefix("s3:")
    if name.startswith(_PUT_PREFIXES):
        return "put"
    if name.startswith(_DELETE_PREFIXES):
        return "delete"
    return None  # ObjectRestore, ObjectTagging, Replication, ObjectAccessed, ...


def _events_from_records(records: Any, source: EventSource) -> list[BucketEvent]:
    if not isinstance(records, list):
        raise EventParseError("'Records' is not a list")
    events = []
    for record in records:
        record = _require_dict(record, "an S3 event record")
        kind = _kind_of(str(record.get("eventName", "")))
        if kind is None:
            continue
        s3 = _require_dict(record.get("s3"), "'s3' in an event record")
        bucket = _require_dict(s3.get("bucket"), "'s3.bucket'").get("name")
        obj = _require_dict(s3.get("object"), "'s3.object'")
        raw_key = obj.get("key")
        if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str):
            raise EventParseError("an event record has no bucket name or object key")
        size = obj.get("size")
        events.append(
            _event(
                kind=kind,
                bucket=bucket,
                # Keys are form-encoded: "+" is a space, "%2B" a plus (moto also encodes "/").
                key=unquote_plus(raw_key),
                etag=obj.get("eTag") or None,
                version_id=obj.get("versionId") or None,
                sequencer=obj.get("sequencer") or None,
                size=size if isinstance(size, int) else None,
                event_time=_parse_time(record.get("eventTime")),
                source=source,
            )
        )
    return events


def parse_s3_event(body: str | bytes | dict[str, Any]) -> list[BucketEvent]:
    """An S3 event notification as read from SQS: `{"Records": [...]}`, or the same JSON inside
    an SNS envelope (`{"Type": "Notification", "Message": "<json>"}`).

    The `s3:TestEvent` sent when a notification configuration is saved yields no events, and so
    do event names other than ObjectCreated:* / ObjectRemoved:* / LifecycleExpiration:*.
    """
    data = _require_dict(_load(body), "an S3 event body")
    if "Type" in data and "Message" in data and "Records" not in data:
        if data["Type"] != "Notification":  # SubscriptionConfirmation and the like
            return []
        message = data["Message"]
        if not isinstance(message, str):
            raise EventParseError("SNS 'Message' is not a string")
        data = _require_dict(_load(message), "an SNS message")
    if data.get("Event") == "s3:TestEvent":
        return []
    if "Records" not in data:
        raise EventParseError("not an S3 event notification: no 'Records'")
    return _events_from_records(data["Records"], "s3")


# ---------------------------------------------------------------------------------------------
# MinIO
#
# Shapes from MinIO's documentation and source (internal/event/target/webhook.go, redis.go,
# internal/event/event.go); no MinIO binary is available here, so the fixtures are written from
# those documents, not captured:
#
# - webhook: POSTs `{"EventName": "s3:ObjectCreated:Put", "Key": "bucket/decoded key",
#   "Records": [<one S3 record>]}`; event names carry the "s3:" prefix. (Before it posts, the
#   target probes the endpoint with HEAD, so a receiver must answer HEAD too.)
# - Redis, format=access: RPUSHes onto the list `key` one JSON array per event,
#   `[{"Event": [<one S3 record>], "EventTime": "..."}]`; services/indexer/redis_events.py
#   moves each item to a processing list and passes it here.
# - Redis, format=namespace: keeps a hash that mirrors the bucket. On a put it HSETs field
#   "bucket/decoded key" to `{"Records": [<record>]}` (parse_minio_event reads such a value),
#   and on s3:ObjectRemoved:Delete it HDELs the field, so a delete leaves no payload at all.
#   Redis' keyspace notifications for HDEL name the hash, not the field, so namespace format
#   cannot drive an event consumer: it would need a differ that HSCANs the hash and compares it
#   with the index (what reconcile does against the bucket anyway). Use format=access.


def parse_minio_event(body: str | bytes | dict[str, Any] | list[Any]) -> list[BucketEvent]:
    """A MinIO webhook body, one item popped from a Redis target in access format, or the
    value of a namespace-format hash field."""
    data = _load(body)
    if isinstance(data, list):  # access format: [{"Event": [...], "EventTime": "..."}]
        events = []
        for entry in data:
            entry = _require_dict(entry, "a MinIO access-format entry")
            if "Event" not in entry:
                raise EventParseError("MinIO access-format entry has no 'Event'")
            events += _events_from_records(entry["Event"], "minio")
        return events
    data = _require_dict(data, "a MinIO event body")
    if "Records" in data:  # webhook (EventName/Key/Records) or a namespace hash value
        return _events_from_records(data["Records"], "minio")
    if "Event" in data:  # one access-format entry outside its list
        return _events_from_records(data["Event"], "minio")
    raise EventParseError("not a MinIO event: no 'Records' or 'Event'")


# ---------------------------------------------------------------------------------------------
# SeaweedFS filer webhook
#
# weed/notification/webhook posts `{"key": "/buckets/BUCKET/KEY", "event_type":
# "create|update|delete|rename", "message": <filer_pb.EventNotification>}`. The notification is
# Go's encoding/json of the protobuf struct: snake_case names, zero values left out, and bytes
# (attributes.md5, extended values, chunk e_tag) in base64. `key` is the old path; a new entry's
# path is new_parent_path + "/" + new_entry.name. Keys are plain UTF-8, not URL-encoded.
#
# Besides objects the filer reports its own housekeeping, which we drop: directories (each
# bucket and every "folder" of a key), `/buckets/.system/...` (bucket owner index), a bucket's
# `.uploads/` (multipart parts, created and deleted around CompleteMultipartUpload), and updates
# to noncurrent versions in a versioned bucket, where objects live at `KEY.versions/v_<id>`.

_ETAG_KEY = "Seaweed-X-Amz-ETag"
_VERSION_ID_KEY = "Seaweed-X-Amz-Version-Id"
_DELETE_MARKER_KEY = "Seaweed-X-Amz-Delete-Marker"
_VERSIONS_SUFFIX = ".versions"
_UPLOADS_DIR = ".uploads"


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _extended(entry: dict[str, Any], name: str) -> str | None:
    raw = _b64((entry.get("extended") or {}).get(name))
    return raw.decode("utf-8", "replace") if raw else None


def seaweedfs_entry_etag(entry: dict[str, Any]) -> str | None:
    """The ETag SeaweedFS' S3 API reports for this entry (head_object), without quotes.

    Same order as the S3 server (s3api getObjectETag / filer.ETag): the ETag the S3 layer
    stored in `extended["Seaweed-X-Amz-ETag"]` (set on S3 puts, copies and multipart
    completes, e.g. "…-2"); else the hex of `attributes.md5` (files written through the filer
    HTTP API); else the chunks: one chunk → its MD5, several → md5(concatenated chunk MD5s)-N.
    """
    stored = _extended(entry, _ETAG_KEY)
    if stored:
        return stored.strip('"')
    md5 = _b64((entry.get("attributes") or {}).get("md5"))
    if md5:
        return md5.hex()
    chunks = entry.get("chunks") or []
    if not chunks:
        return None
    digests = [_b64(chunk.get("e_tag")) or b"" for chunk in chunks]
    if len(digests) == 1:
        return digests[0].hex() or None
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def _entry_size(entry: dict[str, Any]) -> int:
    size = int((entry.get("attributes") or {}).get("file_size") or 0)
    for chunk in entry.get("chunks") or []:
        size = max(size, int(chunk.get("offset") or 0) + int(chunk.get("size") or 0))
    return size


def _entry_mtime(entry: dict[str, Any]) -> datetime | None:
    attributes = entry.get("attributes") or {}
    seconds = attributes.get("mtime")
    if not isinstance(seconds, int) or seconds <= 0:
        return None
    nanos = attributes.get("mtime_ns") or 0
    return datetime.fromtimestamp(seconds + nanos / 1e9, UTC)


def _split_path(path: str, buckets_dir: str) -> tuple[str, str] | None:
    """`/buckets/BUCKET/KEY` → (BUCKET, KEY); None for anything that is not an object path."""
    prefix = buckets_dir.rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    bucket, _, key = path[len(prefix) :].partition("/")
    if not bucket or not key or bucket.startswith("."):  # "/buckets/.system/..."
        return None
    if key.split("/", 1)[0] == _UPLOADS_DIR:
        return None
    return bucket, key


def _version_of(key: str) -> tuple[str, str] | None:
    """`docs/a.txt.versions/v_<id>` → ("docs/a.txt", "<id>")."""
    parent, _, name = key.rpartition("/")
    if parent.endswith(_VERSIONS_SUFFIX) and name.startswith("v_") and parent != _VERSIONS_SUFFIX:
        return parent.removesuffix(_VERSIONS_SUFFIX), name.removeprefix("v_")
    return None


def _seaweed_event(
    kind: EventKind, path: str, entry: dict[str, Any], buckets_dir: str
) -> BucketEvent | None:
    if entry.get("is_directory"):
        return None
    where = _split_path(path, buckets_dir)
    if where is None:
        return None
    bucket, key = where
    version_id = None
    versioned = _version_of(key)
    if versioned is not None:
        key, version_id = versioned
        version_id = _extended(entry, _VERSION_ID_KEY) or version_id
        if kind == "put" and _extended(entry, _DELETE_MARKER_KEY) == "true":
            # A new delete marker: the object is deleted (S3: ObjectRemoved:DeleteMarkerCreated).
            return _event(
                kind="delete",
                bucket=bucket,
                key=key,
                version_id=version_id,
                event_time=_entry_mtime(entry),
                source="seaweedfs",
            )
    return _event(
        kind=kind,
        bucket=bucket,
        key=key,
        etag=seaweedfs_entry_etag(entry),
        version_id=version_id,
        size=_entry_size(entry),
        # A put's mtime is when it was written; a delete carries no time of its own.
        event_time=_entry_mtime(entry) if kind == "put" else None,
        source="seaweedfs",
    )


def parse_seaweedfs_event(
    body: str | bytes | dict[str, Any], *, buckets_dir: str = "/buckets"
) -> list[BucketEvent]:
    """A SeaweedFS filer webhook body → 0, 1 or 2 events (a rename is delete old + put new)."""
    data = _require_dict(_load(body), "a SeaweedFS webhook body")
    path = data.get("key")
    message = data.get("message")
    if not isinstance(path, str) or not isinstance(message, dict):
        raise EventParseError("not a SeaweedFS webhook body: no 'key' or 'message'")
    old = message.get("old_entry")
    new = message.get("new_entry")
    if old is not None:
        old = _require_dict(old, "'old_entry'")
    if new is not None:
        new = _require_dict(new, "'new_entry'")

    new_path = None
    if new is not None:
        name = new.get("name")
        if not isinstance(name, str) or not name:
            raise EventParseError("SeaweedFS 'new_entry' has no name")
        parent = message.get("new_parent_path") or path.rpartition("/")[0] or "/"
        new_path = parent.rstrip("/") + "/" + name

    candidates: list[BucketEvent | None] = []
    if old is not None and new is not None and new_path == path:
        # An update in place: an overwrite, or metadata only (same ETag: idempotent). For a
        # version file it only marks the version noncurrent: not a change of the object.
        where = _split_path(path, buckets_dir)
        if where is None or _version_of(where[1]) is None:
            candidates.append(_seaweed_event("put", path, new, buckets_dir))
    else:
        if old is not None:
            candidates.append(_seaweed_event("delete", path, old, buckets_dir))
        if new is not None and new_path is not None:
            candidates.append(_seaweed_event("put", new_path, new, buckets_dir))
    return [event for event in candidates if event is not None]
