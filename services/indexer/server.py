"""Indexer API process: gRPC IndexerService, bucket webhooks, the SQS poller and the
periodic reconcile trigger. The work itself runs in Celery workers (services/indexer/tasks.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import uvicorn
from botocore.exceptions import ClientError
from forgeline.v1 import indexer_pb2_grpc
from grpc_health.v1 import health_pb2

from services.common.crypto import SecretBox
from services.common.db import create_db_engine, run_migrations
from services.common.errors import InvalidInput, NotFound
from services.common.grpc_server import build_server
from services.common.logging import get_logger, setup_logging
from services.common.queue import INDEXING_QUEUE
from services.common.storage import attached_bucket_policy, ensure_bucket, s3_client
from services.common.telemetry import setup_telemetry, shutdown_telemetry
from services.common.vectors import chroma_client
from services.indexer.consumers import SqsPoller, webhook_app
from services.indexer.events import BucketEvent
from services.indexer.intake import apply_events
from services.indexer.knowledge_bases import KnowledgeBaseDirectory
from services.indexer.reconcile import reconcile
from services.indexer.redis_events import RedisListConsumer
from services.indexer.servicer import IndexerServicer
from services.indexer.settings import IndexerSettings
from services.indexer.sync import AttachedBucketError, Syncer, access_failure
from services.indexer.tasks import RECONCILE, SYNC_OBJECT
from services.indexer.tasks import app as celery_app

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_indexer"
log = get_logger(__name__)


def main() -> None:
    settings = IndexerSettings()
    setup_logging("indexer", settings.log_level)
    setup_telemetry("indexer", settings)
    engine = create_db_engine(settings)
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    s3 = s3_client(settings)
    ensure_bucket(s3, settings.s3_bucket)
    syncer = Syncer(
        engine=engine,
        s3=s3,
        chroma=chroma_client(settings),
        max_document_bytes=settings.max_document_bytes,
        bucket_policy=attached_bucket_policy(settings),
    )

    directory = KnowledgeBaseDirectory(
        settings.rag_grpc_address,
        deadline_seconds=settings.grpc_deadline_seconds,
        secrets=SecretBox(settings),
        platform_bucket=settings.s3_bucket,
        token=settings.service_token,
    )

    def enqueue(bucket: str, key: str, kb_id: str) -> None:
        celery_app.send_task(SYNC_OBJECT, args=[bucket, key, kb_id], queue=INDEXING_QUEUE)

    def apply(events: list[BucketEvent]) -> int:
        return apply_events(syncer, events, directory.refs_for, enqueue)

    def reconcile_now(owner_id: str, kb_id: str) -> dict[str, int]:
        kb = directory.get(kb_id)
        if kb is None or kb.owner_id != owner_id:
            raise NotFound("kb_not_found", "No such knowledge base.")
        try:
            report = reconcile(
                syncer, kb, stale_after_seconds=settings.stale_pending_seconds, enqueue=enqueue
            )
        except ClientError as error:
            code = access_failure(error)
            if kb.external and code:
                raise InvalidInput(code, AttachedBucketError(code).reason) from None
            raise
        counts = report.as_dict()
        counts.pop("unreachable_sources")  # one knowledge base: an unreachable one raised
        return counts

    servicer = IndexerServicer(syncer, enqueue=enqueue, reconcile=reconcile_now)
    grpc_server, health, port = build_server(
        [lambda s: indexer_pb2_grpc.add_IndexerServiceServicer_to_server(servicer, s)],
        settings.indexer_grpc_bind,
        service_token=settings.service_token,
    )
    grpc_server.start()
    health.set("", health_pb2.HealthCheckResponse.SERVING)

    stopping = threading.Event()
    poller = None
    if settings.indexer_sqs_queue_url:
        poller = SqsPoller(
            settings.indexer_sqs_queue_url,
            apply,
            endpoint_url=settings.indexer_sqs_endpoint_url,
            region=settings.s3_region,
        )
        poller.start()
    redis_consumer = None
    if settings.indexer_minio_redis_url:
        redis_consumer = RedisListConsumer(
            settings.indexer_minio_redis_url, settings.indexer_minio_redis_key, apply
        )
        redis_consumer.start()

    def periodic_reconcile(interval: int, external_only: bool) -> None:
        # A lost event heals within one interval even if nobody asks.
        while not stopping.wait(interval):
            celery_app.send_task(
                RECONCILE, kwargs={"external_only": external_only}, queue=INDEXING_QUEUE
            )

    for interval, external_only in (
        (settings.reconcile_interval_seconds, False),
        (settings.attached_reconcile_interval_seconds, True),
    ):
        threading.Thread(
            target=periodic_reconcile,
            args=(interval, external_only),
            name="reconcile-timer",
            daemon=True,
        ).start()
    log.info("indexer listening", grpc_port=port, webhook_port=settings.indexer_webhook_port)
    try:
        uvicorn.run(
            webhook_app(apply, token=settings.indexer_webhook_token),
            host=settings.indexer_webhook_host,
            port=settings.indexer_webhook_port,
            log_config=None,
            access_log=False,
        )
    finally:
        stopping.set()
        if poller is not None:
            poller.stopping.set()
        if redis_consumer is not None:
            redis_consumer.stopping.set()
        health.enter_graceful_shutdown()
        grpc_server.stop(5).wait()
        shutdown_telemetry()
