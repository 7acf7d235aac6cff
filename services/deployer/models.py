"""Tables owned by the deployer: one row per deployment, its state and where it runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel, col

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
    # How a model version is served (adapters.py): "merged" weights, or "adapter": its base
    # model with LoRA adapters, each {"model_version_id", "name"}; the first one's name is
    # the deployment's own. Fixed at creation, so every restart serves the same adapters.
    weights: str = Field(default="merged", max_length=16)
    adapters: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
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


class UsageBucket(SQLModel, table=True):
    """What one credential (API key or signed-in session) used of one deployment in one UTC
    hour: a compact, queryable record that grows with hours of use, not with requests. Rows
    are upserted with the counters added in the database (`usage.record`), so concurrent
    writers never lose an update."""

    __tablename__ = "deployer_usage"
    __table_args__ = (Index("ix_deployer_usage_owner_hour", "owner_id", "hour"),)

    owner_id: str = Field(primary_key=True, max_length=32)
    deployment_id: str = Field(primary_key=True, max_length=32)
    credential_id: str = Field(primary_key=True, max_length=32)
    hour: datetime = Field(primary_key=True)  # the start of the UTC hour
    requests: int = Field(default=0, sa_type=BigInteger)
    prompt_tokens: int = Field(default=0, sa_type=BigInteger)
    completion_tokens: int = Field(default=0, sa_type=BigInteger)
    aborted: int = Field(default=0, sa_type=BigInteger)


class ChatSession(SQLModel, table=True):
    """A conversation of the web client's history (or of `/v1/chat/completions` with
    `chat_id`): its messages are `ChatMessage` rows."""

    __tablename__ = "deployer_chat_sessions"

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=32)
    title: str = Field(default="", max_length=200)
    model: str = Field(default="", max_length=64)  # the deployment name last used in it
    message_count: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class ChatMessage(SQLModel, table=True):
    """One message of a chat session, in the order appended (`position`)."""

    __tablename__ = "deployer_chat_messages"
    __table_args__ = (Index("ix_deployer_chat_messages_session", "session_id", "position"),)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    session_id: str = Field(max_length=32, foreign_key="deployer_chat_sessions.id")
    owner_id: str = Field(max_length=32)
    position: int = 0
    role: str = Field(max_length=16)  # user | assistant | system
    content: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(default="complete", max_length=16)  # complete | stopped
    finish_reason: str = Field(default="", max_length=32)
    model: str = Field(default="", max_length=64)
    template: str = Field(default="", max_length=32)
    citations: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)


# Encrypted with the platform key: re-encrypted by services/supervisor/rotate_secrets.py.
ENCRYPTED_COLUMNS = (col(Deployment.api_key_encrypted),)
