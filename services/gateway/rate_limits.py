"""Rate limits on the OpenAI-compatible generation routes, per credential (an API key, or a
signed-in session), shared by every gateway process through Redis.

A sliding window of one minute, estimated from two fixed windows (the current minute and the
one before, weighted by how much of it still overlaps the last 60 s): as smooth as a log of
timestamps, at the cost of two counters. Checking and counting a request is one Lua script,
so one round trip and atomic across gateways. A request counts when it is let through,
whatever then becomes of it (an unknown model, a server error): it is the calls that are
limited, as OpenAI does. A refused one does not count.

Tokens a minute (prompt + completion) cannot be known before the answer: a request is refused
once the window's tokens are used up, and each generation's tokens are added when it ends.

Limits: an API key's own (set when it is created) or else the platform's default
(`RATE_LIMIT_REQUESTS_PER_MINUTE`, `RATE_LIMIT_TOKENS_PER_MINUTE`; 0: none); a key's own limit
never exceeds the default. When Redis cannot be reached the request is let through (logged):
an outage of the limiter should not become an outage of the API.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from fastapi import Request
from forgeline.v1 import auth_pb2

from services.common.errors import RateLimited
from services.common.logging import get_logger
from services.gateway.settings import GatewaySettings
from services.gateway.stream_tap import Generation, Outcome

log = get_logger(__name__)

WINDOW_SECONDS = 60
REDIS_TIMEOUT_SECONDS = 2.0
_PREFIX = "forgeline:ratelimit"

# KEYS: requests now, requests before, tokens now, tokens before (windows of one minute).
# ARGV: request limit, token limit (0: none), the share of the current window gone (0..1),
# the counters' lifetime. Returns {verdict, requests before, now, tokens before, now}, where
# verdict 1 = let through (and counted), 0 = too many requests, 2 = too many tokens.
_CHECK = """
local request_limit = tonumber(ARGV[1])
local token_limit = tonumber(ARGV[2])
local weight = 1 - tonumber(ARGV[3])
local requests_now = tonumber(redis.call('GET', KEYS[1]) or '0')
local requests_before = tonumber(redis.call('GET', KEYS[2]) or '0')
local tokens_now = tonumber(redis.call('GET', KEYS[3]) or '0')
local tokens_before = tonumber(redis.call('GET', KEYS[4]) or '0')
local seen = {requests_before, requests_now, tokens_before, tokens_now}
if request_limit > 0 and requests_before * weight + requests_now + 1 > request_limit then
  return {0, unpack(seen)}
end
if token_limit > 0 and tokens_before * weight + tokens_now + 1 > token_limit then
  return {2, unpack(seen)}
end
if request_limit > 0 then
  redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return {1, unpack(seen)}
"""


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int = 0  # 0: no limit
    tokens_per_minute: int = 0


def effective(own: int, default: int) -> int:
    """A key's own limit, never above the platform's default; the default when it has none."""
    if own > 0 and default > 0:
        return min(own, default)
    return own or default


def limits_for(principal: auth_pb2.Principal, settings: GatewaySettings) -> Limits:
    return Limits(
        effective(principal.requests_per_minute, settings.rate_limit_requests_per_minute),
        effective(principal.tokens_per_minute, settings.rate_limit_tokens_per_minute),
    )


def estimate(before: float, now: float, elapsed: float, window: float = WINDOW_SECONDS) -> float:
    """How many fell in the last `window` seconds: all of this window's, and the share of the
    previous window's that still overlaps (assuming they were spread evenly)."""
    return before * (1 - elapsed / window) + now


def retry_after(
    before: int, now: int, limit: int, elapsed: float, window: float = WINDOW_SECONDS
) -> int:
    """Whole seconds until the estimate leaves room for one more (never less than 1)."""
    room = limit - 1
    if now > room:
        # This window alone is full: wait for the next one, and for this one's count, then
        # the previous window's, to fade enough.
        wait = (window - elapsed) + window * (1 - room / now)
    elif before > 0:
        wait = window * (1 - (room - now) / before) - elapsed
    else:
        wait = 0.0
    return max(1, math.ceil(wait))


class RateLimiter:
    def __init__(
        self, redis: Any, settings: GatewaySettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self._check = redis.register_script(_CHECK)
        # Credentials with a token limit, seen recently: only their tokens need counting.
        self._token_limited: TTLCache[str, int] = TTLCache(maxsize=100_000, ttl=3600)
        self._pending: set[asyncio.Task[None]] = set()

    def _keys(self, credential_id: str, kind: str, window: int) -> list[str]:
        # The hash tag keeps a credential's counters on one Redis Cluster slot.
        return [f"{_PREFIX}:{{{credential_id}}}:{kind}:{w}" for w in (window, window - 1)]

    async def check(self, principal: auth_pb2.Principal) -> None:
        """Count the request, or raise `RateLimited` (429 `rate_limit_exceeded`)."""
        limits = limits_for(principal, self.settings)
        if not (limits.requests_per_minute or limits.tokens_per_minute):
            return
        credential = principal.credential_id
        if limits.tokens_per_minute:
            self._token_limited[credential] = limits.tokens_per_minute
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        elapsed = now - window * WINDOW_SECONDS
        keys = self._keys(credential, "requests", window) + self._keys(credential, "tokens", window)
        args = [
            limits.requests_per_minute,
            limits.tokens_per_minute,
            f"{elapsed / WINDOW_SECONDS:.6f}",
            WINDOW_SECONDS * 2 + 5,
        ]
        try:
            reply = await asyncio.wait_for(
                self._check(keys=keys, args=args), timeout=REDIS_TIMEOUT_SECONDS
            )
        except Exception as error:  # Redis down: let the request through rather than fail
            log.warning("rate limiter unavailable; request let through", error=str(error))
            return
        verdict, requests_before, requests_now, tokens_before, tokens_now = (int(v) for v in reply)
        if verdict == 0:
            raise RateLimited(
                "rate_limit_exceeded",
                f"Rate limit reached: {limits.requests_per_minute} requests a minute for this "
                "credential. Wait a little and try again.",
                retry_after=retry_after(
                    requests_before, requests_now, limits.requests_per_minute, elapsed
                ),
            )
        if verdict == 2:
            raise RateLimited(
                "rate_limit_exceeded",
                f"Rate limit reached: {limits.tokens_per_minute} tokens a minute for this "
                "credential. Wait a little and try again.",
                retry_after=retry_after(
                    tokens_before, tokens_now, limits.tokens_per_minute, elapsed
                ),
            )

    async def count_tokens(self, generation: Generation, outcome: Outcome) -> None:
        """An outcome listener: add a generation's tokens to its credential's window, in the
        background (the answer may still be waiting on listeners)."""
        tokens = outcome.prompt_tokens + outcome.completion_tokens
        if tokens <= 0 or generation.credential_id not in self._token_limited:
            return
        window = int(self.clock() // WINDOW_SECONDS)
        key = self._keys(generation.credential_id, "tokens", window)[0]

        async def add() -> None:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.incrby(key, tokens)
                    pipe.expire(key, WINDOW_SECONDS * 2 + 5)
                    await asyncio.wait_for(pipe.execute(), timeout=REDIS_TIMEOUT_SECONDS)
            except Exception as error:
                log.warning("could not count a generation's tokens", error=str(error))

        task = asyncio.create_task(add())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


async def enforce_rate_limit(request: Request, principal: auth_pb2.Principal) -> None:
    """The check the `/v1` generation routes make before anything else."""
    limiter: RateLimiter = request.app.state.rate_limiter
    await limiter.check(principal)
