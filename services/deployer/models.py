"""Tables owned by the deployer: one row per deployment, its state and where it runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from services.common.timestamps import utcnow
from services.deployer.states import PENDING


class Deployment(SQLModel, table=True):
    """A model served behind an OpenAI-compatible server, as its owner asked for it."""

    __tablename__ = "deployer_deployments"

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=32)
    # What the owner passes as `model`; unique among the owner's live deployments (checked
    # when one is created), and the name the server itself answers to.
    name: str = Field(max_length=64)
    base_model: str = Field(default="", max_length=100)
    model_version_id: str = Field(default="", max_length=32)
    target: str = Field(default="local", max_length=16)
    state: str = Field(default=PENDING, max_length=16, index=True)
    status_message: str = Field(default="", max_length=500)
    failure_code: str = Field(default="", max_length=64)
    failure_reason: str = Field(default="", max_length=2000)
    # Bumped by every (re)start and by a stop: a worker whose attempt is no longer the
    # current one stops what it started and leaves the row alone.
    attempt: int = 0
    restarts: int = 0
    failed_restarts: int = 0  # in a row; reset when the server is ready again
    # Where the server runs: host and port, and every process of its tree (pid and start
    # time, so a reused pid is never mistaken for ours).
    host: str = Field(default="", max_length=255)
    port: int = 0
    processes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Cloud targets: the owner's credential, the machine ("aws:i-0abc..."), what it costs,
    # the key the node's vLLM demands (encrypted with the platform key), and the idle clock.
    credential_id: str = Field(default="", max_length=32)
    compute_ref: str = Field(default="", max_length=200)
    instance_type: str = Field(default="", max_length=64)
    usd_per_hour: float = 0.0
    idle_minutes: float = 0.0
    api_key_encrypted: str = Field(default="", max_length=500)
    last_used_at: datetime | None = None
    stop_reason: str = Field(default="", max_length=32)  # user | idle | user_disabled
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    starting_at: datetime | None = None  # when the current start began
    ready_at: datetime | None = None  # when it was last ready
    stopped_at: datetime | None = None

    @property
    def is_cloud(self) -> bool:
        return self.target in ("aws", "gcp")

    @property
    def upstream_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1" if self.host and self.port else ""
