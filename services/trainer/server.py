"""Trainer API process: gRPC TrainerService (datasets, catalogue, estimates) and the dataset
inspector beside it. Training jobs run in Celery workers on queue `training`."""

from __future__ import annotations

from pathlib import Path

from forgeline.v1 import trainer_pb2_grpc

from services.common.db import create_db_engine, run_migrations
from services.common.grpc_server import build_server, serve_until_signalled
from services.common.logging import get_logger, setup_logging
from services.common.storage import ensure_bucket, s3_client
from services.common.telemetry import setup_telemetry, shutdown_telemetry
from services.trainer.inspection import DatasetFiles, Inspector, Tokenizers
from services.trainer.servicer import TrainerServicer
from services.trainer.settings import TrainerSettings

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_trainer"


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
    )
    servicer = TrainerServicer(engine=engine, inspector=inspector, files=files)
    server, health, port = build_server(
        [lambda s: trainer_pb2_grpc.add_TrainerServiceServicer_to_server(servicer, s)],
        settings.trainer_grpc_bind,
    )
    log = get_logger(__name__)
    log.info("trainer listening", port=port, resumed=inspector.resume())

    def stop() -> None:
        inspector.shutdown()
        shutdown_telemetry()

    serve_until_signalled(server, health, on_stop=stop)
