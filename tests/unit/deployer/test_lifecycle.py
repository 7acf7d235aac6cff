"""Deployment rows through their life on a real SQLite database: the health monitor
restarts a dead server, gives up after too many failed restarts, and every change is
refused to an attempt that is no longer current."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from services.common.crypto import SecretBox, generate_key
from services.common.db import create_db_engine, run_migrations, session_scope
from services.common.timestamps import utcnow
from services.deployer import lifecycle
from services.deployer.models import Deployment
from services.deployer.monitor import HealthMonitor
from services.deployer.server import MIGRATIONS, VERSION_TABLE, stop_all_of
from services.deployer.settings import DeployerSettings


@pytest.fixture
def settings(tmp_path: Path) -> DeployerSettings:
    return DeployerSettings(
        data_dir=tmp_path,
        deployer_health_failures=2,
        deployer_max_failed_restarts=2,
        deployer_start_timeout_seconds=60,
        secret_key=SecretStr(generate_key()),
    )


@pytest.fixture
def engine(settings: DeployerSettings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    yield engine
    engine.dispose()


def deployment(engine: Engine, **values: object) -> Deployment:
    row = Deployment(owner_id="owner", name="tutor", base_model="smollm2-135m-instruct")
    for key, value in values.items():
        setattr(row, key, value)
    with session_scope(engine) as db:
        db.add(row)
    return row


class Recorder:
    def __init__(self) -> None:
        self.starts: list[tuple[str, int]] = []
        self.stops: list[str] = []

    def monitor(self, engine: Engine, settings: DeployerSettings, up: bool) -> HealthMonitor:
        return HealthMonitor(
            engine,
            settings,
            enqueue_start=lambda i, a: self.starts.append((i, a)),
            enqueue_stop=self.stops.append,
            probe=lambda host, port: up,
        )


def test_a_dead_server_is_restarted_after_the_failures_allowed(
    engine: Engine, settings: DeployerSettings
) -> None:
    row = deployment(engine, state="ready", host="127.0.0.1", port=1, ready_at=utcnow())
    calls = Recorder()
    monitor = calls.monitor(engine, settings, up=False)
    monitor.check_once()
    assert calls.starts == []  # one failure is not death
    monitor.check_once()
    assert calls.starts == [(row.id, 1)]
    after = lifecycle.load(engine, row.id)
    assert after is not None
    assert (after.state, after.restarts, after.attempt) == ("starting", 1, 1)
    assert "health checks" in after.status_message
    monitor.check_once()  # a starting deployment is not restarted again
    assert calls.starts == [(row.id, 1)]


def test_a_healthy_server_is_left_alone(engine: Engine, settings: DeployerSettings) -> None:
    deployment(engine, state="ready", host="127.0.0.1", port=1, ready_at=utcnow())
    calls = Recorder()
    monitor = calls.monitor(engine, settings, up=True)
    for _ in range(5):
        monitor.check_once()
    assert calls.starts == []


def test_too_many_failed_restarts_fail_the_deployment(
    engine: Engine, settings: DeployerSettings
) -> None:
    row = deployment(engine, state="starting", attempt=3, ready_at=utcnow())
    assert lifecycle.start_failed(engine, row.id, 3, "server_exited", "boom", 2) == 4
    assert lifecycle.start_failed(engine, row.id, 3, "server_exited", "late", 2) is None
    assert lifecycle.start_failed(engine, row.id, 4, "server_exited", "boom again", 2) is None
    after = lifecycle.load(engine, row.id)
    assert after is not None
    assert after.state == "failed" and after.failure_code == "server_exited"
    assert after.failure_reason.startswith("2 restarts in a row failed")


def test_a_first_start_that_fails_is_not_retried(engine: Engine) -> None:
    row = deployment(engine, state="starting")
    assert lifecycle.start_failed(engine, row.id, 0, "server_exited", "no such model", 3) is None
    after = lifecycle.load(engine, row.id)
    assert after is not None and after.state == "failed"
    assert after.failure_reason == "no such model"


def test_a_stop_overtakes_a_start(engine: Engine) -> None:
    row = deployment(engine, state="starting")
    stopping = lifecycle.request_stop(engine, row.id, "owner")
    assert stopping is not None and stopping.state == "stopping" and stopping.attempt == 1
    # The worker still starting attempt 0 can no longer mark it ready.
    assert not lifecycle.update(engine, row.id, 0, state="ready")
    assert lifecycle.stopped(engine, row.id)
    after = lifecycle.load(engine, row.id)
    assert after is not None and after.state == "stopped"
    assert not lifecycle.update(engine, row.id, 1, state="starting")  # no way back


def test_another_owner_cannot_stop_it(engine: Engine) -> None:
    row = deployment(engine, state="ready")
    assert lifecycle.request_stop(engine, row.id, "someone-else") is None
    after = lifecycle.load(engine, row.id)
    assert after is not None and after.state == "ready"


def test_a_start_whose_worker_vanished_is_given_up(
    engine: Engine, settings: DeployerSettings
) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    row = deployment(engine, state="starting", updated_at=long_ago, starting_at=long_ago)
    calls = Recorder()
    calls.monitor(engine, settings, up=False).check_once()
    after = lifecycle.load(engine, row.id)
    assert after is not None and after.state == "failed" and after.failure_code == "worker_lost"


def test_a_disabled_user_s_deployments_are_stopped(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stops: list[str] = []
    monkeypatch.setattr("services.deployer.server.enqueue_stop", stops.append)
    live = deployment(engine, state="ready")
    ended = deployment(engine, state="stopped")
    theirs = deployment(engine, state="ready", owner_id="other")
    assert stop_all_of(engine, "owner") == 1
    assert stops == [live.id]
    for row, state in ((live, "stopping"), (ended, "stopped"), (theirs, "ready")):
        current = lifecycle.load(engine, row.id)
        assert current is not None and current.state == state


class FakeTrainer:
    def base_model(self, model_id: str) -> object:
        from forgeline.v1 import trainer_pb2

        return trainer_pb2.BaseModel(id=model_id, available_locally=model_id.startswith("smol"))


def test_create_names_limits_and_refuses(engine: Engine, settings: DeployerSettings) -> None:
    from forgeline.v1 import deployer_pb2

    from services.common.errors import Conflict, InvalidInput
    from services.deployer.servicer import DeployerServicer

    calls = Recorder()
    servicer = DeployerServicer(
        engine=engine,
        settings=settings,
        trainer=FakeTrainer(),  # type: ignore[arg-type]
        enqueue_start=lambda i, a: calls.starts.append((i, a)),
        enqueue_stop=calls.stops.append,
    )

    def create(**fields: str) -> deployer_pb2.Deployment:
        request = deployer_pb2.CreateDeploymentRequest(owner_id="owner", **fields)
        return servicer.CreateDeployment(request, None)  # type: ignore[arg-type]

    first = create(base_model="smollm2-135m-instruct")
    assert (first.name, first.state, first.target) == ("smollm2-135m-instruct", "pending", "local")
    assert calls.starts == [(first.id, 0)]
    second = create(base_model="smollm2-135m-instruct")
    assert second.name.startswith("smollm2-135m-instruct-")
    # A local server answers only to a key of its own, as a cloud node does; each has its own.
    keys = {
        SecretBox(settings).decrypt(lifecycle.load(engine, d.id).api_key_encrypted)  # type: ignore[union-attr]
        for d in (first, second)
    }
    assert len(keys) == 2 and all(k.startswith("fl-node-") for k in keys)
    with pytest.raises(InvalidInput) as caught:
        create(base_model="qwen-7b")
    assert caught.value.code == "model_not_available_locally"
    with pytest.raises(InvalidInput) as caught:
        create(base_model="smollm2-135m-instruct", name=second.name)
    assert caught.value.code == "deployment_name_taken"
    create(base_model="smollm2-135m-instruct", name="third")
    with pytest.raises(Conflict) as limit:
        create(base_model="smollm2-135m-instruct")
    assert limit.value.code == "too_many_deployments"
    assert len(calls.starts) == 3


def test_a_pending_start_the_broker_lost_is_queued_again_once(
    engine: Engine, settings: DeployerSettings
) -> None:
    """Redis restarted without its data: a deployment left pending with no start task in
    the broker is started again; one whose start still waits behind others is not (a second
    start of one attempt would start a second server)."""
    long_ago = utcnow() - timedelta(minutes=10)
    lost = deployment(engine, state="pending", attempt=2)
    queued = deployment(engine, state="pending", name="queued")
    fresh = deployment(engine, state="pending", name="fresh")
    with session_scope(engine) as db:
        for row in (lost, queued):
            stored = db.get(Deployment, row.id)
            assert stored is not None
            stored.updated_at = long_ago
            db.add(stored)
    calls = Recorder()
    monitor = HealthMonitor(
        engine,
        settings,
        enqueue_start=lambda i, a: calls.starts.append((i, a)),
        enqueue_stop=calls.stops.append,
        pending_starts=lambda: {(queued.id, 0), (lost.id, 1)},  # an older attempt's task
    )
    monitor.check_once()
    assert calls.starts == [(lost.id, 2)]  # not the one waiting, not the one just created
    monitor.check_once()
    assert calls.starts == [(lost.id, 2)]  # touched: not again before a grace
    assert fresh.id not in {i for i, _ in calls.starts}
