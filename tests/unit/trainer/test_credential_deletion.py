"""A stored cloud credential is not deleted while a job or a live deployment runs on it."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from services.common.errors import Conflict, NotFound, Unavailable
from services.trainer import credentials
from services.trainer.models import Credential


def stored(kind: str = "gcp") -> tuple[Engine, str]:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as db:
        credential = Credential(owner_id="alice", name=kind, kind=kind, secret_encrypted="x")
        db.add(credential)
        db.commit()
        return engine, credential.id


def test_a_credential_a_deployment_runs_on_is_kept() -> None:
    engine, credential_id = stored()
    asked: list[tuple[str, str]] = []

    def deployment_on(owner_id: str, credential_id: str) -> str:
        asked.append((owner_id, credential_id))
        return "tutor"

    with pytest.raises(Conflict) as caught:
        credentials.delete(engine, "alice", credential_id, deployment_on)
    assert caught.value.code == "credential_in_use" and "'tutor'" in caught.value.message
    assert asked == [("alice", credential_id)]
    assert credentials.get(engine, "alice", credential_id)

    credentials.delete(engine, "alice", credential_id, lambda o, c: "")
    with pytest.raises(NotFound):
        credentials.get(engine, "alice", credential_id)


def test_an_unreachable_deployer_refuses_rather_than_orphans_a_machine() -> None:
    engine, credential_id = stored("aws")

    def away(owner_id: str, credential_id: str) -> str:
        raise Unavailable("deployer_unavailable", "The deployer service is not reachable.")

    with pytest.raises(Unavailable):
        credentials.delete(engine, "alice", credential_id, away)
    assert credentials.get(engine, "alice", credential_id)


def test_a_wandb_key_is_not_asked_about() -> None:
    engine, credential_id = stored("wandb")

    def never(owner_id: str, credential_id: str) -> str:
        raise AssertionError("the deployer was asked about a wandb key")

    credentials.delete(engine, "alice", credential_id, never)
