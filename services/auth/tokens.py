"""Access tokens: short-lived JWTs signed with Ed25519 (EdDSA).

Only the auth service holds the key and validates tokens. Validation accepts exactly one
algorithm, so `alg: none` and HS/RS-style confusion (an HMAC "signed" with the public key)
are refused before any key is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.auth.models import new_id
from services.auth.settings import AuthSettings
from services.common.errors import Unauthenticated
from services.common.timestamps import utcnow

ALGORITHM = "EdDSA"
AUDIENCE = "forgeline"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    scopes: list[str]
    expires_at: datetime


def load_signing_key(settings: AuthSettings) -> Ed25519PrivateKey:
    """The configured key, or one generated once under the data folder (mode 0600)."""
    if settings.auth_jwt_private_key is not None:
        pem = settings.auth_jwt_private_key.get_secret_value().encode()
    else:
        path = settings.jwt_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # O_EXCL: if two processes race, one writes and the other reads the winner's key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
            except FileExistsError:
                pass
        pem = path.read_bytes()
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise RuntimeError("AUTH_JWT_PRIVATE_KEY must be an Ed25519 private key in PEM")
    return loaded


class TokenIssuer:
    def __init__(self, settings: AuthSettings) -> None:
        self._key = load_signing_key(settings)
        self._public = self._key.public_key()
        self._issuer = settings.jwt_issuer
        self._ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        self.ttl_seconds = settings.access_token_ttl_seconds

    def issue(self, *, user_id: str, session_id: str, scopes: list[str]) -> str:
        now = utcnow()
        claims = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": user_id,
            "sid": session_id,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + self._ttl,
            "jti": new_id(),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str, *, allow_expired: bool = False) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={
                    "require": ["exp", "iat", "sub", "sid", "jti"],
                    "verify_exp": not allow_expired,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated(
                "token_expired", "Your session has expired; refresh it or sign in again."
            ) from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("token_invalid", "The access token is not valid.") from exc
        return AccessClaims(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
