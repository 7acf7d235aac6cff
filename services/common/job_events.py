"""A Redis stream of events per training job: the trainer appends, the gateway streams them
to the browser as SSE.

Stream ids are Redis' own (`<ms>-<seq>`, increasing), so they double as SSE event ids: a
browser that reconnects with `Last-Event-ID` gets exactly the events it has not seen. A
stream is capped (the oldest events go first) and expires some days after the job ends.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

MAX_EVENTS = 20_000  # per job: a long run logs a step a second for hours; the chart thins
RETENTION_SECONDS = 7 * 24 * 3600  # once the job has ended
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def stream_key(job_id: str) -> str:
    return f"forgeline:job:{job_id}:events"


@dataclass(frozen=True)
class JobEvent:
    id: str
    type: str  # state | progress | eval | log | checkpoint | evaluation | ...
    data: dict[str, Any]


def valid_event_id(value: str | None) -> str | None:
    """A Last-Event-ID we can resume from, or None (start from the beginning)."""
    return value if value and _STREAM_ID.match(value) else None


class JobEventWriter:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def append(self, job_id: str, type_: str, data: dict[str, Any]) -> str:
        event_id = self.client.xadd(
            stream_key(job_id),
            {"type": type_, "data": json.dumps(data, default=str)},
            maxlen=MAX_EVENTS,
            approximate=True,
        )
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    def expire(self, job_id: str) -> None:
        self.client.expire(stream_key(job_id), RETENTION_SECONDS)


def _decode(entry_id: Any, fields: dict[Any, Any]) -> JobEvent:
    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    decoded = {text(k): text(v) for k, v in fields.items()}
    return JobEvent(
        id=text(entry_id), type=decoded.get("type", ""), data=json.loads(decoded.get("data", "{}"))
    )


class JobEventReader:
    """Async reads for the gateway's SSE endpoint."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def after(self, job_id: str, last_id: str | None, *, block_ms: int) -> list[JobEvent]:
        """Events after `last_id` (all of them for None), waiting up to `block_ms` for one."""
        reply: Any = await self.client.xread(
            {stream_key(job_id): last_id or "0-0"}, count=500, block=block_ms
        )
        events: list[JobEvent] = []
        for _stream, entries in reply or []:
            events += [_decode(entry_id, fields) for entry_id, fields in entries]
        return events
