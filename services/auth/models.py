"""Tables owned by the auth service. Hashes and secrets exist only here, never in replies."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel, col

from services.common.timestamps import utcnow


def new_id() -> str:
    return uuid.uuid4().hex


ROLE_ADMIN = "admin"
ROLE_MEMBER = "member"


class User(SQLModel, table=True):
    __tablename__ = "auth_users"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    email: str = Field(index=True, unique=True, max_length=254)
    password_hash: str | None = Field(default=None, max_length=255)  # None: OAuth-only
    role: str = Field(default=ROLE_MEMBER, max_length=16)
    disabled: bool = False
    # No longer used: accounts are not locked, sources are throttled (gateway). Kept so
    # that the table needs no rewrite.
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class AuthSession(SQLModel, table=True):
    """One sign-in; its refresh tokens form a rotation family."""

    __tablename__ = "auth_sessions"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="auth_users.id", index=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    revoke_reason: str | None = Field(default=None, max_length=32)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "auth_refresh_tokens"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    session_id: str = Field(foreign_key="auth_sessions.id", index=True, max_length=32)
    token_hash: str = Field(unique=True, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class ApiKey(SQLModel, table=True):
    __tablename__ = "auth_api_keys"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    owner_id: str = Field(foreign_key="auth_users.id", index=True, max_length=32)
    name: str = Field(max_length=100)
    prefix: str = Field(unique=True, index=True, max_length=16)
    key_hash: str = Field(max_length=64)
    scopes: str = Field(max_length=255)  # space-separated
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    # Its own limits on the OpenAI-compatible API; None: the platform's default applies.
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


class Identity(SQLModel, table=True):
    """A login at an OAuth/OIDC provider linked to a user."""

    __tablename__ = "auth_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="auth_users.id", index=True, max_length=32)
    provider: str = Field(max_length=32)
    subject: str = Field(max_length=255)
    email: str = Field(max_length=254)
    created_at: datetime = Field(default_factory=utcnow)


class OAuthState(SQLModel, table=True):
    """A login in flight: single-use state, the nonce and the PKCE verifier (encrypted)."""

    __tablename__ = "auth_oauth_states"

    state_hash: str = Field(primary_key=True, max_length=64)
    provider: str = Field(max_length=32)
    nonce: str = Field(max_length=128)
    code_verifier_encrypted: str = Field(max_length=512)
    redirect_uri: str = Field(max_length=2048)
    expires_at: datetime


class SetupCode(SQLModel, table=True):
    """The one-time code that makes the first administrator (services/auth/setup_codes.py).

    Only its hash is stored; claiming it is one conditional UPDATE, so of two registrations
    racing with the same code exactly one becomes the administrator."""

    __tablename__ = "auth_setup_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None
    used_by: str | None = Field(default=None, max_length=32)


# Encrypted with the platform key: re-encrypted by services/supervisor/rotate_secrets.py.
ENCRYPTED_COLUMNS = (col(OAuthState.code_verifier_encrypted),)
