"""The training reaper's judgement: which tagged instances go, which stay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from services.common.cloud.instances import TaggedInstance
from services.trainer import credentials, reaper
from services.trainer.models import Credential, TrainingJob


@dataclass
class FakeAccount:
    instances: list[TaggedInstance]
    provider: str = "aws"
    terminated: list[str] = field(default_factory=list)

    def tagged(self) -> list[TaggedInstance]:
        return self.instances

    def terminate(self, ref: str) -> None:
        self.terminated.append(ref)


def job(job_id: str, state: str, ref: str = "") -> TrainingJob:
    return TrainingJob(
        id=job_id, owner_id="alice", name="j", base_model="m", dataset_id="d", stage="sft",
        method="lora", provider="aws", preset="quick", config_yaml="", state=state,
        compute_ref=ref,
    )  # fmt: skip


def test_only_training_instances_of_this_owner_without_a_running_job_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as db:
        db.add(Credential(owner_id="alice", name="aws", kind="aws", secret_encrypted="x"))
        db.add(job("running", "training", "aws:i-running"))
        db.add(job("relaunched", "training", "aws:i-new"))
        db.add(job("ended", "succeeded", "aws:i-ended"))
        db.add(job("launching", "provisioning"))
        db.commit()

    def training(ref: str, job_id: str, owner: str = "alice", role: str = "training") -> Any:
        return TaggedInstance(ref, job_id, "running", owner_id=owner, role=role)

    account = FakeAccount(
        [
            training("i-running", "running"),  # the job's recorded machine: stays
            training("i-old", "relaunched"),  # left by an earlier attempt: goes
            training("i-ended", "ended"),  # its job ended: goes
            training("i-stray", "0" * 32),  # no such job: goes
            training("i-launching", "launching"),  # launched a moment ago: stays
            training("i-serving", "0" * 32, role="serving"),  # the deployer's to judge
            training("i-bob", "0" * 32, owner="bob"),  # another user's, in a shared account
        ]
    )
    monkeypatch.setattr(credentials, "api_for", lambda settings, credential: account)
    reaped = reaper.reap(engine, settings=None)  # type: ignore[arg-type]
    assert sorted(account.terminated) == ["i-ended", "i-old", "i-stray"]
    assert {r.ref: r.reason for r in reaped}["i-ended"] == "job succeeded"
