"""The gateway's usage batching: generations add up in memory per (owner, deployment,
credential, hour) and go to the deployer in one call; a failed call keeps its sums, and
stopping flushes what is left."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from forgeline.v1 import deployer_pb2

from services.gateway.stream_tap import Generation, Outcome
from services.gateway.usage import UsageBatcher

NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Deployer:
    def __init__(self) -> None:
        self.sent: list[deployer_pb2.RecordUsageRequest] = []
        self.failing = False

    async def record(self, request: deployer_pb2.RecordUsageRequest) -> None:
        if self.failing:
            raise ConnectionError("deployer down")
        self.sent.append(request)

    def totals(self) -> dict[tuple[str, str, datetime], tuple[int, int, int, int]]:
        found: dict[tuple[str, str, datetime], tuple[int, int, int, int]] = {}
        for request in self.sent:
            for r in request.records:
                key = (r.deployment_id, r.credential_id, r.hour.ToDatetime(tzinfo=UTC))
                old = found.get(key, (0, 0, 0, 0))
                new = (r.requests, r.prompt_tokens, r.completion_tokens, r.aborted)
                found[key] = tuple(a + b for a, b in zip(old, new, strict=True))
        return found


def generation(deployment: str = "d1", credential: str = "k1") -> Generation:
    return Generation("alice", credential, deployment, "tutor", "chat/completions", {})


@pytest.mark.anyio
async def test_sixteen_streams_make_one_call() -> None:
    deployer, now = Deployer(), [NOON + timedelta(minutes=5)]
    batcher = UsageBatcher(deployer.record, clock=lambda: now[0])
    for i in range(16):
        await batcher.listener(generation(), Outcome(10, 5 + i, aborted=i == 0))
    await batcher.listener(generation(credential="k2"), Outcome(1, 1))
    now[0] = NOON + timedelta(hours=1, minutes=1)
    await batcher.listener(generation(), Outcome(3, 3))
    await batcher.flush()
    assert len(deployer.sent) == 1 and batcher.pending == 0
    assert deployer.totals() == {
        ("d1", "k1", NOON): (16, 160, 80 + 120, 1),
        ("d1", "k2", NOON): (1, 1, 1, 0),
        ("d1", "k1", NOON + timedelta(hours=1)): (1, 3, 3, 0),
    }
    await batcher.flush()  # nothing new: no call
    assert len(deployer.sent) == 1


@pytest.mark.anyio
async def test_a_failed_flush_keeps_its_sums() -> None:
    deployer = Deployer()
    batcher = UsageBatcher(deployer.record, clock=lambda: NOON)
    await batcher.listener(generation(), Outcome(10, 5))
    deployer.failing = True
    await batcher.flush()
    await batcher.listener(generation(), Outcome(1, 1))
    deployer.failing = False
    await batcher.flush()
    assert deployer.totals() == {("d1", "k1", NOON): (2, 11, 6, 0)}


@pytest.mark.anyio
async def test_stopping_flushes_what_is_left() -> None:
    deployer = Deployer()
    batcher = UsageBatcher(deployer.record, clock=lambda: NOON)
    runner = asyncio.create_task(batcher.run(interval=3600))
    await asyncio.sleep(0)
    await batcher.listener(generation(), Outcome(7, 7))
    batcher.stop()
    await asyncio.wait_for(runner, timeout=5)
    assert deployer.totals() == {("d1", "k1", NOON): (1, 7, 7, 0)}
