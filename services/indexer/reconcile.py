"""Repair drift between a bucket and the index, both ways, so a lost event heals.

- an object in the bucket with no row, a row of another ETag, or a row still pending for
  too long: queue a sync of that key;
- a row (or chunks) whose object is gone: queue a sync, which removes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from services.common.db import session_scope
from services.indexer.keys import kb_prefix, parse_key
from services.indexer.models import DELETED, FAILED, INDEXED, PENDING, Document
from services.indexer.sync import Syncer


@dataclass
class ReconcileReport:
    queued_for_indexing: int = 0
    removed: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _listing(syncer: Syncer, bucket: str, prefix: str) -> dict[str, str]:
    """Key -> ETag of every object under the prefix."""
    found: dict[str, str] = {}
    paginator = syncer.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = str(item["ETag"]).strip('"')
    return found


def reconcile(
    syncer: Syncer,
    *,
    bucket: str,
    owner_id: str | None,
    kb_id: str | None,
    stale_after_seconds: int,
    enqueue: Callable[[str, str], object],
) -> ReconcileReport:
    report = ReconcileReport()
    with session_scope(syncer.engine) as db:
        statement = select(Document).where(Document.bucket == bucket, Document.state != DELETED)
        if owner_id:
            statement = statement.where(Document.owner_id == owner_id)
        if kb_id:
            statement = statement.where(Document.kb_id == kb_id)
        rows = {row.key: row for row in db.exec(statement).all()}
    prefix = (
        kb_prefix(owner_id, kb_id)
        if owner_id and kb_id
        else (f"{owner_id}/kbs/" if owner_id else "")
    )
    listed = {k: e for k, e in _listing(syncer, bucket, prefix).items() if parse_key(bucket, k)}
    stale_before = datetime.now(UTC) - timedelta(seconds=stale_after_seconds)
    for key, etag in listed.items():
        row = rows.get(key)
        settled = row is not None and (
            (row.state == INDEXED and row.indexed_etag == etag)
            or (row.state == FAILED and row.etag == etag)
        )
        stale = row is not None and row.state == PENDING and row.updated_at <= stale_before
        if settled:
            report.unchanged += 1
        elif row is None or row.etag != etag or stale or row.state != PENDING:
            enqueue(bucket, key)
            report.queued_for_indexing += 1
        else:
            report.unchanged += 1  # pending and recent: its task is on its way
    for key in rows.keys() - listed.keys():
        enqueue(bucket, key)  # the sync sees the object gone and removes its chunks
        report.removed += 1
    return report
