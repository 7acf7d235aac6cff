"""Password sign-in and registration throttled by the address they come from, before the
auth service spends an argon2 hash on them.

Accounts are never locked: locking let anyone lock the administrator out, and answering
"locked" only for accounts that exist told a stranger which ones do. Instead the source is
slowed down, the same way whether the account exists or not:
- failed sign-ins from one address, whatever the accounts (`SIGN_IN_FAILURES_PER_ADDRESS`);
- failed sign-ins from one address on one email (`SIGN_IN_FAILURES_PER_ACCOUNT`), keyed by
  the email's hash, so an unknown email is counted exactly like a known one;
- registrations from one address (`REGISTRATIONS_PER_ADDRESS`).
Counts decay: each is a sliding window (`SIGN_IN_WINDOW_SECONDS`, `REGISTRATION_WINDOW_SECONDS`),
estimated from two fixed windows as in `rate_limits.py`. The address is the peer's, or the
client's that a trusted proxy (`FORWARDED_ALLOW_IPS`, read by uvicorn) put in
`X-Forwarded-For`. When Redis cannot be reached, requests go through (logged): the limiter
failing must not lock everyone out.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from fastapi import Request

from services.common.errors import RateLimited
from services.common.logging import get_logger
from services.gateway.rate_limits import estimate, retry_after
from services.gateway.settings import GatewaySettings

log = get_logger(__name__)

_PREFIX = "forgeline:signin"


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int  # 0: none
    window: int  # seconds


def _subject(*parts: str) -> str:
    # Hashed: Redis holds no email address, and every key has the same shape.
    return hashlib.sha256("\0".join(parts).lower().encode()).hexdigest()[:32]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class SignInThrottle:
    def __init__(
        self, redis: Any, settings: GatewaySettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.clock = clock
        window = settings.sign_in_window_seconds
        self.failures_per_address = Rule(
            "failures-address", settings.sign_in_failures_per_address, window
        )
        self.failures_per_account = Rule(
            "failures-account", settings.sign_in_failures_per_account, window
        )
        self.registrations = Rule(
            "registrations",
            settings.registrations_per_address,
            settings.registration_window_seconds,
        )

    def _keys(self, rule: Rule, subject: str) -> tuple[list[str], float]:
        now = self.clock()
        current = int(now // rule.window)
        keys = [f"{_PREFIX}:{rule.name}:{subject}:{w}" for w in (current, current - 1)]
        return keys, now - current * rule.window

    async def _refuse_if_over(self, checks: list[tuple[Rule, str]], what: str) -> None:
        """Raise when any check is over its limit: every counter read in one round trip."""
        active = [(rule, subject) for rule, subject in checks if rule.limit > 0]
        if not active:
            return
        windows = [self._keys(rule, subject) for rule, subject in active]
        try:
            counts = await self.redis.mget([key for keys, _ in windows for key in keys])
        except aioredis.RedisError as error:
            log.warning("sign-in throttle unavailable; letting through", error=str(error))
            return
        wait = 0
        for i, ((rule, _), (_, elapsed)) in enumerate(zip(active, windows, strict=True)):
            now_count, before_count = (int(v or 0) for v in counts[2 * i : 2 * i + 2])
            if estimate(before_count, now_count, elapsed, rule.window) + 1 > rule.limit:
                wait = max(
                    wait, retry_after(before_count, now_count, rule.limit, elapsed, rule.window)
                )
        if wait:
            raise RateLimited(
                "too_many_attempts",
                f"Too many {what} from your address. Try again in {wait} seconds.",
                retry_after=wait,
            )

    async def _record(self, counts: list[tuple[Rule, str]]) -> None:
        """Count one more against each rule, in one round trip."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for rule, subject in counts:
                    if rule.limit > 0:
                        key = self._keys(rule, subject)[0][0]
                        pipe.incr(key)
                        pipe.expire(key, 2 * rule.window)
                await pipe.execute()
        except aioredis.RedisError as error:
            log.warning("sign-in throttle unavailable; not counted", error=str(error))

    def _sign_in_checks(self, address: str, email: str) -> list[tuple[Rule, str]]:
        return [
            (self.failures_per_address, _subject(address)),
            (self.failures_per_account, _subject(address, email.strip())),
        ]

    async def before_sign_in(self, address: str, email: str) -> None:
        """Raise (429 `too_many_attempts`) when this source failed too often lately."""
        await self._refuse_if_over(self._sign_in_checks(address, email), "failed sign-ins")

    async def sign_in_failed(self, address: str, email: str) -> None:
        await self._record(self._sign_in_checks(address, email))

    async def before_registration(self, address: str) -> None:
        """Raise when this address registered too often lately; otherwise count this one."""
        checks = [(self.registrations, _subject(address))]
        await self._refuse_if_over(checks, "new accounts")
        await self._record(checks)
