"""The Celery app factory and the platform's queue names.

Workers of every service are built here from settings, so they agree on broker, result
backend, serialisation and delivery guarantees.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import redis
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


def pending_task_args(client: redis.Redis, queue: str, task: str) -> list[list[Any]]:
    """The arguments of every `task` message the Redis broker holds for `queue`: waiting in
    it (each priority level is a list of its own) or delivered and not yet acknowledged.

    What a sweep compares with the database: a task the database says is due and that is
    in neither place was lost with the broker's data (Redis restarted without persistence).
    """
    raw: list[bytes | str] = []
    for key in client.scan_iter(match=f"{queue}*"):
        # kombu names priority levels after the queue: "<queue>\x06\x16<priority>"
        if key == queue.encode() or key.startswith(f"{queue}\x06\x16".encode()):
            raw += client.lrange(key, 0, -1)
    for delivered in client.hvals("unacked"):  # kombu: [message, exchange, routing key]
        message, _exchange, routing_key = json.loads(delivered)
        if routing_key == queue:
            raw.append(json.dumps(message).encode())
    found = []
    for item in raw:
        message = json.loads(item)
        if message.get("headers", {}).get("task") != task:
            continue
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        found.append(list(args))
    return found
