"""Usage accounting, the gateway's half: every finished generation (an outcome listener) is
added up in memory per (owner, deployment, credential, UTC hour), and the sums go to the
deployer in one `RecordUsage` every `USAGE_FLUSH_SECONDS`: sixteen concurrent streams make
one call a second, not sixteen, and a client never waits on it.

Nothing is lost on a clean shutdown: the lifespan flushes what is left before the deployer's
channel closes. A failed flush keeps its sums for the next one (bounded: after
`MAX_PENDING_BUCKETS` distinct buckets the oldest failure is dropped, and logged). A gateway
that is killed outright loses at most the last interval's counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from forgeline.v1 import deployer_pb2

from services.common.logging import get_logger
from services.common.timestamps import to_timestamp, utcnow
from services.gateway.stream_tap import Generation, Outcome

log = get_logger(__name__)

MAX_PENDING_BUCKETS = 50_000
Key = tuple[str, str, str, datetime]  # owner, deployment, credential, hour
Sender = Callable[[deployer_pb2.RecordUsageRequest], Awaitable[object]]


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class UsageBatcher:
    def __init__(self, send: Sender, clock: Callable[[], datetime] = utcnow) -> None:
        self.send = send
        self.clock = clock
        self._pending: dict[Key, list[int]] = {}  # requests, prompt, completion, aborted
        self._flushing = asyncio.Lock()
        self._stopping = asyncio.Event()

    def add(self, generation: Generation, outcome: Outcome) -> None:
        key = (
            generation.owner_id,
            generation.deployment_id,
            generation.credential_id,
            hour_of(self.clock()),
        )
        self._merge(
            key,
            [1, outcome.prompt_tokens, outcome.completion_tokens, 1 if outcome.aborted else 0],
        )

    async def listener(self, generation: Generation, outcome: Outcome) -> None:
        """The outcome listener: takes no time, never fails the caller."""
        self.add(generation, outcome)

    def _merge(self, key: Key, counts: list[int]) -> None:
        found = self._pending.get(key)
        if found is None:
            if len(self._pending) >= MAX_PENDING_BUCKETS:
                dropped = next(iter(self._pending))
                del self._pending[dropped]
                log.warning("usage not recorded: too much waiting for the deployer")
            self._pending[key] = list(counts)
        else:
            for i, value in enumerate(counts):
                found[i] += value

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Send everything added so far; on failure keep it for the next flush."""
        async with self._flushing:
            taken, self._pending = self._pending, {}
            if not taken:
                return
            request = deployer_pb2.RecordUsageRequest(
                records=[
                    deployer_pb2.UsageRecord(
                        owner_id=owner,
                        deployment_id=deployment,
                        credential_id=credential,
                        hour=to_timestamp(hour),
                        requests=counts[0],
                        prompt_tokens=counts[1],
                        completion_tokens=counts[2],
                        aborted=counts[3],
                    )
                    for (owner, deployment, credential, hour), counts in taken.items()
                ]
            )
            try:
                await self.send(request)
            except Exception as error:
                log.warning(
                    "could not record usage; keeping it for the next try",
                    error=str(error),
                    buckets=len(taken),
                )
                for key, counts in taken.items():
                    self._merge(key, counts)

    async def run(self, interval: float) -> None:
        """Flush every `interval` seconds until `stop()`, then once more: a flush is never
        cut off half-way, so a batch is neither lost nor sent twice."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            await self.flush()

    def stop(self) -> None:
        """Make `run` flush what is left and return (the lifespan's end, after the requests
        in flight have ended)."""
        self._stopping.set()
