"""Who is calling, as ValidateToken answers it, and which scopes a role grants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.auth.models import ROLE_ADMIN, User


@dataclass(frozen=True)
class Principal:
    user: User
    scopes: list[str]
    kind: str  # "access_token" | "api_key"
    credential_id: str  # session id or API key id
    expires_at: datetime | None  # None for API keys
    # An API key's own rate limits (0: none of its own; the gateway's default applies).
    requests_per_minute: int = 0
    tokens_per_minute: int = 0


def user_scopes(user: User) -> list[str]:
    return ["user", "admin"] if user.role == ROLE_ADMIN else ["user"]
