"""Tables owned by the trainer: datasets, training jobs and the model versions they make."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel, col

from services.common.timestamps import utcnow

INSPECTING = "inspecting"
READY = "ready"
INVALID = "invalid"
FAILED = "failed"


class Dataset(SQLModel, table=True):
    """An uploaded file to train on, and what inspecting it found."""

    __tablename__ = "trainer_datasets"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_trainer_datasets_name"),)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=32)
    name: str = Field(max_length=200)
    file_name: str = Field(max_length=255)
    bucket: str = Field(max_length=255)
    key: str = Field(max_length=1024)
    size: int = Field(default=0, sa_type=BigInteger)
    file_type: str = Field(default="", max_length=16)
    state: str = Field(default=INSPECTING, max_length=16)
    detected_format: str = Field(default="", max_length=16)
    detection_reason: str = Field(default="", max_length=1000)
    # Set when the user confirmed (or chose) a format; the detected one is used otherwise.
    confirmed_format: str = Field(default="", max_length=16)
    columns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rows: int = 0
    valid_rows: int = 0
    problem_count: int = 0
    problems: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    token_stats: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    token_stats_note: str = Field(default="", max_length=500)
    base_model: str = Field(max_length=100)
    sequence_len: int = 2048
    eval_fraction: float = 0.05
    train_rows: int = 0
    eval_rows: int = 0
    failure_code: str = Field(default="", max_length=64)
    failure_reason: str = Field(default="", max_length=1000)
    # Bumped by every change that calls for a new inspection; an inspection that finds the
    # row moved on since it started throws its result away.
    revision: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def format(self) -> str:
        return self.confirmed_format or self.detected_format


# Job states, in order; the last three end a job.
QUEUED = "queued"
VALIDATING = "validating"
PROVISIONING = "provisioning"
TRAINING = "training"
EVALUATING = "evaluating"
UPLOADING = "uploading"
SUCCEEDED = "succeeded"
CANCELLED = "cancelled"
JOB_FAILED = "failed"
JOB_STATES = (
    QUEUED,
    VALIDATING,
    PROVISIONING,
    TRAINING,
    EVALUATING,
    UPLOADING,
    SUCCEEDED,
    JOB_FAILED,
    CANCELLED,
)
TERMINAL = frozenset({SUCCEEDED, JOB_FAILED, CANCELLED})


class TrainingJob(SQLModel, table=True):
    """One fine-tuning run, from the button press to a registered model."""

    __tablename__ = "trainer_jobs"

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=32)
    name: str = Field(max_length=200)
    base_model: str = Field(max_length=100)
    dataset_id: str = Field(max_length=32)  # empty when it trains on a hub dataset
    hub_dataset: str = Field(default="", max_length=200)  # a suggested dataset's hub id
    stage: str = Field(max_length=16)
    method: str = Field(max_length=16)
    provider: str = Field(max_length=16)
    preset: str = Field(max_length=16)
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    # The Axolotl config: the single source of truth for the run, shown to the user.
    config_yaml: str = Field(sa_type=Text)
    benchmark: str = Field(default="gsm8k", max_length=32)
    benchmark_sample: int = 20
    wandb_online: bool = False
    state: str = Field(default=QUEUED, max_length=16, index=True)
    failure_code: str = Field(default="", max_length=64)
    failure_reason: str = Field(default="", max_length=2000)
    cancel_requested: bool = False
    # sha256 of the token the training machine sends its events with (the token itself is
    # only in the job's manifest).
    callback_token_hash: str = Field(default="", max_length=64)
    # Where it runs: a local process group, a cloud instance id (tagged with the job id).
    compute_ref: str = Field(default="", max_length=200)
    # Progress, as last reported (the event stream holds the whole history).
    step: int = 0
    max_steps: int = 0
    last_loss: float | None = None
    last_eval_loss: float | None = None
    # The worker running the job renews this; a job whose lease ran out is picked up again.
    lease_owner: str = Field(default="", max_length=200)
    lease_until: datetime | None = None
    # Claims by a worker since the last checkpoint: each claim after the first means a
    # worker stopped while running the job (services/trainer/jobs.py: kept_stopping).
    attempts: int = 0
    last_checkpoint_step: int = 0
    # Cloud runs: the stored credential used, the machine type, when the instance was
    # launched (a node that never reports in is given up on), and how the node said it
    # ended ("done", "error", "cancelled"); a cloud node has no exit status to read.
    credential_id: str = Field(default="", max_length=32)
    instance_type: str = Field(default="", max_length=64)
    launched_at: datetime | None = None
    node_result: str = Field(default="", max_length=16)
    evaluation: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    model_version_id: str = Field(default="", max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class ModelVersion(SQLModel, table=True):
    """A fine-tuned model with its lineage: what it was made from, and how well it does."""

    __tablename__ = "trainer_model_versions"

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=32)
    name: str = Field(max_length=200)
    job_id: str = Field(index=True, max_length=32)
    base_model: str = Field(max_length=100)
    dataset_id: str = Field(max_length=32)
    hub_dataset: str = Field(default="", max_length=200)
    method: str = Field(max_length=16)
    config_yaml: str = Field(sa_type=Text)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    bucket: str = Field(max_length=255)
    adapter_prefix: str = Field(default="", max_length=1024)  # empty: full fine-tune
    merged_prefix: str = Field(max_length=1024)
    created_at: datetime = Field(default_factory=utcnow)


CREDENTIAL_KINDS = ("aws", "gcp", "wandb")


class Credential(SQLModel, table=True):
    """A user's secret for somewhere else: an AWS access key, a GCP service account, a wandb
    API key. The secret is Fernet-encrypted and never leaves the trainer once stored."""

    __tablename__ = "trainer_credentials"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_trainer_credentials_name"),)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=32)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    # AWS region or GCP zone the instances start in; empty for wandb.
    location: str = Field(default="", max_length=64)
    # What the user sees to recognise it: the key id's last characters, the account email.
    hint: str = Field(default="", max_length=200)
    secret_encrypted: str = Field(sa_type=Text)
    checked_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)


# Encrypted with the platform key: re-encrypted by services/supervisor/rotate_secrets.py.
ENCRYPTED_COLUMNS = (col(Credential.secret_encrypted),)
