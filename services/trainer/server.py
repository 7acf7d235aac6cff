"""Trainer API process: gRPC TrainerService (datasets, catalogue, estimates, jobs), the
dataset inspector beside it, and a watchdog for jobs whose worker died. Training jobs run in
Celery workers on queue `training` (services/trainer/tasks.py); the instance reaper runs here,
so it keeps working while no worker is alive."""

from __future__ import annotations

import threading
from pathlib import Path

import redis
from forgeline.v1 import trainer_pb2_grpc

from services.common.db import create_db_engine, run_migrations
from services.common.grpc_server import build_server, serve_until_signalled
from services.common.job_events import JobEventWriter
from services.common.logging import get_logger, setup_logging
from services.common.queue import TRAINING_QUEUE
from services.common.storage import ensure_bucket, s3_client
from services.common.telemetry import setup_telemetry, shutdown_telemetry
from services.trainer.deployments import DeployerClient
from services.trainer.inspection import DatasetFiles, InspectionLimits, Inspector, Tokenizers
from services.trainer.reaper import reap
from services.trainer.servicer import TrainerServicer
from services.trainer.settings import TrainerSettings
from services.trainer.tasks import RESUME_ORPHANS, RUN_JOB
from services.trainer.tasks import app as celery_app

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_trainer"
WATCHDOG_SECONDS = 120


def main() -> None:
    settings = TrainerSettings()
    setup_logging("trainer", settings.log_level)
    setup_telemetry("trainer", settings)
    engine = create_db_engine(settings)
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    s3 = s3_client(settings)
    ensure_bucket(s3, settings.s3_bucket)
    files = DatasetFiles(s3, settings.data_dir / "trainer" / "datasets")
    inspector = Inspector(
        engine,
        files,
        Tokenizers(settings.models_dir),
        workers=settings.inspection_workers,
        max_problems=settings.max_problems_shown,
        limits=InspectionLimits(
            memory_bytes=settings.inspection_max_memory_mb * 2**20,
            seconds=settings.inspection_timeout_seconds,
        ),
    )

    def enqueue(job_id: str) -> None:
        celery_app.send_task(RUN_JOB, args=[job_id], queue=TRAINING_QUEUE)

    servicer = TrainerServicer(
        engine=engine,
        settings=settings,
        inspector=inspector,
        files=files,
        events=JobEventWriter(redis.Redis.from_url(settings.redis_url)),
        enqueue=enqueue,
        deployments=DeployerClient(
            settings.deployer_grpc_address,
            deadline_seconds=settings.grpc_deadline_seconds,
            token=settings.service_token,
        ),
    )
    stopping = threading.Event()

    def watchdog() -> None:
        # Jobs whose worker died are picked up by the next worker that starts; this also
        # catches a worker that keeps running but lost the task.
        while not stopping.wait(WATCHDOG_SECONDS):
            celery_app.send_task(RESUME_ORPHANS, queue=TRAINING_QUEUE)

    def reaper() -> None:
        while not stopping.wait(settings.reaper_interval_seconds):
            try:
                reap(engine, settings)
            except Exception:  # a database hiccup must not stop the reaping for good
                get_logger(__name__).exception("reaper pass failed")

    threading.Thread(target=watchdog, name="job-watchdog", daemon=True).start()
    threading.Thread(target=reaper, name="instance-reaper", daemon=True).start()
    server, health, port = build_server(
        [lambda s: trainer_pb2_grpc.add_TrainerServiceServicer_to_server(servicer, s)],
        settings.trainer_grpc_bind,
        service_token=settings.service_token,
    )
    log = get_logger(__name__)
    log.info("trainer listening", port=port, resumed=inspector.resume())

    def stop() -> None:
        stopping.set()
        inspector.shutdown()
        shutdown_telemetry()

    serve_until_signalled(server, health, on_stop=stop)
