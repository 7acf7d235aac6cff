"""The health monitor on cloud deployments, on a real SQLite database with a fake account:
a node becomes ready once /health answers, is terminated and failed after the boot timeout
or when its machine stops, and a ready one nobody uses is stopped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from services.common.db import create_db_engine, run_migrations, session_scope
from services.common.timestamps import utcnow
from services.deployer import lifecycle
from services.deployer.models import Deployment
from services.deployer.monitor import HealthMonitor
from services.deployer.server import MIGRATIONS, VERSION_TABLE
from services.deployer.settings import DeployerSettings
from services.gateway.inference import UseRecorder


@pytest.fixture
def settings(tmp_path: Path) -> DeployerSettings:
    return DeployerSettings(data_dir=tmp_path, deployer_cloud_boot_timeout_seconds=60)


@pytest.fixture
def engine(settings: DeployerSettings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    yield engine
    engine.dispose()


class FakeApi:
    provider = "aws"

    def __init__(self) -> None:
        self.machine_state = "running"
        self.terminated: list[str] = []

    def address(self, ref: str) -> str:
        return "203.0.113.7"

    def state(self, ref: str) -> str:
        return self.machine_state


class FakeAccounts:
    def __init__(self) -> None:
        self.fake = FakeApi()

    def api(self, row: Deployment) -> Any:
        return self.fake

    def terminate(self, row: Deployment) -> None:
        self.fake.terminated.append(row.compute_ref)


def booting(engine: Engine, **values: Any) -> Deployment:
    row = Deployment(
        owner_id="owner", name="tutor", base_model="smollm2-135m-instruct", target="aws",
        state="starting", compute_ref="aws:i-1", port=8000, starting_at=utcnow(),
        credential_id="c", idle_minutes=30,
    )  # fmt: skip
    for key, value in values.items():
        setattr(row, key, value)
    with session_scope(engine) as db:
        db.add(row)
    return row


def monitor(
    engine: Engine, settings: DeployerSettings, accounts: FakeAccounts, up: bool, probed: list[Any]
) -> tuple[HealthMonitor, list[str]]:
    stops: list[str] = []

    def probe(host: str, port: int) -> bool:
        probed.append((host, port))
        return up

    watcher = HealthMonitor(
        engine,
        settings,
        enqueue_start=lambda i, a: None,
        enqueue_stop=stops.append,
        probe=probe,
        accounts=accounts,  # type: ignore[arg-type]
    )
    return watcher, stops


def test_a_node_is_ready_once_its_public_address_answers(
    engine: Engine, settings: DeployerSettings
) -> None:
    row = booting(engine)
    accounts, probed = FakeAccounts(), []
    watcher, _ = monitor(engine, settings, accounts, up=True, probed=probed)
    watcher.check_once()
    after = lifecycle.load(engine, row.id)
    assert after is not None and after.state == "ready" and after.host == "203.0.113.7"
    assert probed == [("203.0.113.7", 8000)]
    assert after.upstream_url == "http://203.0.113.7:8000/v1"


def test_a_node_that_does_not_answer_in_time_is_terminated(
    engine: Engine, settings: DeployerSettings
) -> None:
    row = booting(engine, starting_at=utcnow() - timedelta(seconds=61))
    accounts = FakeAccounts()
    watcher, _ = monitor(engine, settings, accounts, up=False, probed=[])
    watcher.check_once()
    after = lifecycle.load(engine, row.id)
    assert after is not None and (after.state, after.failure_code) == ("failed", "boot_timeout")
    assert accounts.fake.terminated == ["aws:i-1"]


def test_a_node_whose_machine_stopped_fails_at_once(
    engine: Engine, settings: DeployerSettings
) -> None:
    row = booting(engine)
    accounts = FakeAccounts()
    accounts.fake.machine_state = "gone"
    watcher, _ = monitor(engine, settings, accounts, up=False, probed=[])
    watcher.check_once()
    after = lifecycle.load(engine, row.id)
    assert after is not None and (after.state, after.failure_code) == ("failed", "node_lost")


def test_an_unused_node_is_stopped_and_a_used_one_is_not(
    engine: Engine, settings: DeployerSettings
) -> None:
    long_ago = utcnow() - timedelta(minutes=31)
    idle = booting(engine, state="ready", host="203.0.113.7", ready_at=long_ago)
    used = booting(
        engine, name="used", state="ready", host="203.0.113.8", ready_at=long_ago,
        last_used_at=utcnow() - timedelta(minutes=5),
    )  # fmt: skip
    watcher, stops = monitor(engine, settings, FakeAccounts(), up=True, probed=[])
    watcher.check_once()
    assert stops == [idle.id]
    stopping = lifecycle.load(engine, idle.id)
    assert stopping is not None and (stopping.state, stopping.stop_reason) == ("stopping", "idle")
    assert "30 idle minutes" in stopping.status_message
    still = lifecycle.load(engine, used.id)
    assert still is not None and still.state == "ready"


def test_the_gateway_records_a_use_at_most_once_a_minute() -> None:
    now = [0.0]
    recorder = UseRecorder(interval=60, clock=lambda: now[0])
    assert recorder.due("a") and not recorder.due("a") and recorder.due("b")
    now[0] = 59
    assert not recorder.due("a")
    now[0] = 61
    assert recorder.due("a")
