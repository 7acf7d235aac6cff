"""Bucket notifications → BucketEvent, on payloads captured from real servers.

Provenance of `fixtures/`:

- `moto_sqs_*`: bodies of SQS messages from moto server 5.2.5 (S3 bucket notification with
  QueueConfigurations for s3:ObjectCreated:* and s3:ObjectRemoved:*); `moto_sns_*`: the same
  through TopicConfigurations → SNS topic → SQS subscription (the SNS envelope).
- `seaweedfs_*`: POST bodies from `weed mini` 4.48's filer webhook (`[notification.webhook]`),
  for operations done through its S3 API with boto3 (and two through the filer HTTP API:
  `seaweedfs_rename.json` is a filer `mv`, `seaweedfs_filer_create*.json` filer uploads). The
  ETags below are what `head_object` returned for the same object in the same run.
- `minio_doc_*`: written from MinIO's documentation and source (internal/event/event.go,
  target/webhook.go, target/redis.go); no MinIO binary is available here to capture from.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.indexer.events import (
    BucketEvent,
    EventParseError,
    parse_minio_event,
    parse_s3_event,
    parse_seaweedfs_event,
    seaweedfs_entry_etag,
)

FIXTURES = Path(__file__).parent / "fixtures"
UNICODE_KEY = "docs/My Report é+ü.txt"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def loaded(name: str) -> Any:
    return json.loads(raw(name))


def one(events: list[BucketEvent]) -> BucketEvent:
    assert len(events) == 1, events
    return events[0]


# --- S3 (moto) -------------------------------------------------------------------------------


def test_s3_put_from_sqs() -> None:
    event = one(parse_s3_event(raw("moto_sqs_put.json")))
    assert event == BucketEvent(
        kind="put",
        bucket="kbase",
        key="docs/a.txt",  # moto sends "docs%2Fa.txt"
        etag="5d41402abc4b2a76b9719d911017c592",
        size=5,
        event_time=datetime(2026, 11, 29, 6, 33, 35, 32000, tzinfo=UTC),
        source="s3",
    )
    assert event.event_time is not None and event.event_time.utcoffset() is not None


def test_s3_overwrite_has_the_new_etag() -> None:
    first = one(parse_s3_event(raw("moto_sqs_put.json")))
    second = one(parse_s3_event(raw("moto_sqs_overwrite.json")))
    assert (second.kind, second.key, second.size) == ("put", "docs/a.txt", 11)
    assert second.etag == "44997f87b891f89472b7f2bbe4e000c3" != first.etag


@pytest.mark.parametrize(
    "name", ["moto_sqs_put_unicode_key.json", "moto_sqs_delete_unicode_key.json"]
)
def test_s3_keys_are_url_decoded(name: str) -> None:
    # "docs%2FMy+Report+%C3%A9%2B%C3%BC.txt": "+" is a space, "%2B" a real plus.
    assert one(parse_s3_event(raw(name))).key == UNICODE_KEY


def test_s3_copy_and_multipart_are_puts() -> None:
    copied = one(parse_s3_event(raw("moto_sqs_copy.json")))
    assert (copied.kind, copied.key, copied.etag) == (
        "put",
        "docs/copy.txt",
        "44997f87b891f89472b7f2bbe4e000c3",
    )
    multipart = one(parse_s3_event(raw("moto_sqs_complete_multipart.json")))
    assert (multipart.kind, multipart.key, multipart.etag, multipart.size) == (
        "put",
        "docs/big.bin",
        "298c9a5c8205ea8eeef29652993678aa-2",
        5242890,
    )


def test_s3_delete() -> None:
    event = one(parse_s3_event(raw("moto_sqs_delete_unicode_key.json")))
    assert (event.kind, event.bucket, event.source) == ("delete", "kbase", "s3")


@pytest.mark.parametrize("name", ["moto_sqs_test_event.json", "moto_sns_test_event.json"])
def test_s3_test_event_yields_nothing(name: str) -> None:
    assert parse_s3_event(raw(name)) == []


def test_s3_inside_an_sns_envelope() -> None:
    envelope = loaded("moto_sns_put.json")
    assert envelope["Type"] == "Notification"
    put = one(parse_s3_event(raw("moto_sns_put.json")))
    assert (put.kind, put.bucket, put.key) == ("put", "kbase-sns", "notes/sns doc.md")
    assert put.etag == hashlib.md5(b"# sns", usedforsecurity=False).hexdigest()
    delete = one(parse_s3_event(envelope | {"Message": loaded("moto_sns_delete.json")["Message"]}))
    assert (delete.kind, delete.key) == ("delete", "notes/sns doc.md")


def test_s3_accepts_str_bytes_and_dict() -> None:
    body = raw("moto_sqs_put.json")
    assert parse_s3_event(body) == parse_s3_event(body.decode()) == parse_s3_event(json.loads(body))


def test_s3_fields_moto_leaves_out_and_other_event_names() -> None:
    # Fields as in AWS' documented record (notification-content-structure) that moto does not
    # send: versionId and sequencer, on a delete marker; plus names that change no object.
    record = loaded("moto_sqs_put.json")["Records"][0]
    versioned = copy.deepcopy(record)
    versioned["eventName"] = "ObjectRemoved:DeleteMarkerCreated"
    versioned["s3"]["object"] = {
        "key": "docs/a.txt",
        "versionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
        "sequencer": "0055AED6DCD90281E5",
    }
    restore = copy.deepcopy(record) | {"eventName": "ObjectRestore:Completed"}
    tagging = copy.deepcopy(record) | {"eventName": "ObjectTagging:Put"}
    events = parse_s3_event({"Records": [versioned, restore, tagging]})
    assert events == [
        BucketEvent(
            kind="delete",
            bucket="kbase",
            key="docs/a.txt",
            version_id="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            sequencer="0055AED6DCD90281E5",
            event_time=datetime(2026, 11, 29, 6, 33, 35, 32000, tzinfo=UTC),
            source="s3",
        )
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        "[]",
        '{"Type": "Notification", "Message": "{oops"}',
        '{"Records": "nope"}',
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}, "object": {}}}]}',
        '{"something": "else"}',
    ],
)
def test_s3_malformed_bodies_raise_event_parse_error(body: str | bytes) -> None:
    with pytest.raises(EventParseError) as error:
        parse_s3_event(body)
    assert isinstance(error.value, ValueError)


# --- MinIO (from the documentation) ----------------------------------------------------------


def test_minio_webhook_put() -> None:
    event = one(parse_minio_event(raw("minio_doc_webhook_put.json")))
    assert event == BucketEvent(
        kind="put",
        bucket="kbase",
        key=UNICODE_KEY,
        etag="8ab3b19e134f01fbaf94b8e15f3df090",
        version_id="5f2a9c3e-8d2b-4b8e-9a55-6f1d0c7e2b11",
        sequencer="17E7C5B6A3C2D9F4",
        size=7,
        event_time=datetime(2026, 11, 29, 6, 40, 12, 345000, tzinfo=UTC),
        source="minio",
    )
    # The top-level Key is the decoded "bucket/key"; the record's key is the encoded one.
    assert loaded("minio_doc_webhook_put.json")["Key"] == f"kbase/{event.key}"


def test_minio_webhook_deletes() -> None:
    delete = one(parse_minio_event(raw("minio_doc_webhook_delete.json")))
    assert (delete.kind, delete.key, delete.etag, delete.size) == (
        "delete",
        UNICODE_KEY,
        None,
        None,
    )
    marker = one(parse_minio_event(raw("minio_doc_webhook_delete_marker.json")))
    assert (marker.kind, marker.version_id) == ("delete", "9b1e4f0a-2c3d-4e5f-8a9b-0c1d2e3f4a5b")


def test_minio_redis_access_format_and_namespace_value() -> None:
    webhook = parse_minio_event(raw("minio_doc_webhook_put.json"))
    assert parse_minio_event(raw("minio_doc_redis_access_put.json")) == webhook
    assert parse_minio_event(loaded("minio_doc_redis_access_put.json")[0]) == webhook
    assert parse_minio_event(raw("minio_doc_redis_namespace_value.json")) == webhook


@pytest.mark.parametrize("body", [b"nope", "[1]", '[{"EventTime": "x"}]', '{"Key": "a/b"}'])
def test_minio_malformed(body: str | bytes) -> None:
    with pytest.raises(EventParseError):
        parse_minio_event(body)


# --- SeaweedFS (weed mini's filer webhook) ---------------------------------------------------


def test_seaweedfs_create() -> None:
    body = loaded("seaweedfs_create.json")
    assert (body["event_type"], body["key"]) == ("create", "/buckets/kbase/docs/a.txt")
    event = one(parse_seaweedfs_event(raw("seaweedfs_create.json")))
    mtime = body["message"]["new_entry"]["attributes"]["mtime"]
    assert event == BucketEvent(
        kind="put",
        bucket="kbase",
        key="docs/a.txt",
        etag="5d41402abc4b2a76b9719d911017c592",  # head_object: "5d41402abc4b2a76b9719d911017c592"
        size=5,
        event_time=datetime.fromtimestamp(mtime, UTC),
        source="seaweedfs",
    )


def test_seaweedfs_overwrite_is_a_put_with_the_new_etag() -> None:
    body = loaded("seaweedfs_update_overwrite.json")
    assert body["event_type"] == "update"
    event = one(parse_seaweedfs_event(body))
    assert (event.kind, event.key, event.etag, event.size) == (
        "put",
        "docs/a.txt",
        "44997f87b891f89472b7f2bbe4e000c3",
        11,
    )


def test_seaweedfs_delete_carries_the_deleted_etag() -> None:
    event = one(parse_seaweedfs_event(raw("seaweedfs_delete.json")))
    assert event == BucketEvent(
        kind="delete",
        bucket="kbase",
        key="docs/a.txt",
        etag="44997f87b891f89472b7f2bbe4e000c3",
        size=11,
        source="seaweedfs",
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [("seaweedfs_create_unicode_key.json", "put"), ("seaweedfs_delete_unicode_key.json", "delete")],
)
def test_seaweedfs_keys_are_plain(name: str, kind: str) -> None:
    event = one(parse_seaweedfs_event(raw(name)))
    assert (event.kind, event.key) == (kind, UNICODE_KEY)


@pytest.mark.parametrize(
    ("fixture", "key", "etag", "size"),
    [
        # S3 puts: the S3 layer's stored ETag (extended "Seaweed-X-Amz-ETag").
        ("complete_multipart", "docs/big.bin", "298c9a5c8205ea8eeef29652993678aa-2", 5242890),
        ("create_multichunk", "docs/large.bin", "dd8c2b256491800f0d647115596562d2", 9437184),
        ("create_empty", "docs/empty.txt", "d41d8cd98f00b204e9800998ecf8427e", 0),
        # Filer uploads: no stored ETag, attributes.md5 instead.
        ("filer_create", "docs/viafiler.txt", "3ff40ac9c71e989f6b59e37018aaeabd", 9),
        (
            "filer_create_multichunk",
            "docs/bigviafiler.bin",
            "1d534382758884bea909863f99b89bef",
            9437191,
        ),
    ],
)
def test_seaweedfs_etag_matches_head_object(fixture: str, key: str, etag: str, size: int) -> None:
    event = one(parse_seaweedfs_event(raw(f"seaweedfs_{fixture}.json")))
    assert (event.kind, event.key, event.etag, event.size) == ("put", key, etag, size)


def test_seaweedfs_etag_from_chunks_when_nothing_is_stored() -> None:
    # Entries written without an MD5 (e.g. through a FUSE mount) fall back to the chunks, as
    # SeaweedFS' filer.ETagChunks does.
    entry = copy.deepcopy(loaded("seaweedfs_filer_create_multichunk.json")["message"]["new_entry"])
    del entry["attributes"]["md5"]
    content = b"z" * (9 * 1024 * 1024 + 7)
    parts = [content[c.get("offset", 0) :][: c["size"]] for c in entry["chunks"]]
    digests = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in parts)
    expected = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"
    assert seaweedfs_entry_etag(entry) == expected
    single = copy.deepcopy(loaded("seaweedfs_create.json")["message"]["new_entry"])
    del single["extended"], single["attributes"]["md5"]
    assert seaweedfs_entry_etag(single) == hashlib.md5(b"hello", usedforsecurity=False).hexdigest()


def test_seaweedfs_rename_is_delete_old_and_put_new() -> None:
    body = loaded("seaweedfs_rename.json")
    assert body["event_type"] == "rename"
    old, new = parse_seaweedfs_event(body)
    assert (old.kind, old.key, old.etag) == (
        "delete",
        "docs/copy.txt",
        "44997f87b891f89472b7f2bbe4e000c3",
    )
    assert (new.kind, new.key, new.etag) == (
        "put",
        "docs/renamed.txt",
        "44997f87b891f89472b7f2bbe4e000c3",
    )


@pytest.mark.parametrize(
    "name",
    [
        "seaweedfs_bucket_dir_create.json",  # /buckets/kbase (a directory)
        "seaweedfs_dir_create.json",  # /buckets/kbase/docs (a directory)
        "seaweedfs_system_owner_create.json",  # /buckets/.system/owners/... (a file)
        "seaweedfs_multipart_part_create.json",  # /buckets/kbase/.uploads/<id>/0001_....part
        "seaweedfs_multipart_upload_dir_delete.json",  # the .uploads/<id> dir, on complete
        "seaweedfs_versions_dir_update.json",  # KEY.versions directory: latest-version pointer
        "seaweedfs_versioned_noncurrent_update.json",  # an old version marked noncurrent
    ],
)
def test_seaweedfs_housekeeping_yields_nothing(name: str) -> None:
    assert parse_seaweedfs_event(raw(name)) == []


def test_seaweedfs_versioned_bucket() -> None:
    put = one(parse_seaweedfs_event(raw("seaweedfs_versioned_create.json")))
    assert (put.kind, put.bucket, put.key, put.etag, put.version_id) == (
        "put",
        "kbase-versioned",
        "v.txt",
        "6654c734ccab8f440ff0825eb443dc7f",  # head_object ETag of that version
        "67138f60f5c9848a00218bdcebf9a6a5",  # head_object VersionId
    )
    marker = one(parse_seaweedfs_event(raw("seaweedfs_versioned_delete_marker.json")))
    assert (marker.kind, marker.key, marker.version_id, marker.etag) == (
        "delete",
        "v.txt",
        "67138f60e8dc4d47fe13daebd50861cd",  # delete_object's VersionId (DeleteMarker: True)
        None,
    )
    assert marker.event_time is not None


def test_seaweedfs_deleting_a_version_file_is_a_versioned_delete() -> None:
    body = loaded("seaweedfs_versioned_create.json")
    message = body["message"]
    body = {
        "key": body["key"],
        "event_type": "delete",
        "message": {"old_entry": message["new_entry"], "delete_chunks": True},
    }
    event = one(parse_seaweedfs_event(body))
    assert (event.kind, event.key, event.version_id) == (
        "delete",
        "v.txt",
        "67138f60f5c9848a00218bdcebf9a6a5",
    )


def test_seaweedfs_other_buckets_dir_and_non_bucket_paths() -> None:
    body = loaded("seaweedfs_create.json")
    elsewhere = copy.deepcopy(body)
    elsewhere["key"] = "/etc/iam/a.txt"
    elsewhere["message"]["new_parent_path"] = "/etc/iam"
    assert parse_seaweedfs_event(elsewhere) == []
    moved = copy.deepcopy(body)
    moved["key"] = "/data/kbase/docs/a.txt"
    moved["message"]["new_parent_path"] = "/data/kbase/docs"
    assert parse_seaweedfs_event(moved) == []
    assert one(parse_seaweedfs_event(moved, buckets_dir="/data")).key == "docs/a.txt"


def test_seaweedfs_extended_values_are_base64() -> None:
    entry = loaded("seaweedfs_create.json")["message"]["new_entry"]
    stored = base64.b64decode(entry["extended"]["Seaweed-X-Amz-ETag"]).decode()
    assert (
        stored == seaweedfs_entry_etag(entry) == base64.b64decode(entry["attributes"]["md5"]).hex()
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        "[]",
        '{"key": "/buckets/b/k"}',
        '{"key": "/buckets/b/k", "message": {"new_entry": "x"}}',
        '{"key": "/buckets/b/k", "message": {"new_entry": {"attributes": {}}}}',
    ],
)
def test_seaweedfs_malformed(body: str | bytes) -> None:
    with pytest.raises(EventParseError):
        parse_seaweedfs_event(body)


def test_bucket_event_is_frozen_and_normalises() -> None:
    event = BucketEvent(
        kind="put",
        bucket="b",
        key="k",
        etag='"abc"',
        event_time=datetime(2026, 1, 1, 12, 0),  # naive: taken as UTC
        source="s3",
    )
    assert event.etag == "abc"
    assert event.event_time == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        event.key = "other"  # type: ignore[misc]
