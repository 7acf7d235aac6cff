"""Repair drift between a knowledge base's bucket prefix and the index, both ways, so a lost
event heals.

- an object in the bucket with no row, a row of another ETag, a row indexed under other
  settings, or a row still pending for too long: queue a sync of that key;
- a row (or chunks) whose object is gone: queue a sync, which removes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from sqlmodel import select

from services.common.db import session_scope
from services.common.logging import get_logger
from services.indexer.keys import parse_key
from services.indexer.models import DELETED, FAILED, INDEXED, PENDING, Document
from services.indexer.sources import KnowledgeBaseSource
from services.indexer.sync import ACCESS_FAILURES, Syncer

# (bucket, key, knowledge base id): what a sync task is queued with.
Enqueue = Callable[[str, str, str], object]
log = get_logger(__name__)


@dataclass
class ReconcileReport:
    queued_for_indexing: int = 0
    removed: int = 0
    unchanged: int = 0
    unreachable_sources: int = 0

    def add(self, other: ReconcileReport) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def listing(syncer: Syncer, kb: KnowledgeBaseSource) -> dict[str, str]:
    """Key -> ETag of every document under the knowledge base's prefix."""
    found: dict[str, str] = {}
    paginator = syncer.client_for(kb).get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=kb.bucket, Prefix=kb.prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not kb.contains(kb.bucket, key):
                continue
            if not kb.external:
                ref = parse_key(kb.bucket, key)
                if ref is None or ref.kb_id != kb.id:
                    continue
            found[key] = str(item["ETag"]).strip('"')
    return found


def reconcile(
    syncer: Syncer,
    kb: KnowledgeBaseSource,
    *,
    stale_after_seconds: int,
    enqueue: Enqueue,
) -> ReconcileReport:
    """One knowledge base. Raises what listing its bucket raised."""
    report = ReconcileReport()
    with session_scope(syncer.engine) as db:
        statement = select(Document).where(Document.kb_id == kb.id, Document.state != DELETED)
        rows = {row.key: row for row in db.exec(statement).all() if row.bucket == kb.bucket}
    listed = listing(syncer, kb)
    stale_before = datetime.now(UTC) - timedelta(seconds=stale_after_seconds)
    for key, etag in listed.items():
        row = rows.get(key)
        # A failure of access is retried: the listing just worked, so access may be back.
        settled = row is not None and (
            (
                row.state == INDEXED
                and row.indexed_etag == etag
                and row.indexed_signature == kb.signature
            )
            or (
                row.state == FAILED and row.etag == etag and row.failure_code not in ACCESS_FAILURES
            )
        )
        stale = row is not None and row.state == PENDING and row.updated_at <= stale_before
        if settled:
            report.unchanged += 1
        elif row is None or row.etag != etag or stale or row.state != PENDING:
            enqueue(kb.bucket, key, kb.id)
            report.queued_for_indexing += 1
        else:
            report.unchanged += 1  # pending and recent: its task is on its way
    for key in rows.keys() - listed.keys():
        enqueue(kb.bucket, key, kb.id)  # the sync sees the object gone and removes its chunks
        report.removed += 1
    return report


def reconcile_all(
    syncer: Syncer,
    kbs: Iterable[KnowledgeBaseSource],
    *,
    stale_after_seconds: int,
    enqueue: Enqueue,
) -> ReconcileReport:
    """Every knowledge base given; one whose bucket cannot be listed is skipped and counted,
    so a user's revoked key never stops the others' repair."""
    total = ReconcileReport()
    for kb in kbs:
        try:
            total.add(
                reconcile(syncer, kb, stale_after_seconds=stale_after_seconds, enqueue=enqueue)
            )
        except (BotoCoreError, ClientError) as error:
            if not kb.external:
                raise
            total.unreachable_sources += 1
            log.warning("attached bucket not listable", kb_id=kb.id, error=type(error).__name__)
    return total
