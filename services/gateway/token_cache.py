"""The gateway's short-lived memory of validated credentials.

Every request is authenticated by the auth service; this TTL cache keeps that from costing
a round trip each time. Auth publishes every revocation on Redis, and the listener here
empties the cache when one arrives, so a revoked key or ended session stops working at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from datetime import UTC, datetime

import redis.asyncio as aioredis
from cachetools import TTLCache
from forgeline.v1 import auth_pb2

from services.common.channels import AUTH_REVOCATIONS
from services.common.logging import get_logger

log = get_logger(__name__)


def _key(token: str) -> str:
    # Never keep raw credentials in memory longer than the request that carried them.
    return hashlib.sha256(token.encode()).hexdigest()


class TokenCache:
    def __init__(self, ttl_seconds: float, maxsize: int = 10_000) -> None:
        self._cache: TTLCache[str, auth_pb2.Principal] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )

    def get(self, token: str) -> auth_pb2.Principal | None:
        if self._cache is None:
            return None
        principal = self._cache.get(_key(token))
        if (
            principal is not None
            and principal.HasField("expires_at")
            and principal.expires_at.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)
        ):
            self._cache.pop(_key(token), None)
            return None
        return principal

    def put(self, token: str, principal: auth_pb2.Principal) -> None:
        if self._cache is not None:
            self._cache[_key(token)] = principal

    def clear(self) -> None:
        if self._cache is not None:
            self._cache.clear()


async def listen_for_revocations(cache: TokenCache, redis_url: str) -> None:
    """Clear the cache on every revocation; reconnect with back-off if Redis goes away."""
    delay = 0.5
    while True:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(AUTH_REVOCATIONS)
                cache.clear()  # anything may have been revoked while we were not listening
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        cache.clear()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("revocation listener lost redis; retrying", error=str(exc))
            cache.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
