"""Redis loses its data (restarted without persistence): a queued training job whose task
went with it is found again from the database and queued again, while a job whose task is
still waiting, or delivered to a worker, is left alone (no duplicate work). Against a real
Valkey broker, with tasks sent by a real Celery client."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from services.common.queue import DEPLOY_QUEUE, TRAINING_QUEUE, make_celery, pending_task_args
from services.common.settings import BaseServiceSettings
from services.deployer.tasks import START_DEPLOYMENT
from services.trainer import jobs
from services.trainer.tasks import RUN_JOB
from tests.rows import training_job_row as job
from tests.servers.valkey import run_valkey


def test_a_queued_job_whose_task_the_broker_lost_is_found_again(tmp_path: Path) -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as db:
        for job_id in ("waiting", "urgent", "delivered", "lost"):
            db.add(job(job_id, "queued", None))
        db.add(job("running", "training", 30))  # leased: its worker has it
        db.add(job("ended", "succeeded", None))
        db.commit()

    with run_valkey(tmp_path) as url:
        app = make_celery("probe", BaseServiceSettings(redis_url=url))
        for job_id in ("delivered", "waiting", "lost"):  # first in, first out
            app.send_task(RUN_JOB, args=[job_id], queue=TRAINING_QUEUE)
        app.send_task(RUN_JOB, args=["urgent"], queue=TRAINING_QUEUE, priority=6)
        app.send_task("trainer.resume_orphans", queue=TRAINING_QUEUE)  # another task: ignored
        broker = redis.Redis.from_url(url)
        # A worker took "delivered" and has not acknowledged it yet: kombu keeps it aside
        # (until the connection closes, when it goes back to the queue).
        with app.connection_for_read() as connection:
            taken = connection.default_channel.basic_get(TRAINING_QUEUE, no_ack=False)
            assert taken is not None and taken.headers["argsrepr"] == "['delivered']"
            assert broker.hlen("unacked") == 1
            # Redis restarted without its data: the lost job's task is gone.
            for raw in broker.lrange(TRAINING_QUEUE, 0, -1):
                if json.loads(raw)["headers"]["argsrepr"] == "['lost']":
                    broker.lrem(TRAINING_QUEUE, 1, raw)

            waiting = pending_task_args(broker, TRAINING_QUEUE, RUN_JOB)
            assert sorted(args[0] for args in waiting) == ["delivered", "urgent", "waiting"]
            assert jobs.queued_without_task(engine, (a[0] for a in waiting)) == ["lost"]
            # The deployer's sweep reads its own queue the same way (services/deployer/monitor.py).
            app.send_task(START_DEPLOYMENT, args=["d1", 3], queue=DEPLOY_QUEUE)
            assert pending_task_args(broker, DEPLOY_QUEUE, START_DEPLOYMENT) == [["d1", 3]]
            assert pending_task_args(broker, DEPLOY_QUEUE, RUN_JOB) == []
