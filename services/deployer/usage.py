"""Usage accounting: requests and tokens per (owner, deployment, credential, UTC hour).

The gateway adds up finished generations for a second or so and sends them here in one
`RecordUsage`; each bucket is upserted with its counters added *in the database*
(`INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n`, on SQLite and PostgreSQL alike),
so concurrent writers (several gateways, retries) never lose an update. Reports sum the
buckets of a time range (hour precision) in SQL, per deployment, per credential and per day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from services.common.db import session_scope
from services.common.errors import InvalidInput
from services.common.timestamps import as_utc
from services.deployer.models import Deployment, UsageBucket

COUNTERS = ("requests", "prompt_tokens", "completion_tokens", "aborted")
DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=366)
MAX_RECORDS = 10_000  # in one RecordUsage; the gateway sends far fewer
_ID_LENGTH = 32

BucketKey = tuple[str, str, str, datetime]  # owner, deployment, credential, hour


@dataclass
class Counts:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    aborted: int = 0

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.aborted += other.aborted


@dataclass
class Report:
    start: datetime
    end: datetime
    totals: Counts = field(default_factory=Counts)
    by_deployment: list[tuple[str, str, Counts]] = field(default_factory=list)  # id, name
    by_credential: list[tuple[str, Counts]] = field(default_factory=list)
    by_day: list[tuple[str, Counts]] = field(default_factory=list)  # YYYY-MM-DD (UTC)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def merge(records: Iterable[tuple[BucketKey, Counts]]) -> dict[BucketKey, Counts]:
    """One entry per bucket: PostgreSQL refuses to update one row twice in one statement."""
    merged: dict[BucketKey, Counts] = {}
    for (owner, deployment, credential, hour), counts in records:
        if not (owner and deployment and credential):
            raise InvalidInput(
                "invalid_usage_record", "A usage record names its owner, deployment and credential."
            )
        if max(len(owner), len(deployment), len(credential)) > _ID_LENGTH:
            raise InvalidInput("invalid_usage_record", "A usage record's ids are too long.")
        if min(counts.requests, counts.prompt_tokens, counts.completion_tokens, counts.aborted) < 0:
            raise InvalidInput("invalid_usage_record", "Usage counts cannot be negative.")
        key = (owner, deployment, credential, hour_of(hour))
        merged.setdefault(key, Counts()).add(counts)
    return merged


def record(engine: Engine, records: Iterable[tuple[BucketKey, Counts]]) -> int:
    """Add the counts to their buckets atomically; returns how many buckets were touched."""
    merged = merge(records)
    if not merged:
        return 0
    if len(merged) > MAX_RECORDS:
        raise InvalidInput("too_many_usage_records", f"Send at most {MAX_RECORDS} records a call.")
    rows = [
        {
            "owner_id": owner,
            "deployment_id": deployment,
            "credential_id": credential,
            "hour": hour,
            **{name: getattr(counts, name) for name in COUNTERS},
        }
        # Sorted: concurrent upserts take their row locks in one order (no deadlocks).
        for (owner, deployment, credential, hour), counts in sorted(merged.items())
    ]
    table: Any = UsageBucket.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["owner_id", "deployment_id", "credential_id", "hour"],
        set_={name: table.c[name] + statement.excluded[name] for name in COUNTERS},
    )
    with session_scope(engine) as db:
        db.execute(statement)
    return len(rows)


def time_range(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The range a report covers: [start, end), 30 days up to now by default, at most a
    year. `start` is taken back to its hour: buckets are hours."""
    end = end or now
    start = start or end - DEFAULT_RANGE
    if start >= end:
        raise InvalidInput("invalid_time_range", "The start of the range must be before its end.")
    if end - start > MAX_RANGE:
        raise InvalidInput(
            "time_range_too_long", f"Ask for at most {MAX_RANGE.days} days at a time."
        )
    return hour_of(start), end.astimezone(UTC)


def _counts(row: Any) -> Counts:
    return Counts(*(int(getattr(row, name) or 0) for name in COUNTERS))


def report(
    engine: Engine,
    *,
    owner_id: str,
    start: datetime,
    end: datetime,
    deployment_id: str = "",
    credential_id: str = "",
) -> Report:
    """The owner's usage in [start, end): totals, and per deployment, credential and day."""
    table: Any = UsageBucket.__table__  # type: ignore[attr-defined]
    sums = [func.sum(table.c[name]).label(name) for name in COUNTERS]
    conditions = [table.c.owner_id == owner_id, table.c.hour >= start, table.c.hour < end]
    if deployment_id:
        conditions.append(table.c.deployment_id == deployment_id)
    if credential_id:
        conditions.append(table.c.credential_id == credential_id)
    result = Report(start=start, end=end)
    with session_scope(engine) as db:
        per_deployment = db.execute(
            select(table.c.deployment_id, *sums).where(*conditions).group_by(table.c.deployment_id)
        ).all()
        per_credential = db.execute(
            select(table.c.credential_id, *sums).where(*conditions).group_by(table.c.credential_id)
        ).all()
        per_hour = db.execute(
            select(table.c.hour, *sums).where(*conditions).group_by(table.c.hour)
        ).all()
        ids = [row.deployment_id for row in per_deployment]
        names: dict[str, str] = {}
        if ids:
            deployments: Any = Deployment.__table__  # type: ignore[attr-defined]
            names = {
                row.id: row.name
                for row in db.execute(
                    select(deployments.c.id, deployments.c.name).where(
                        deployments.c.owner_id == owner_id, deployments.c.id.in_(ids)
                    )
                )
            }
    for row in per_deployment:
        counts = _counts(row)
        result.totals.add(counts)
        result.by_deployment.append((row.deployment_id, names.get(row.deployment_id, ""), counts))
    result.by_deployment.sort(
        key=lambda entry: -(entry[2].prompt_tokens + entry[2].completion_tokens)
    )
    result.by_credential = sorted(
        ((row.credential_id, _counts(row)) for row in per_credential),
        key=lambda entry: -(entry[1].prompt_tokens + entry[1].completion_tokens),
    )
    days: dict[str, Counts] = {}
    for row in per_hour:
        days.setdefault(as_utc(row.hour).date().isoformat(), Counts()).add(_counts(row))
    result.by_day = sorted(days.items())
    return result
