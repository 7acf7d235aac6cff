"""REST model families. Hashes and secrets never appear here, except a key shown once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from forgeline.v1 import auth_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field


class ErrorInfo(BaseModel):
    code: str = Field(examples=["invalid_credentials"])
    message: str = Field(examples=["The email or password is not correct."])


class ErrorResponse(BaseModel):
    error: ErrorInfo


class Credentials(BaseModel):
    # Lengths are checked here too, so an oversized body never reaches the hash function.
    email: str = Field(min_length=3, max_length=254, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=128, examples=["a long passphrase"])


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=128)


def _dt(stamp: Timestamp, present: bool = True) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


class UserPublic(BaseModel):
    id: str
    email: str
    role: Literal["admin", "member"]
    disabled: bool
    created_at: datetime | None

    @classmethod
    def from_proto(cls, user: auth_pb2.User) -> UserPublic:
        return cls(
            id=user.id,
            email=user.email,
            role="admin" if user.role == auth_pb2.ROLE_ADMIN else "member",
            disabled=user.disabled,
            created_at=_dt(user.created_at, user.HasField("created_at")),
        )


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class UserUpdate(BaseModel):
    disabled: bool


class TokenPairPublic(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (a scheme name, not a secret)
    expires_in: int
    user: UserPublic

    @classmethod
    def from_proto(cls, pair: auth_pb2.TokenPair) -> TokenPairPublic:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            expires_in=pair.expires_in,
            user=UserPublic.from_proto(pair.user),
        )


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["ci pipeline"])
    scopes: list[Literal["user", "admin"]] = Field(default_factory=list, max_length=4)


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_proto(cls, key: auth_pb2.ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            created_at=_dt(key.created_at, key.HasField("created_at")),
            last_used_at=_dt(key.last_used_at, key.HasField("last_used_at")),
            revoked_at=_dt(key.revoked_at, key.HasField("revoked_at")),
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The whole key. It is shown only this once: store it now.")


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]
    count: int


class OAuthProviderPublic(BaseModel):
    name: str
    display_name: str
    start_url: str


class OAuthProvidersPublic(BaseModel):
    data: list[OAuthProviderPublic]
    count: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"
