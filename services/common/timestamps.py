"""Time as every service stores and sends it: aware UTC datetimes, protobuf Timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from google.protobuf.timestamp_pb2 import Timestamp


def utcnow() -> datetime:
    # Aware UTC: SQLModel's datetime columns refuse naive values and return UTC.
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """The datetime as aware UTC. A naive one is taken to be UTC already: SQLite and
    PostgreSQL's `timestamp` columns return them so, as do event senders that omit the offset."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@overload
def to_timestamp(value: datetime) -> Timestamp: ...
@overload
def to_timestamp(value: None) -> None: ...
def to_timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None to leave an optional field unset."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
