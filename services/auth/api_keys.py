"""Personal API keys: shown once, stored as a hash, named, revocable, last use recorded.

A key is `flk_<prefix>_<secret>`. The prefix finds the row; the SHA-256 of the whole key is
compared in constant time. A fast hash is right here: the secret has 256 bits of entropy,
so there is nothing for a slow hash to protect, and it is checked on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from services.auth import crud
from services.auth.context import AuthContext
from services.auth.models import ApiKey
from services.auth.principal import Principal, user_scopes
from services.common.db import session_scope
from services.common.errors import InvalidInput, NotFound, Unauthenticated
from services.common.timestamps import utcnow

KEY_PREFIX = "flk_"
MAX_KEY_NAME = 100
MAX_KEYS_PER_USER = 100
# A key's own rate limits (per minute) are at most this; 0 means none of its own.
MAX_RATE_LIMIT = 100_000_000
# Writing last_used_at on every request would turn reads into writes; a minute is precise
# enough for "when was this key last used".
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    ctx: AuthContext,
    *,
    user_id: str,
    name: str,
    scopes: list[str],
    requests_per_minute: int = 0,
    tokens_per_minute: int = 0,
) -> tuple[ApiKey, str]:
    name = name.strip()
    if not name or len(name) > MAX_KEY_NAME:
        raise InvalidInput(
            "invalid_key_name", f"Give the key a name of 1 to {MAX_KEY_NAME} characters."
        )
    for limit in (requests_per_minute, tokens_per_minute):
        if not 0 <= limit <= MAX_RATE_LIMIT:
            raise InvalidInput(
                "invalid_rate_limit",
                f"A key's rate limits are per minute, from 1 to {MAX_RATE_LIMIT} (0: the "
                "platform's default).",
            )
    with session_scope(ctx.engine) as db:
        user = crud.get_user(db, user_id=user_id)
        if user is None:
            raise NotFound("user_not_found", "No such user.")
        allowed = user_scopes(user)
        wanted = scopes or allowed
        if not set(wanted) <= set(allowed):
            raise InvalidInput(
                "invalid_scopes", f"A key can only hold scopes you have: {', '.join(allowed)}."
            )
        if len(crud.list_api_keys(db, owner_id=user_id)) >= MAX_KEYS_PER_USER:
            raise InvalidInput("too_many_keys", "Revoke an unused key before creating another.")
        prefix = secrets.token_hex(4)
        secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            owner_id=user_id,
            name=name,
            prefix=prefix,
            key_hash=_hash(secret),
            scopes=" ".join(sorted(set(wanted))),
            requests_per_minute=requests_per_minute or None,
            tokens_per_minute=tokens_per_minute or None,
        )
        db.add(key)
    return key, secret


def list_for(ctx: AuthContext, *, user_id: str) -> list[ApiKey]:
    with session_scope(ctx.engine) as db:
        return crud.list_api_keys(db, owner_id=user_id)


def revoke(ctx: AuthContext, *, user_id: str, key_id: str) -> None:
    with session_scope(ctx.engine) as db:
        key = crud.get_owned_api_key(db, owner_id=user_id, key_id=key_id)
        if key is None:  # someone else's key looks exactly like a missing one
            raise NotFound("api_key_not_found", "No such API key.")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            db.add(key)
    ctx.revocations.publish(user_id=user_id, reason="api_key_revoked")


def authenticate(ctx: AuthContext, *, secret: str) -> Principal:
    invalid = Unauthenticated("api_key_invalid", "The API key is not valid.")
    parts = secret.split("_", 2)
    if len(parts) != 3 or len(secret) > 128:
        raise invalid
    with session_scope(ctx.engine) as db:
        key = crud.get_api_key_by_prefix(db, prefix=parts[1])
        if key is None or not hmac.compare_digest(key.key_hash, _hash(secret)):
            raise invalid
        if key.revoked_at is not None:
            raise Unauthenticated("api_key_revoked", "This API key has been revoked.")
        user = crud.get_user(db, user_id=key.owner_id)
        if user is None or user.disabled:
            raise Unauthenticated("account_disabled", "This account has been disabled.")
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            key.last_used_at = now
            db.add(key)
        scopes = [s for s in key.scopes.split() if s in user_scopes(user)]
        return Principal(
            user,
            scopes,
            "api_key",
            key.id,
            None,
            requests_per_minute=key.requests_per_minute or 0,
            tokens_per_minute=key.tokens_per_minute or 0,
        )
