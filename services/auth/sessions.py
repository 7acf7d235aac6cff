"""Sessions: token pairs, refresh-token rotation with reuse detection, logout, validation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from services.auth import api_keys, crud
from services.auth.context import AuthContext
from services.auth.models import AuthSession, RefreshToken, User
from services.auth.principal import Principal, user_scopes
from services.common.db import session_scope
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.timestamps import utcnow

REFRESH_PREFIX = "flr_"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    refresh_expires_in: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh_token(ctx: AuthContext, db: Session, session_id: str) -> str:
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    db.add(
        RefreshToken(
            session_id=session_id,
            token_hash=_hash(token),
            expires_at=utcnow() + timedelta(seconds=ctx.settings.refresh_token_ttl_seconds),
        )
    )
    return token


def start_session(ctx: AuthContext, db: Session, user: User) -> TokenPair:
    """Open a new session (a new refresh family) inside the caller's transaction."""
    auth_session = crud.create_session(db, user_id=user.id)
    refresh = _new_refresh_token(ctx, db, auth_session.id)
    access = ctx.issuer.issue(user_id=user.id, session_id=auth_session.id, scopes=user_scopes(user))
    return TokenPair(
        access, refresh, ctx.issuer.ttl_seconds, user, ctx.settings.refresh_token_ttl_seconds
    )


def refresh(ctx: AuthContext, *, refresh_token: str) -> TokenPair:
    invalid = Unauthenticated("refresh_token_invalid", "The refresh token is not valid.")
    if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > 128:
        raise invalid
    reused_session: tuple[str, str] | None = None
    with session_scope(ctx.engine) as db:
        row = crud.get_refresh_token(db, token_hash=_hash(refresh_token))
        if row is None:
            raise invalid
        auth_session = db.get(AuthSession, row.session_id)
        if auth_session is None or auth_session.revoked_at is not None:
            raise Unauthenticated(
                "session_revoked", "This session has ended; please sign in again."
            )
        now = utcnow()
        if row.used_at is not None or not crud.claim_refresh_token(db, token_id=row.id, now=now):
            # A rotated token came back: someone holds a copy. End the whole family.
            crud.revoke_session(db, session_id=auth_session.id, reason="refresh_reuse")
            reused_session = (auth_session.user_id, auth_session.id)
        elif row.expires_at <= now:
            raise Unauthenticated(
                "refresh_token_expired", "This session has expired; please sign in again."
            )
        else:
            user = crud.get_user(db, user_id=auth_session.user_id)
            if user is None or user.disabled:
                raise PermissionDenied("account_disabled", "This account has been disabled.")
            new_refresh = _new_refresh_token(ctx, db, auth_session.id)
            access = ctx.issuer.issue(
                user_id=user.id, session_id=auth_session.id, scopes=user_scopes(user)
            )
            return TokenPair(
                access,
                new_refresh,
                ctx.issuer.ttl_seconds,
                user,
                ctx.settings.refresh_token_ttl_seconds,
            )
    # Only reached on reuse, after the revocation above has been committed.
    assert reused_session is not None
    ctx.revocations.publish(user_id=reused_session[0], reason="refresh_reuse")
    raise Unauthenticated(
        "refresh_token_reused",
        "This refresh token was already used, so the session was signed out for your "
        "safety. Please sign in again.",
    )


def logout(ctx: AuthContext, *, access_token: str) -> None:
    # An expired token may still end its session; the signature must hold all the same.
    claims = ctx.issuer.verify(access_token, allow_expired=True)
    with session_scope(ctx.engine) as db:
        crud.revoke_session(db, session_id=claims.session_id, reason="logout")
    ctx.revocations.publish(user_id=claims.user_id, reason="logout")


def validate(ctx: AuthContext, *, token: str) -> Principal:
    if token.startswith(api_keys.KEY_PREFIX):
        return api_keys.authenticate(ctx, secret=token)
    claims = ctx.issuer.verify(token)
    with session_scope(ctx.engine) as db:
        auth_session = db.get(AuthSession, claims.session_id)
        if auth_session is None or auth_session.user_id != claims.user_id:
            raise Unauthenticated("token_invalid", "The access token is not valid.")
        if auth_session.revoked_at is not None:
            raise Unauthenticated(
                "session_revoked", "This session has ended; please sign in again."
            )
        user = crud.get_user(db, user_id=claims.user_id)
        if user is None or user.disabled:
            raise Unauthenticated("account_disabled", "This account has been disabled.")
        # Scopes follow the user's current role, not the role when the token was issued.
        scopes = [s for s in claims.scopes if s in user_scopes(user)]
        return Principal(user, scopes, "access_token", auth_session.id, claims.expires_at)
