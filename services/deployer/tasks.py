"""Celery tasks of the deployer (queue `deploy`). Run a worker with

    celery -A services.deployer.tasks worker -Q deploy --pool threads --concurrency 4

Threads, not processes: a start spends minutes waiting for a server, and a stop must not
queue behind it. The servers are children of the worker and stay in its process group, so
stopping the worker's group stops them; a worker that shuts down cleanly stops them itself.
"""

from __future__ import annotations

from functools import cache

from celery.signals import worker_init, worker_shutdown

from services.common.db import create_db_engine
from services.common.logging import get_logger, setup_logging
from services.common.queue import DEPLOY_QUEUE, make_celery
from services.common.storage import s3_client
from services.common.telemetry import setup_telemetry
from services.deployer.catalogue import TrainerCatalogue
from services.deployer.local import LocalServers
from services.deployer.runner import DeploymentRunner
from services.deployer.settings import DeployerSettings

START_DEPLOYMENT = "deployer.start_deployment"
STOP_DEPLOYMENT = "deployer.stop_deployment"

settings = DeployerSettings()
app = make_celery("deployer", settings)
app.conf.task_default_queue = DEPLOY_QUEUE
app.conf.task_routes = {"deployer.*": {"queue": DEPLOY_QUEUE}}
log = get_logger(__name__)
servers = LocalServers()


def enqueue_start(deployment_id: str, attempt: int) -> None:
    app.send_task(START_DEPLOYMENT, args=[deployment_id, attempt], queue=DEPLOY_QUEUE)


def enqueue_stop(deployment_id: str) -> None:
    app.send_task(STOP_DEPLOYMENT, args=[deployment_id], queue=DEPLOY_QUEUE)


@cache
def runner() -> DeploymentRunner:
    return DeploymentRunner(
        engine=create_db_engine(settings),
        settings=settings,
        servers=servers,
        trainer=TrainerCatalogue(
            settings.trainer_grpc_address,
            deadline_seconds=settings.grpc_deadline_seconds,
            token=settings.service_token,
        ),
        s3=s3_client(settings),
        enqueue_start=enqueue_start,
    )


@worker_init.connect  # type: ignore[untyped-decorator]
def _init(**_: object) -> None:
    setup_logging("deployer", settings.log_level)
    setup_telemetry("deployer", settings)


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _shutdown(**_: object) -> None:
    servers.stop_all()


@app.task(name=START_DEPLOYMENT)  # type: ignore[untyped-decorator]
def start_deployment(deployment_id: str, attempt: int) -> str:
    return runner().start(deployment_id, attempt)


@app.task(name=STOP_DEPLOYMENT)  # type: ignore[untyped-decorator]
def stop_deployment(deployment_id: str) -> str:
    return runner().stop(deployment_id)
