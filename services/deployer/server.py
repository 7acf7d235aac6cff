"""Deployer API process: gRPC DeployerService, the health monitor, the serving reaper, and a
listener that stops the deployments of a user who is disabled. Starting and stopping servers
happens in Celery workers on queue `deploy` (services/deployer/tasks.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import redis
from forgeline.v1 import deployer_pb2_grpc
from sqlalchemy.engine import Engine
from sqlmodel import select

from services.common.channels import AUTH_REVOCATIONS
from services.common.db import create_db_engine, run_migrations, session_scope
from services.common.grpc_server import build_server, serve_until_signalled
from services.common.logging import get_logger, setup_logging
from services.common.queue import DEPLOY_QUEUE, pending_task_args
from services.common.telemetry import setup_telemetry, shutdown_telemetry
from services.deployer import lifecycle, reaper
from services.deployer.catalogue import TrainerCatalogue
from services.deployer.cloud import Accounts
from services.deployer.models import Deployment
from services.deployer.monitor import HealthMonitor
from services.deployer.servicer import DeployerServicer
from services.deployer.settings import DeployerSettings
from services.deployer.states import LIVE, STOPPED_USER_DISABLED
from services.deployer.tasks import START_DEPLOYMENT, enqueue_start, enqueue_stop

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_deployer"
log = get_logger(__name__)


def stop_all_of(engine: Engine, owner_id: str) -> int:
    """Stop every live deployment of a user (disabled: nothing of theirs keeps running)."""
    with session_scope(engine) as db:
        ids = db.exec(
            select(Deployment.id).where(
                Deployment.owner_id == owner_id,
                Deployment.state.in_(LIVE),  # type: ignore[attr-defined]
            )
        ).all()
    for deployment_id in ids:
        row = lifecycle.request_stop(engine, deployment_id, owner_id, STOPPED_USER_DISABLED)
        if row is not None and row.state == "stopping":
            enqueue_stop(deployment_id)
    return len(ids)


def listen_for_disabled_users(engine: Engine, redis_url: str, stopping: threading.Event) -> None:
    """Auth announces a disabled user on its revocation channel; their servers stop."""
    while not stopping.is_set():
        try:
            client = redis.Redis.from_url(redis_url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            pubsub.subscribe(AUTH_REVOCATIONS)
            while not stopping.is_set():
                message = pubsub.get_message(timeout=1.0)
                if not message or message.get("type") != "message":
                    continue
                event = json.loads(message["data"])
                if event.get("reason") == "user_disabled" and event.get("user_id"):
                    count = stop_all_of(engine, str(event["user_id"]))
                    log.info("stopped a disabled user's deployments", count=count)
        except Exception as error:  # Redis went away: listen again shortly
            log.warning("revocation listener lost redis; retrying", error=str(error))
            time.sleep(2)


def main() -> None:
    settings = DeployerSettings()
    setup_logging("deployer", settings.log_level)
    setup_telemetry("deployer", settings)
    engine = create_db_engine(settings)
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    trainer = TrainerCatalogue(
        settings.trainer_grpc_address,
        deadline_seconds=settings.grpc_deadline_seconds,
        token=settings.service_token,
    )
    servicer = DeployerServicer(
        engine=engine,
        settings=settings,
        trainer=trainer,
        enqueue_start=enqueue_start,
        enqueue_stop=enqueue_stop,
    )
    stopping = threading.Event()
    broker = redis.Redis.from_url(settings.redis_url)

    def pending_starts() -> set[tuple[str, int]]:
        args = pending_task_args(broker, DEPLOY_QUEUE, START_DEPLOYMENT)
        return {(str(a[0]), int(a[1])) for a in args if len(a) == 2}

    monitor = HealthMonitor(
        engine, settings, enqueue_start=enqueue_start, enqueue_stop=enqueue_stop,
        accounts=Accounts(settings, trainer), pending_starts=pending_starts,
    )  # fmt: skip
    threading.Thread(target=monitor.run, args=(stopping,), name="health", daemon=True).start()
    threading.Thread(
        target=reaper.run, args=(engine, settings, trainer, stopping), name="reaper", daemon=True
    ).start()
    threading.Thread(
        target=listen_for_disabled_users,
        args=(engine, settings.redis_url, stopping),
        name="disabled-users",
        daemon=True,
    ).start()
    server, health, port = build_server(
        [lambda s: deployer_pb2_grpc.add_DeployerServiceServicer_to_server(servicer, s)],
        settings.deployer_grpc_bind,
        service_token=settings.service_token,
    )
    log.info("deployer listening", port=port)

    def stop() -> None:
        stopping.set()
        shutdown_telemetry()

    serve_until_signalled(server, health, on_stop=stop)
