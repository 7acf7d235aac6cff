"""Guessing passwords and flooding sign-in are slowed down by where they come from; nobody
can lock an account, and the answers never tell which accounts exist (issue 14, item 7).

Each attacker here is an address of its own, sent as X-Forwarded-For through loopback (the
proxy the gateway trusts by default), so the suite's own sign-ins are not counted with it.
The stack runs the default limits: 5 failures per address and email, 20 per address, over
15 minutes.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import redis.asyncio as aioredis

from services.common.errors import RateLimited
from services.gateway.settings import GatewaySettings
from services.gateway.sign_in_throttle import SignInThrottle
from tests.factories import from_address, make_user, random_email, stranger_address
from tests.integration.conftest import Stack


def _attempts(client: httpx.Client, address: str, emails: list[str]) -> list[tuple[int, str, str]]:
    seen = []
    for email in emails:
        response = client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": "a guess at the password"},
            headers=from_address(address),
        )
        error = response.json()["error"]
        # Waits differ by a second or so; what the answer says must not.
        seen.append((response.status_code, error["code"], re.sub(r"\d+", "N", error["message"])))
    return seen


def test_guessing_is_answered_alike_for_known_and_unknown_accounts(client: httpx.Client) -> None:
    # Hostile: an account that existed answered "locked" after 5 misses, an unknown one never.
    known = make_user(client)
    on_known = _attempts(client, stranger_address(), [known.email] * 7)
    on_unknown = _attempts(client, stranger_address(), [random_email()] * 7)
    assert on_known == on_unknown
    assert [code for _, code, _ in on_known] == ["invalid_credentials"] * 5 + [
        "too_many_attempts"
    ] * 2
    assert on_known[-1][0] == 429 and "from your address" in on_known[-1][2]


def test_someone_guessing_cannot_lock_the_owner_out(client: httpx.Client) -> None:
    # Hostile: anyone who knew the administrator's email could lock them out for 15 minutes.
    victim = make_user(client)
    attacker = stranger_address()
    _attempts(client, attacker, [victim.email] * 8)
    # The source is slowed down, even with the right password, and told when to retry ...
    refused = client.post(
        "/api/v1/auth/login",
        json={"email": victim.email, "password": victim.password},
        headers=from_address(attacker),
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "too_many_attempts"
    # ... while the owner, from their own address, signs in as usual.
    for address in (stranger_address(), None):
        own = client.post(
            "/api/v1/auth/login",
            json={"email": victim.email, "password": victim.password},
            headers=from_address(address) if address else {},
        )
        assert own.status_code == 200, own.text
    # Sessions that already existed are not affected by someone guessing.
    assert client.get("/api/v1/me", headers=victim.headers).status_code == 200


def test_one_address_guessing_many_accounts_is_slowed_down(client: httpx.Client) -> None:
    # Hostile: one address trying a password on every account it can think of.
    address = stranger_address()
    seen = _attempts(client, address, [random_email() for _ in range(21)])
    assert [code for _, code, _ in seen] == ["invalid_credentials"] * 20 + ["too_many_attempts"]
    # A different address is not held back by it.
    other = _attempts(client, stranger_address(), [random_email()])
    assert other[0][1] == "invalid_credentials"


def test_the_throttle_counts_registrations_and_forgets_with_time(stack: Stack) -> None:
    """The same code the gateway runs, on the stack's Valkey with short windows: floods of
    new accounts from one address are refused before any hash, and counts decay."""
    settings = GatewaySettings(
        registrations_per_address=3,
        registration_window_seconds=2,
        sign_in_failures_per_address=2,
        sign_in_window_seconds=2,
        redis_url=stack.platform.redis_url(7),
    )

    async def scenario() -> None:
        redis = aioredis.Redis.from_url(settings.redis_url)
        throttle = SignInThrottle(redis, settings)
        flood, bystander = stranger_address(), stranger_address()
        for _ in range(3):
            await throttle.before_registration(flood)
        with pytest.raises(RateLimited) as refused:
            await throttle.before_registration(flood)
        assert refused.value.code == "too_many_attempts" and refused.value.retry_after
        await throttle.before_registration(bystander)
        for _ in range(2):
            await throttle.sign_in_failed(flood, "someone@example.com")
        with pytest.raises(RateLimited):
            await throttle.before_sign_in(flood, "anyone-else@example.com")
        # Two windows later both counts have faded away.
        await asyncio.sleep(4.1)
        await throttle.before_registration(flood)
        await throttle.before_sign_in(flood, "someone@example.com")
        await redis.aclose()

    asyncio.run(scenario())
