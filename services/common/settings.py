"""Settings shared by every service. Nothing else in the platform reads the environment.

Each service subclasses `BaseServiceSettings`; every option has one environment name, listed
in the README. Values that hold secrets are `SecretStr`, so they never print by accident.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets that ship in examples; refused outside development.
PLACEHOLDER_SECRETS = {"", "changeme", "changethis", "secret"}


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, frozen=True
    )

    environment: Literal["development", "production"] = Field(
        "development", validation_alias=AliasChoices("FORGELINE_ENV", "environment")
    )
    data_dir: Path = Field(
        Path(".forgeline"), validation_alias=AliasChoices("FORGELINE_DATA_DIR", "data_dir")
    )
    # What the services prove to each other on every gRPC call (services/common/service_auth.py).
    service_token: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("FORGELINE_SERVICE_TOKEN", "service_token")
    )
    # Fernet key for secrets at rest (cloud credentials, OAuth client secrets, ...).
    secret_key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("FORGELINE_SECRET_KEY", "secret_key")
    )

    # Keys replaced by `secret_key`, space-separated: what they encrypted still reads (and is
    # re-encrypted with the new key when rotated); new secrets use `secret_key` only.
    previous_secret_keys: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("FORGELINE_PREVIOUS_SECRET_KEYS", "previous_secret_keys"),
    )

    database_url: str | None = None  # default: SQLite under data_dir
    redis_url: str = "redis://127.0.0.1:6379/0"

    s3_endpoint_url: str | None = None  # unset: AWS S3 itself
    s3_region: str = "us-east-1"
    s3_bucket: str = "forgeline"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    auth_grpc_address: str = "127.0.0.1:50051"
    rag_grpc_address: str = "127.0.0.1:50052"
    indexer_grpc_address: str = "127.0.0.1:50053"
    trainer_grpc_address: str = "127.0.0.1:50054"
    deployer_grpc_address: str = "127.0.0.1:50055"
    # Chroma: a server (`chroma run`) when set; otherwise a persistent folder under data_dir,
    # which only one process may open.
    chroma_url: str | None = None
    grpc_deadline_seconds: float = 5.0

    # Networks every outbound call made for a user may reach even though they are private
    # (e.g. "10.1.0.0/16 192.168.5.0/24"); see services/common/outbound.py.
    outbound_allowed_networks: str = ""
    # Let users attach buckets on private or loopback addresses (a MinIO beside a one-machine
    # install). Off by default: the indexer would reach into our network on a user's behalf.
    # Read by RAG (when a bucket is attached) and the indexer (at every connection to it).
    rag_allow_private_bucket_endpoints: bool = False

    log_level: str = "INFO"
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_exporter_otlp_endpoint: str = "http://127.0.0.1:4318"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> BaseServiceSettings:
        if self.environment == "production":
            if self.secret_key.get_secret_value() in PLACEHOLDER_SECRETS:
                raise ValueError("FORGELINE_SECRET_KEY must be set to a real Fernet key")
            if self.database_url is None:
                raise ValueError("DATABASE_URL must be set in production")
            if self.service_token.get_secret_value() in PLACEHOLDER_SECRETS:
                raise ValueError("FORGELINE_SERVICE_TOKEN must be set to a random value")
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            # Accept the URLs people paste (postgres://, postgresql://) and use psycopg 3.
            url = self.database_url
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix) :]
            return url
        return f"sqlite:///{(self.data_dir / 'forgeline.db').resolve()}"
