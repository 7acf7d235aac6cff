"""Celery tasks of the trainer (queue `training`). Run a worker with

    celery -A services.trainer.tasks worker -Q training --concurrency 1

Tasks are acknowledged late and jobs are leased (see `jobs.claim`): a job whose worker died
is picked up again by the next worker that starts, and resumes from its last checkpoint.
"""

from __future__ import annotations

import os
import socket
from functools import cache, partial

import redis
from celery.signals import worker_process_init, worker_ready

from services.common.db import create_db_engine
from services.common.job_events import JobEventWriter
from services.common.logging import get_logger, setup_logging
from services.common.queue import TRAINING_QUEUE, make_celery, pending_task_args
from services.common.storage import s3_client
from services.common.telemetry import setup_telemetry
from services.common.timestamps import as_utc, utcnow
from services.trainer import jobs
from services.trainer.providers.choice import provider_for
from services.trainer.runner import URL_SECONDS, JobRunner
from services.trainer.settings import TrainerSettings

RUN_JOB = "trainer.run_job"
RESUME_ORPHANS = "trainer.resume_orphans"

settings = TrainerSettings()
app = make_celery("trainer", settings)
app.conf.task_default_queue = TRAINING_QUEUE
app.conf.task_routes = {"trainer.*": {"queue": TRAINING_QUEUE}}
log = get_logger(__name__)


@cache
def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


@cache
def runner() -> JobRunner:
    engine, s3 = create_db_engine(settings), s3_client(settings)
    return JobRunner(
        engine=engine,
        s3=s3,
        events=JobEventWriter(redis.Redis.from_url(settings.redis_url)),
        settings=settings,
        providers=partial(
            provider_for, engine=engine, s3=s3, settings=settings, url_seconds=URL_SECONDS
        ),
    )


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _init_process(**_: object) -> None:
    setup_logging("trainer", settings.log_level)
    setup_telemetry("trainer", settings)


@worker_ready.connect  # type: ignore[untyped-decorator]
def _resume(**_: object) -> None:
    app.send_task(RESUME_ORPHANS, queue=TRAINING_QUEUE, kwargs={"look_again": True})


@app.task(name=RUN_JOB)  # type: ignore[untyped-decorator]
def run_job(job_id: str) -> str:
    return runner().run(job_id, worker_name())


@app.task(name=RESUME_ORPHANS)  # type: ignore[untyped-decorator]
def resume_orphans(look_again: bool = False) -> int:
    engine = runner().engine
    orphans = jobs.orphaned(engine)
    for job_id in orphans:
        log.info("resuming a job whose worker stopped", job_id=job_id)
        run_job.apply_async((job_id,))
    waiting = pending_task_args(broker(), TRAINING_QUEUE, RUN_JOB)
    lost = jobs.queued_without_task(engine, (str(args[0]) for args in waiting if args))
    for job_id in lost:
        log.warning("queueing again a job whose task the broker lost", job_id=job_id)
        run_job.apply_async((job_id,))
    if look_again:
        # A worker that crashed just before this one started still holds its jobs' leases,
        # which run out within the lease time: look once more when the last of them has,
        # rather than a whole lease time after this start.
        end = jobs.last_lease_end(engine)
        if end is not None:
            wait = (as_utc(end) - utcnow()).total_seconds() + 1
            app.send_task(RESUME_ORPHANS, queue=TRAINING_QUEUE, countdown=max(wait, 0))
    return len(orphans) + len(lost)
