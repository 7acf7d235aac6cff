"""The Celery app factory and the platform's queue names.

Workers of every service are built here from settings, so they agree on broker, result
backend, serialisation and delivery guarantees.
"""

from __future__ import annotations

from celery import Celery

from services.common.settings import BaseServiceSettings

# Queue names are part of the contract between services (see docs/architecture.md).
TRAINING_QUEUE = "training"
DEPLOY_QUEUE = "deploy"
INDEXING_QUEUE = "indexing"


def make_celery(name: str, settings: BaseServiceSettings) -> Celery:
    app = Celery(name, broker=settings.redis_url, backend=settings.redis_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # A task is acknowledged only when it has finished, so a crashed worker's task is
        # delivered again; tasks must therefore be idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Redis redelivers an unacknowledged task after this long; longer than any task.
        broker_transport_options={"visibility_timeout": 6 * 3600},
        result_expires=24 * 3600,
        timezone="UTC",
    )
    return app
