"""Celery tasks of the indexer (queue `indexing`). Thin: they take ids, re-read state and
call `sync.py` / `reconcile.py`. Run a worker with

    celery -A services.indexer.tasks worker -Q indexing

Tasks are acknowledged late (see services/common/queue.py): a worker killed mid-document
leaves its task to be delivered again, and `sync_object` is idempotent.
"""

from __future__ import annotations

from functools import cache

from botocore.exceptions import BotoCoreError, ClientError
from celery.signals import worker_process_init, worker_ready

from services.common.crypto import SecretBox
from services.common.db import create_db_engine
from services.common.errors import Unavailable
from services.common.logging import get_logger, setup_logging
from services.common.queue import INDEXING_QUEUE, make_celery
from services.common.storage import attached_bucket_policy, s3_client
from services.common.telemetry import setup_telemetry
from services.common.vectors import chroma_client
from services.indexer.keys import parse_key
from services.indexer.knowledge_bases import KnowledgeBaseDirectory
from services.indexer.settings import IndexerSettings
from services.indexer.sync import Syncer

SYNC_OBJECT = "indexer.sync_object"
RECONCILE = "indexer.reconcile"

settings = IndexerSettings()
app = make_celery("indexer", settings)
app.conf.task_default_queue = INDEXING_QUEUE
app.conf.task_routes = {"indexer.*": {"queue": INDEXING_QUEUE}}
log = get_logger(__name__)

# Failures worth retrying: the store, the index or the RAG service briefly unreachable.
TRANSIENT = (BotoCoreError, ClientError, ConnectionError, TimeoutError, Unavailable)


@cache
def syncer() -> Syncer:
    return Syncer(
        engine=create_db_engine(settings),
        s3=s3_client(settings),
        chroma=chroma_client(settings),
        max_document_bytes=settings.max_document_bytes,
        bucket_policy=attached_bucket_policy(settings),
        embed_batch_size=settings.embed_batch_size,
    )


@cache
def directory() -> KnowledgeBaseDirectory:
    return KnowledgeBaseDirectory(
        settings.rag_grpc_address,
        deadline_seconds=settings.grpc_deadline_seconds,
        secrets=SecretBox(settings),
        platform_bucket=settings.s3_bucket,
        token=settings.service_token,
    )


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _init_process(**_: object) -> None:
    setup_logging("indexer", settings.log_level)
    setup_telemetry("indexer", settings)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _resume(**_: object) -> None:
    # A worker killed outright leaves its task unacknowledged until the broker's visibility
    # timeout; re-queue what is still pending now instead of hours from now.
    app.send_task(RECONCILE, kwargs={"only_stale": False}, queue=INDEXING_QUEUE)


@app.task(  # type: ignore[untyped-decorator]
    name=SYNC_OBJECT,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=12,
)
def sync_object_task(bucket: str, key: str, kb_id: str | None = None) -> str:
    if kb_id is None:  # queued before attached buckets existed: the key names its KB
        parsed = parse_key(bucket, key)
        if parsed is None:
            return "ignored"
        kb_id = parsed.kb_id
    kb = directory().get(kb_id)
    if kb is not None and not kb.contains(bucket, key):
        return "ignored"  # an event routed to a knowledge base that does not hold this key
    ref = kb.ref(key) if kb is not None else parse_key(bucket, key)
    if ref is None:
        return "ignored"
    result = syncer().sync_object(ref, kb)
    if result.changed_meanwhile:
        sync_object_task.apply_async((bucket, key, kb_id), countdown=1)
    log.info("synced", kb_id=kb_id, key=key, state=result.state, chunks=result.chunks)
    return result.state


@app.task(  # type: ignore[untyped-decorator]
    name=RECONCILE, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5
)
def reconcile_task(
    owner_id: str | None = None,
    kb_id: str | None = None,
    only_stale: bool = True,
    external_only: bool = False,
) -> dict[str, int]:
    from services.indexer.reconcile import reconcile_all

    if kb_id:
        one = directory().get(kb_id)
        kbs = [one] if one is not None else []
    else:
        kbs = directory().all(external_only=external_only)
    report = reconcile_all(
        syncer(),
        [kb for kb in kbs if not owner_id or kb.owner_id == owner_id],
        stale_after_seconds=settings.stale_pending_seconds if only_stale else 0,
        enqueue=lambda b, k, kb: sync_object_task.apply_async((b, k, kb)),
    )
    return report.as_dict()
