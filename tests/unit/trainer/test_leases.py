"""Job leases (services/trainer/jobs.py): which jobs a starting worker takes over, and when it
must look again for the ones whose stopped worker's lease has not yet run out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from services.common.timestamps import as_utc, utcnow
from services.trainer import jobs
from services.trainer.models import TrainingJob


def job(job_id: str, state: str, lease_in: float | None) -> TrainingJob:
    lease = None if lease_in is None else utcnow() + timedelta(seconds=lease_in)
    return TrainingJob(
        id=job_id, owner_id="alice", name="j", base_model="m", dataset_id="d", stage="sft",
        method="lora", provider="local", preset="quick", config_yaml="", state=state,
        lease_owner="" if lease is None else "host:1", lease_until=lease,
    )  # fmt: skip


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
