"""Rows made straight in a service's tables, for tests of the logic on those tables (leases,
sweeps); flows a user drives go through the gateway instead (tests/factories.py)."""

from __future__ import annotations

from datetime import timedelta

from services.common.timestamps import utcnow
from services.trainer.models import TrainingJob


def training_job_row(job_id: str, state: str, lease_in: float | None) -> TrainingJob:
    """A trainer_jobs row in `state`, leased for `lease_in` more seconds (negative: its
    lease ran out; None: never leased)."""
    lease = None if lease_in is None else utcnow() + timedelta(seconds=lease_in)
    return TrainingJob(
        id=job_id, owner_id="alice", name="j", base_model="m", dataset_id="d", stage="sft",
        method="lora", provider="local", preset="quick", config_yaml="", state=state,
        lease_owner="" if lease is None else "host:1", lease_until=lease,
    )  # fmt: skip
