"""What every auth operation needs, built once at start-up."""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis
from sqlalchemy.engine import Engine

from services.auth.settings import AuthSettings
from services.auth.tokens import TokenIssuer
from services.common.channels import AUTH_REVOCATIONS
from services.common.crypto import SecretBox
from services.common.logging import get_logger

log = get_logger(__name__)


class RevocationPublisher:
    """Tells gateways to drop cached validations. Best effort: the cache TTL is the backstop."""

    def __init__(self, redis_url: str) -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    def publish(self, *, user_id: str, reason: str) -> None:
        try:
            self._redis.publish(
                AUTH_REVOCATIONS, json.dumps({"user_id": user_id, "reason": reason})
            )
        except redis.RedisError as exc:
            log.warning("could not publish revocation", reason=reason, error=str(exc))


@dataclass(frozen=True)
class AuthContext:
    settings: AuthSettings
    engine: Engine
    issuer: TokenIssuer
    revocations: RevocationPublisher
    secrets: SecretBox
