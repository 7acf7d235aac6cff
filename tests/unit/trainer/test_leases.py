"""Job leases (services/trainer/jobs.py): which jobs a starting worker takes over, and when it
must look again for the ones whose stopped worker's lease has not yet run out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from services.common.timestamps import as_utc, utcnow
from services.trainer import jobs
from services.trainer.models import TrainingJob
from tests.rows import training_job_row as job


def test_run_out_leases_are_orphans_and_the_last_held_one_says_when_to_look_again() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as db:
        db.add(job("crashed", "training", -3))  # its worker stopped renewing
        db.add(job("held", "training", 4))  # a worker renewed it a moment ago
        db.add(job("held-longer", "uploading", 8))
        db.add(job("queued", "queued", None))  # its task is still in the queue
        db.add(job("ended", "succeeded", 30))  # ended: never taken over
        db.commit()

    assert jobs.orphaned(engine) == ["crashed"]
    end = jobs.last_lease_end(engine)
    assert end is not None
    assert timedelta(seconds=7) < as_utc(end) - utcnow() <= timedelta(seconds=8)


def test_nothing_to_look_again_for_when_no_lease_is_held() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as db:
        db.add(job("crashed", "training", -3))
        db.add(job("ended", "failed", 30))
        db.commit()
    assert jobs.last_lease_end(engine) is None


class RecordedEvents:
    """Where jobs.report sends what it records (a Redis stream in the services)."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, str, dict[str, object]]] = []

    def append(self, job_id: str, type_: str, data: dict[str, object]) -> str:
        self.appended.append((job_id, type_, data))
        return str(len(self.appended))


def _take_over(engine: Engine, worker: str) -> TrainingJob:
    """The job's lease runs out (its worker stopped), and `worker` claims it."""
    with Session(engine) as db:
        row = db.get(TrainingJob, "j1")
        assert row is not None
        row.lease_until = utcnow() - timedelta(seconds=1)
        db.add(row)
        db.commit()
    claimed = jobs.claim(engine, "j1", worker, lease_seconds=60)
    assert claimed is not None
    return claimed


def test_a_job_whose_workers_keep_stopping_without_progress_is_given_up() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    token, token_hash = jobs.new_callback_token()
    with Session(engine) as db:
        db.add(job("j1", "queued", None))
        db.commit()
    first = jobs.claim(engine, "j1", "host:1", lease_seconds=60)
    assert first is not None and not jobs.kept_stopping(first)
    assert jobs.claim(engine, "j1", "host:9", lease_seconds=60) is None  # held: no count
    assert not jobs.kept_stopping(_take_over(engine, "host:2"))  # stopped once
    jobs.update(engine, "j1", state="training", callback_token_hash=token_hash)
    # A checkpoint is progress: the stops before it no longer count.
    events = RecordedEvents()
    jobs.report(engine, events, "j1", token, [{"type": "checkpoint", "data": {"step": 2}}])  # type: ignore[arg-type]
    assert not jobs.kept_stopping(_take_over(engine, "host:3"))
    assert not jobs.kept_stopping(_take_over(engine, "host:4"))
    assert jobs.kept_stopping(_take_over(engine, "host:5"))  # 3 stops since the checkpoint
