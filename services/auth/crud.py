"""Keyword-only queries over the auth tables. Owner-scoped rows are always filtered by owner."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from services.auth.models import (
    ROLE_MEMBER,
    ApiKey,
    AuthSession,
    Identity,
    RefreshToken,
    User,
)
from services.common.db import owned
from services.common.timestamps import utcnow


def get_user(session: Session, *, user_id: str) -> User | None:
    return session.get(User, user_id)


def get_user_by_email(session: Session, *, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email)).first()


def create_user(
    session: Session, *, email: str, password_hash: str | None, role: str = ROLE_MEMBER
) -> User:
    # An administrator only ever comes from the setup code (services/auth/setup_codes.py).
    user = User(email=email, password_hash=password_hash, role=role)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session, *, limit: int, offset: int) -> tuple[list[User], int]:
    total = session.exec(select(func.count()).select_from(User)).one()
    users = session.exec(
        select(User).order_by(col(User.created_at), col(User.id)).offset(offset).limit(limit)
    ).all()
    return list(users), int(total)


def create_session(session: Session, *, user_id: str) -> AuthSession:
    auth_session = AuthSession(user_id=user_id)
    session.add(auth_session)
    session.flush()
    return auth_session


def revoke_session(session: Session, *, session_id: str, reason: str) -> None:
    session.execute(
        update(AuthSession)
        .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoke_reason=reason)
    )


def revoke_user_sessions(session: Session, *, user_id: str, reason: str) -> None:
    session.execute(
        update(AuthSession)
        .where(col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow(), revoke_reason=reason)
    )


def get_refresh_token(session: Session, *, token_hash: str) -> RefreshToken | None:
    return session.exec(select(RefreshToken).where(RefreshToken.token_hash == token_hash)).first()


def claim_refresh_token(session: Session, *, token_id: str, now: datetime) -> bool:
    """Mark a refresh token used; False when someone else used it first (a race or replay)."""
    result = session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == token_id, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def get_api_key_by_prefix(session: Session, *, prefix: str) -> ApiKey | None:
    return session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()


def list_api_keys(session: Session, *, owner_id: str) -> list[ApiKey]:
    statement = owned(select(ApiKey), ApiKey, owner_id).order_by(col(ApiKey.created_at))
    return list(session.exec(statement).all())


def get_owned_api_key(session: Session, *, owner_id: str, key_id: str) -> ApiKey | None:
    return session.exec(owned(select(ApiKey), ApiKey, owner_id).where(ApiKey.id == key_id)).first()


def get_identity(session: Session, *, provider: str, subject: str) -> Identity | None:
    return session.exec(
        select(Identity).where(Identity.provider == provider, Identity.subject == subject)
    ).first()
