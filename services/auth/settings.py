"""Settings of the auth service (on top of the shared ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from services.common.settings import BaseServiceSettings

# Under the data folder: the first administrator's one-time code, while there is none (0600).
SETUP_CODE_FILE = Path("auth") / "setup-code"


class OAuthProviderConfig(BaseModel):
    """One login provider. `preset` fills in endpoints for Google and GitHub."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    display_name: str | None = None
    preset: Literal["oidc", "google", "github"] = "oidc"
    discovery_url: str | None = None  # any OpenID provider, by its discovery document
    client_id: str
    client_secret: SecretStr
    scope: str | None = None

    @model_validator(mode="after")
    def _needs_discovery(self) -> OAuthProviderConfig:
        if self.preset == "oidc" and not self.discovery_url:
            raise ValueError(f"OAuth provider '{self.name}' needs a discovery_url")
        return self


class AuthSettings(BaseServiceSettings):
    auth_grpc_bind: str = "127.0.0.1:50051"

    access_token_ttl_seconds: int = Field(900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(30 * 86_400, ge=300)
    jwt_issuer: str = "forgeline"
    # PEM of an Ed25519 key. Unset: one is generated once under the data folder.
    auth_jwt_private_key: SecretStr | None = None

    # Argon2 runs on its own pool (services/auth/password_pool.py): this many hashes at once,
    # and this many more waiting; past that a sign-in is refused at once (429 `sign_in_busy`),
    # so that a flood never holds the threads that validate tokens.
    password_hash_workers: int = Field(2, ge=1, le=64)
    password_hash_queue: int = Field(6, ge=0, le=1000)

    # Who may create an account (services/auth/registration.py): "open" to anyone who reaches
    # the gateway, "invited" to the addresses and domains in `registration_invited`
    # (space-separated, e.g. "ana@example.com acme.com"), "closed" to nobody (the
    # administrator comes from the setup code whatever this says). Sign-in providers too.
    registration_mode: Literal["open", "invited", "closed"] = "open"
    registration_invited: str = ""

    # JSON list of OAuthProviderConfig, e.g.
    # [{"name":"google","preset":"google","client_id":"...","client_secret":"..."}]
    oauth_providers: list[OAuthProviderConfig] = Field(default_factory=list)
    oauth_state_ttl_seconds: int = 600
    # Sign-in providers on private or loopback addresses (a Keycloak inside the VPC). Off by
    # default: a discovery document names the URLs the auth service then calls.
    oauth_allow_private_providers: bool = False

    @property
    def jwt_key_file(self) -> Path:
        return self.data_dir / "auth" / "jwt_ed25519.pem"

    @property
    def setup_code_file(self) -> Path:
        """The first administrator's one-time code, while there is none (0600)."""
        return self.data_dir / SETUP_CODE_FILE
