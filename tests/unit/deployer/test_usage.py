"""Usage accounting on a real SQLite database: buckets are upserted with their counters added
in the database (no lost update under concurrent writers), and reports sum them per
deployment, credential and day, only ever for their owner."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from services.common.db import create_db_engine, run_migrations, session_scope
from services.common.errors import InvalidInput
from services.deployer import usage
from services.deployer.models import Deployment, UsageBucket
from services.deployer.server import MIGRATIONS, VERSION_TABLE
from services.deployer.settings import DeployerSettings
from services.deployer.usage import Counts

NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(DeployerSettings(data_dir=tmp_path))
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    yield engine
    engine.dispose()


def one(
    owner: str = "alice", deployment: str = "d1", credential: str = "k1",
    at: datetime = NOON, tokens: tuple[int, int] = (10, 5), aborted: int = 0,
) -> tuple[usage.BucketKey, Counts]:  # fmt: skip
    return (owner, deployment, credential, at), Counts(1, tokens[0], tokens[1], aborted)


def test_records_add_up_in_hourly_buckets(engine: Engine) -> None:
    usage.record(engine, [one(), one(at=NOON + timedelta(minutes=59)), one(aborted=1)])
    usage.record(engine, [one(at=NOON + timedelta(hours=1))])
    with session_scope(engine) as db:
        rows = db.exec(select(UsageBucket).order_by(UsageBucket.hour)).all()  # type: ignore[arg-type]
    assert [
        (r.hour, r.requests, r.prompt_tokens, r.completion_tokens, r.aborted) for r in rows
    ] == [
        (NOON, 3, 30, 15, 1),
        (NOON + timedelta(hours=1), 1, 10, 5, 0),
    ]


def test_concurrent_writers_lose_nothing(engine: Engine) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(20):
                usage.record(engine, [one(), one(credential="k2")])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found = usage.report(engine, owner_id="alice", start=NOON, end=NOON + timedelta(hours=1))
    assert found.totals == Counts(240, 2400, 1200, 0)
    assert dict(found.by_credential) == {
        "k1": Counts(120, 1200, 600, 0),
        "k2": Counts(120, 1200, 600, 0),
    }


def test_report_groups_filters_and_keeps_owners_apart(engine: Engine) -> None:
    with session_scope(engine) as db:
        db.add(Deployment(id="d1", owner_id="alice", name="tutor"))
    yesterday = NOON - timedelta(days=1)
    usage.record(
        engine,
        [
            one(),
            one(deployment="d2", tokens=(100, 50)),
            one(credential="k2", at=yesterday),
            one(owner="bob"),
        ],
    )
    found = usage.report(engine, owner_id="alice", start=yesterday, end=NOON + timedelta(hours=1))
    assert found.totals == Counts(3, 120, 60, 0)
    assert found.by_deployment == [
        ("d2", "", Counts(1, 100, 50, 0)),
        ("d1", "tutor", Counts(2, 20, 10, 0)),
    ]
    assert found.by_day == [
        ("2026-12-02", Counts(1, 10, 5, 0)),
        ("2026-12-03", Counts(2, 110, 55, 0)),
    ]
    only = usage.report(
        engine, owner_id="alice", start=yesterday, end=NOON + timedelta(hours=1),
        deployment_id="d1", credential_id="k1",
    )  # fmt: skip
    assert only.totals == Counts(1, 10, 5, 0)
    # The range is [start, end) in whole hours: the noon bucket is outside [.., noon).
    assert usage.report(engine, owner_id="alice", start=yesterday, end=NOON).totals == Counts(
        1, 10, 5, 0
    )
    assert usage.report(engine, owner_id="carol", start=yesterday, end=NOON).totals == Counts()


def test_bad_records_and_ranges_are_refused(engine: Engine) -> None:
    with pytest.raises(InvalidInput) as caught:
        usage.record(engine, [one(owner="")])
    assert caught.value.code == "invalid_usage_record"
    with pytest.raises(InvalidInput):
        usage.record(engine, [((("a", "d", "k", NOON)), Counts(1, -1, 0, 0))])
    with pytest.raises(InvalidInput) as caught:
        usage.time_range(NOON, NOON, NOON)
    assert caught.value.code == "invalid_time_range"
    with pytest.raises(InvalidInput) as caught:
        usage.time_range(NOON - timedelta(days=400), NOON, NOON)
    assert caught.value.code == "time_range_too_long"
    start, end = usage.time_range(None, None, NOON + timedelta(minutes=30))
    assert (start, end) == (NOON - timedelta(days=30), NOON + timedelta(minutes=30))
