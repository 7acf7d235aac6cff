"""REST models for deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from forgeline.v1 import deployer_pb2
from pydantic import BaseModel, Field, model_validator

from services.gateway.schemas import _dt

DeploymentState = Literal["pending", "starting", "ready", "stopping", "stopped", "failed"]
Weights = Literal["merged", "adapter"]


class AdapterChoice(BaseModel):
    """A further LoRA adapter in the same server: another of your model versions, trained
    on the same base model."""

    model_version_id: str = Field(max_length=64)
    name: str | None = Field(
        None,
        max_length=64,
        description="What you pass as `model` for this adapter; default: the version's "
        "name, made unique among your live deployments.",
    )


class AdapterPublic(BaseModel):
    model_version_id: str
    name: str = Field(description="The `model` this adapter answers to.")


class DeploymentCreate(BaseModel):
    """Deploy a catalogue base model or one of your fine-tuned model versions."""

    base_model: str | None = Field(
        None,
        max_length=100,
        description="A base model id from GET /api/v1/base-models, e.g. smollm2-135m-instruct "
        "(the bundled one, on this machine).",
    )
    model_version_id: str | None = Field(None, max_length=64)
    weights: Weights = Field(
        "merged",
        description="How a model version is served. merged: its merged weights (one model "
        "per server). adapter: its base model with the version's LoRA adapter on top (vLLM "
        "--enable-lora), for versions trained with LoRA/QLoRA; extra_adapters then adds more "
        "versions of the same base to the same server.",
    )
    extra_adapters: list[AdapterChoice] = Field(
        default_factory=list,
        max_length=32,
        description='weights "adapter" only: further adapter versions of the same base model '
        "(8 adapters in all at most), each answering to its own `model` name; the first "
        "adapter (model_version_id) answers to the deployment's name.",
    )
    name: str | None = Field(
        None,
        max_length=64,
        description="What you pass as `model` to /v1/chat/completions; default: the model's "
        "name, made unique among your live deployments.",
        examples=["tutor"],
    )
    target: Literal["local", "aws", "gcp"] = Field(
        "local",
        description="local: this machine (CPU). aws: a GPU machine in your own AWS account, "
        "started from your stored credentials (credential_id), reached only through this "
        "gateway, and stopped by itself after idle_minutes without a request.",
    )
    credential_id: str | None = Field(
        None, max_length=64, description="Your stored cloud credentials (aws target)."
    )
    idle_minutes: float | None = Field(
        None,
        gt=0,
        le=7 * 24 * 60,
        description="Cloud targets: stop after this many minutes without a request (default 30).",
    )

    @model_validator(mode="after")
    def _one_model(self) -> DeploymentCreate:
        if bool(self.base_model) == bool(self.model_version_id):
            raise ValueError("name either base_model or model_version_id")
        return self

    def to_proto(self, owner_id: str) -> deployer_pb2.CreateDeploymentRequest:
        return deployer_pb2.CreateDeploymentRequest(
            owner_id=owner_id,
            name=self.name or "",
            base_model=self.base_model or "",
            model_version_id=self.model_version_id or "",
            target=self.target,
            credential_id=self.credential_id or "",
            idle_minutes=self.idle_minutes or 0.0,
            weights=self.weights,
            extra_adapters=[
                deployer_pb2.DeploymentAdapter(
                    model_version_id=a.model_version_id, name=a.name or ""
                )
                for a in self.extra_adapters
            ],
        )


class DeploymentPublic(BaseModel):
    id: str
    name: str = Field(description="The `model` to name in OpenAI-compatible calls.")
    base_model: str | None
    model_version_id: str | None
    target: str
    state: DeploymentState
    status_message: str = Field(description="What is happening now, in a sentence.")
    failure_code: str | None
    failure_reason: str | None
    restarts: int = Field(description="How often the server was restarted after it died.")
    created_at: datetime | None
    updated_at: datetime | None
    ready_at: datetime | None
    credential_id: str | None = Field(description="Cloud targets: the credentials used.")
    instance_type: str | None = Field(description="Cloud targets: the machine, e.g. g5.xlarge.")
    usd_per_hour: float | None = Field(
        description="Cloud targets: the machine's on-demand list price, in US dollars an hour."
    )
    idle_minutes: float | None = Field(
        description="Cloud targets: stopped after this many minutes without a request."
    )
    cost_guard: str | None = Field(
        description="Cloud targets: when it stops by itself and what it costs until then."
    )
    stop_reason: Literal["user", "idle", "user_disabled"] | None = Field(
        description="Why it stopped: you stopped it, it was idle, or your account was disabled."
    )
    last_used_at: datetime | None = Field(description="The last request through /v1.")
    weights: Weights = Field(description="merged, or adapter: a base model with LoRA adapters.")
    adapters: list[AdapterPublic] = Field(
        description='weights "adapter": the adapters served, each under its own `model` name.'
    )

    @classmethod
    def from_proto(cls, d: deployer_pb2.Deployment) -> DeploymentPublic:
        return cls(
            id=d.id,
            name=d.name,
            base_model=d.base_model or None,
            model_version_id=d.model_version_id or None,
            target=d.target,
            state=d.state,
            status_message=d.status_message,
            failure_code=d.failure_code or None,
            failure_reason=d.failure_reason or None,
            restarts=d.restarts,
            created_at=_dt(d.created_at, d.HasField("created_at")),
            updated_at=_dt(d.updated_at, d.HasField("updated_at")),
            ready_at=_dt(d.ready_at, d.HasField("ready_at")),
            credential_id=d.credential_id or None,
            instance_type=d.instance_type or None,
            usd_per_hour=d.usd_per_hour or None,
            idle_minutes=d.idle_minutes or None,
            cost_guard=d.cost_guard or None,
            stop_reason=d.stop_reason or None,
            last_used_at=_dt(d.last_used_at, d.HasField("last_used_at")),
            weights="adapter" if d.weights == "adapter" else "merged",
            adapters=[
                AdapterPublic(model_version_id=a.model_version_id, name=a.name) for a in d.adapters
            ],
        )


class DeploymentsPublic(BaseModel):
    data: list[DeploymentPublic]
    count: int


class DeploymentLogsPublic(BaseModel):
    lines: list[str]
