"""REST models for fine-tuning: datasets, base models, suggested datasets and estimates."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from forgeline.v1 import trainer_pb2
from pydantic import BaseModel, Field

from services.gateway.schemas import _dt

DatasetFormat = Literal["alpaca", "chat", "sharegpt", "preference", "text"]
Method = Literal["full", "lora", "qlora"]
Provider = Literal["local", "aws", "gcp"]
DatasetState = Literal["inspecting", "ready", "invalid", "failed"]

_DATASET_STATES: dict[int, DatasetState] = {
    trainer_pb2.DATASET_STATE_INSPECTING: "inspecting",
    trainer_pb2.DATASET_STATE_READY: "ready",
    trainer_pb2.DATASET_STATE_INVALID: "invalid",
    trainer_pb2.DATASET_STATE_FAILED: "failed",
}


# --- catalogue -----------------------------------------------------------------------------


class GpuInstancePublic(BaseModel):
    provider: Literal["aws", "gcp"]
    instance_type: str = Field(examples=["g5.xlarge"])
    gpu: str = Field(examples=["NVIDIA A10G"])
    gpus: int
    gpu_memory_gb: float
    usd_per_hour: float = Field(description="On-demand list price; yours may differ.")

    @classmethod
    def from_proto(cls, i: trainer_pb2.GpuInstance) -> GpuInstancePublic:
        return cls(
            provider=i.provider,
            instance_type=i.instance_type,
            gpu=i.gpu,
            gpus=i.gpus,
            gpu_memory_gb=round(i.gpu_memory_gb, 1),
            usd_per_hour=i.usd_per_hour,
        )


class BaseModelPublic(BaseModel):
    id: str = Field(examples=["smollm2-135m-instruct"])
    hub_id: str
    display_name: str
    parameters: int
    context_length: int
    chat_template: str
    good_for: str = Field(description="What it is good for, in plain words.")
    license: str
    gated: bool = Field(description="The hub asks you to accept its licence first.")
    available_locally: bool = Field(description="Its weights are on this machine.")
    gpu_memory_gb: dict[str, float] = Field(
        description="GPU memory needed per method (full, lora, qlora), at the defaults."
    )
    recommended_instances: dict[str, list[GpuInstancePublic]] = Field(
        description="Per method, the cheapest listed instance that fits, per cloud."
    )

    @classmethod
    def from_proto(cls, m: trainer_pb2.BaseModel) -> BaseModelPublic:
        recommended: dict[str, list[GpuInstancePublic]] = {}
        for choice in m.recommended:
            if choice.HasField("instance"):
                recommended.setdefault(choice.method, []).append(
                    GpuInstancePublic.from_proto(choice.instance)
                )
        return cls(
            id=m.id,
            hub_id=m.hub_id,
            display_name=m.display_name,
            parameters=m.parameters,
            context_length=m.context_length,
            chat_template=m.chat_template,
            good_for=m.good_for,
            license=m.license,
            gated=m.gated,
            available_locally=m.available_locally,
            gpu_memory_gb={n.method: round(n.gpu_memory_gb, 1) for n in m.memory},
            recommended_instances=recommended,
        )


class BaseModelsPublic(BaseModel):
    data: list[BaseModelPublic]
    count: int


class SuggestedDatasetPublic(BaseModel):
    hub_id: str = Field(examples=["TIGER-Lab/MathInstruct"])
    subset: str | None
    split: str | None
    format: DatasetFormat
    rows: int
    license: str
    good_for: str

    @classmethod
    def from_proto(cls, d: trainer_pb2.SuggestedDataset) -> SuggestedDatasetPublic:
        return cls(
            hub_id=d.hub_id,
            subset=d.subset or None,
            split=d.split or None,
            format=d.format,
            rows=d.rows,
            license=d.license,
            good_for=d.good_for,
        )


class SuggestedDatasetsPublic(BaseModel):
    data: list[SuggestedDatasetPublic]
    count: int


class EstimateRequest(BaseModel):
    base_model: str = Field("smollm2-135m-instruct", max_length=100)
    method: Method = "lora"
    provider: Provider = "local"
    dataset_id: str | None = Field(None, max_length=64, description="Count this dataset's tokens.")
    tokens: int = Field(0, ge=0, le=10**12, description="Or this many training tokens.")
    epochs: float = Field(1.0, gt=0, le=100)
    sequence_len: int = Field(2048, ge=64, le=131072)
    micro_batch_size: int = Field(1, ge=1, le=256)

    def to_proto(self, owner_id: str) -> trainer_pb2.EstimateJobRequest:
        return trainer_pb2.EstimateJobRequest(
            owner_id=owner_id,
            base_model=self.base_model,
            method=self.method,
            provider=self.provider,
            dataset_id=self.dataset_id or "",
            tokens=self.tokens,
            epochs=self.epochs,
            sequence_len=self.sequence_len,
            micro_batch_size=self.micro_batch_size,
        )


class EstimatePublic(BaseModel):
    summary: str = Field(examples=["About 1 h 20 min on 1 x NVIDIA A10G (g5.xlarge), about $1.35."])
    instance: GpuInstancePublic | None
    gpu_memory_gb: float
    fits: bool
    tokens: int
    hours: float
    usd: float | None
    assumptions: list[str]
    warning: str | None

    @classmethod
    def from_proto(cls, e: trainer_pb2.JobEstimate) -> EstimatePublic:
        return cls(
            summary=e.summary,
            instance=GpuInstancePublic.from_proto(e.instance) if e.HasField("instance") else None,
            gpu_memory_gb=round(e.gpu_memory_gb, 1),
            fits=e.fits,
            tokens=e.tokens,
            hours=e.hours,
            usd=e.usd if e.HasField("usd") else None,
            assumptions=list(e.assumptions),
            warning=e.warning or None,
        )


# --- datasets ------------------------------------------------------------------------------


class ProblemPublic(BaseModel):
    line: int = Field(description="Where, as an editor shows it; 0: the file as a whole.")
    unit: str = Field(examples=["line"], description="line, row or document")
    field: str | None
    message: str = Field(examples=["The 'output' field is empty."])
    fix: str = Field(examples=["Write the answer you want the model to give, or delete the row."])


class TokenStatsPublic(BaseModel):
    rows: int
    total_tokens: int
    min: int
    mean: float
    p50: int
    p95: int
    max: int
    over_sequence_len: int = Field(description="Rows longer than the sequence length.")
    sequence_len: int
    tokenizer: str


class DatasetPublic(BaseModel):
    id: str
    name: str
    file_name: str
    size: int
    file_type: str = Field(examples=["jsonl"])
    state: DatasetState
    detected_format: DatasetFormat | None
    detection_reason: str
    format: DatasetFormat | None = Field(description="Confirmed by you, else the detected one.")
    format_confirmed: bool
    columns: list[str]
    rows: int
    valid_rows: int
    problem_count: int
    problems: list[ProblemPublic] = Field(description="The first problems found.")
    token_stats: TokenStatsPublic | None
    token_stats_note: str | None = Field(description="Why there are no token statistics.")
    base_model: str
    sequence_len: int
    eval_fraction: float
    train_rows: int
    eval_rows: int
    failure_code: str | None
    failure_reason: str | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_proto(cls, d: trainer_pb2.Dataset) -> DatasetPublic:
        stats = None
        if d.HasField("token_stats"):
            t = d.token_stats
            stats = TokenStatsPublic(
                rows=t.rows,
                total_tokens=t.total_tokens,
                min=t.min,
                mean=round(t.mean, 1),
                p50=t.p50,
                p95=t.p95,
                max=t.max,
                over_sequence_len=t.over_sequence_len,
                sequence_len=t.sequence_len,
                tokenizer=t.tokenizer,
            )
        return cls(
            id=d.id,
            name=d.name,
            file_name=d.file_name,
            size=d.size,
            file_type=d.file_type,
            state=_DATASET_STATES.get(d.state, "failed"),
            detected_format=d.detected_format or None,
            detection_reason=d.detection_reason,
            format=d.format or None,
            format_confirmed=d.format_confirmed,
            columns=list(d.columns),
            rows=d.rows,
            valid_rows=d.valid_rows,
            problem_count=d.problem_count,
            problems=[
                ProblemPublic(
                    line=p.line, unit=p.unit, field=p.field or None, message=p.message, fix=p.fix
                )
                for p in d.problems
            ],
            token_stats=stats,
            token_stats_note=d.token_stats_note or None,
            base_model=d.base_model,
            sequence_len=d.sequence_len,
            eval_fraction=d.eval_fraction,
            train_rows=d.train_rows,
            eval_rows=d.eval_rows,
            failure_code=d.failure_code or None,
            failure_reason=d.failure_reason or None,
            created_at=_dt(d.created_at, d.HasField("created_at")),
            updated_at=_dt(d.updated_at, d.HasField("updated_at")),
        )


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class DatasetUpdate(BaseModel):
    """Only the fields given change; any change but the name inspects the dataset again."""

    name: str | None = Field(None, min_length=1, max_length=200)
    format: DatasetFormat | None = Field(None, description="Confirm or correct the format.")
    base_model: str | None = Field(None, max_length=100)
    sequence_len: int | None = Field(None, ge=64, le=131072)
    eval_fraction: float | None = Field(None, ge=0, le=0.5)

    def to_proto(self, owner_id: str, dataset_id: str) -> trainer_pb2.UpdateDatasetRequest:
        request = trainer_pb2.UpdateDatasetRequest(owner_id=owner_id, id=dataset_id)
        for name in ("name", "format", "base_model", "sequence_len", "eval_fraction"):
            value = getattr(self, name)
            if value is not None:
                setattr(request, name, value)
        return request


class PreviewRowPublic(BaseModel):
    line: int
    unit: str
    data: dict[str, Any] | None
    error: str | None
    eval: bool = Field(description="Held out for evaluation.")

    @classmethod
    def from_proto(cls, r: trainer_pb2.PreviewRow) -> PreviewRowPublic:
        return cls(
            line=r.line,
            unit=r.unit,
            data=json.loads(r.data_json) if r.data_json else None,
            error=r.error or None,
            eval=r.eval,
        )


class PreviewPublic(BaseModel):
    data: list[PreviewRowPublic]
    count: int


# --- jobs ----------------------------------------------------------------------------------

Stage = Literal["pretrain", "sft", "dpo", "orpo"]
Preset = Literal["quick", "balanced", "thorough"]


class JobCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["Maths tutor v1"])
    dataset_id: str = Field("", max_length=64, description="One of your ready datasets.")
    hub_dataset: str = Field(
        "",
        max_length=200,
        description="Instead: a suggested public dataset (GET /suggested-datasets), loaded "
        "from the Hugging Face hub by the cloud machine.",
        examples=["TIGER-Lab/MathInstruct"],
    )
    base_model: str = Field("smollm2-135m-instruct", max_length=100)
    stage: Stage = Field(
        "sft",
        description="The goal: pretrain (learn your documents), sft (answer like your "
        "examples), dpo or orpo (prefer the chosen answers).",
    )
    method: Method = "lora"
    provider: Provider = "local"
    preset: Preset = Field("balanced", description="quick (a trial), balanced, thorough.")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Advanced settings over the preset: epochs, max_steps, learning_rate, "
        "sequence_len, micro_batch_size, gradient_accumulation_steps, lora_r, lora_alpha, "
        "lora_dropout, warmup_ratio, eval_steps, save_steps, seed.",
    )
    benchmark: Literal["gsm8k", "none"] = "gsm8k"
    benchmark_sample: int = Field(20, ge=0, le=1319, description="GSM8K questions evaluated.")
    wandb_online: bool = Field(
        False, description="Log to wandb online with the wandb key stored in your credentials."
    )
    credential_id: str = Field(
        "", max_length=64, description="aws/gcp: the stored cloud account to train in."
    )
    instance_type: str = Field(
        "", max_length=64, description="aws/gcp: a machine type; empty for the cheapest that fits."
    )

    def to_proto(self, owner_id: str) -> trainer_pb2.CreateJobRequest:
        return trainer_pb2.CreateJobRequest(
            owner_id=owner_id,
            name=self.name,
            base_model=self.base_model,
            dataset_id=self.dataset_id,
            hub_dataset=self.hub_dataset,
            stage=self.stage,
            method=self.method,
            provider=self.provider,
            preset=self.preset,
            hyperparameters_json=json.dumps(self.hyperparameters),
            benchmark=self.benchmark,
            benchmark_sample=self.benchmark_sample,
            wandb_online=self.wandb_online,
            credential_id=self.credential_id,
            instance_type=self.instance_type,
        )


class EvaluationPublic(BaseModel):
    benchmark: str
    sample: int
    base_score: float | None = Field(description="Exact match of the base model, 0 to 1.")
    tuned_score: float | None = Field(description="Exact match of the tuned model, 0 to 1.")
    held_out_loss: float | None
    details: dict[str, Any]


JobState = Literal[
    "queued",
    "validating",
    "provisioning",
    "training",
    "evaluating",
    "uploading",
    "succeeded",
    "failed",
    "cancelled",
]


class JobPublic(BaseModel):
    id: str
    name: str
    base_model: str
    dataset_id: str
    stage: str
    method: str
    provider: str
    preset: str
    hyperparameters: dict[str, Any]
    state: JobState
    failure_code: str | None
    failure_reason: str | None
    cancel_requested: bool
    step: int
    max_steps: int
    last_loss: float | None
    last_eval_loss: float | None
    evaluation: EvaluationPublic | None
    model_version_id: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    credential_id: str | None = Field(None, description="The cloud account it trains in.")
    instance_type: str | None = Field(None, description="The cloud machine it trains on.")
    hub_dataset: str | None = Field(None, description="The suggested dataset it trains on.")
    machine: str | None = Field(
        None, description='Where it runs now: "aws:i-0abc…", "gcp:forgeline-…", "local:<pid>".'
    )

    @classmethod
    def from_proto(cls, j: trainer_pb2.Job) -> JobPublic:
        evaluation = None
        if j.HasField("evaluation"):
            e = j.evaluation
            evaluation = EvaluationPublic(
                benchmark=e.benchmark,
                sample=e.sample,
                base_score=e.base_score if e.HasField("base_score") else None,
                tuned_score=e.tuned_score if e.HasField("tuned_score") else None,
                held_out_loss=e.held_out_loss if e.HasField("held_out_loss") else None,
                details=json.loads(e.details_json or "{}"),
            )
        return cls(
            id=j.id,
            name=j.name,
            base_model=j.base_model,
            dataset_id=j.dataset_id,
            stage=j.stage,
            method=j.method,
            provider=j.provider,
            preset=j.preset,
            hyperparameters=json.loads(j.hyperparameters_json or "{}"),
            state=j.state,
            failure_code=j.failure_code or None,
            failure_reason=j.failure_reason or None,
            cancel_requested=j.cancel_requested,
            step=j.step,
            max_steps=j.max_steps,
            last_loss=j.last_loss if j.HasField("last_loss") else None,
            last_eval_loss=j.last_eval_loss if j.HasField("last_eval_loss") else None,
            evaluation=evaluation,
            model_version_id=j.model_version_id or None,
            created_at=_dt(j.created_at, j.HasField("created_at")),
            started_at=_dt(j.started_at, j.HasField("started_at")),
            finished_at=_dt(j.finished_at, j.HasField("finished_at")),
            credential_id=j.credential_id or None,
            instance_type=j.instance_type or None,
            machine=j.compute_ref or None,
            hub_dataset=j.hub_dataset or None,
        )


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class CallbackBody(BaseModel):
    """What a training machine posts: a batch of events."""

    events: list[dict[str, Any]] = Field(max_length=5000)


class ModelVersionPublic(BaseModel):
    id: str
    name: str
    job_id: str
    base_model: str
    dataset_id: str
    hub_dataset: str | None = None
    method: str
    metrics: dict[str, Any]
    has_adapter: bool
    created_at: datetime | None

    @classmethod
    def from_proto(cls, v: trainer_pb2.ModelVersion) -> ModelVersionPublic:
        return cls(
            id=v.id,
            name=v.name,
            job_id=v.job_id,
            base_model=v.base_model,
            dataset_id=v.dataset_id,
            hub_dataset=v.hub_dataset or None,
            method=v.method,
            metrics=json.loads(v.metrics_json or "{}"),
            has_adapter=bool(v.adapter_prefix),
            created_at=_dt(v.created_at, v.HasField("created_at")),
        )


class ModelVersionsPublic(BaseModel):
    data: list[ModelVersionPublic]
    count: int


# --- credentials ---------------------------------------------------------------------------


class CredentialCreate(BaseModel):
    """Write-only: the secret is checked (a dry run for cloud accounts), stored encrypted, and
    never shown again."""

    name: str = Field(min_length=1, max_length=200, examples=["Research AWS account"])
    kind: Literal["aws", "gcp", "wandb"]
    location: str = Field(
        "", max_length=64, description="aws: a region (us-east-1); gcp: a zone (us-central1-a)."
    )
    secret: dict[str, Any] = Field(
        description='aws: {"access_key_id", "secret_access_key"[, "session_token"]}; '
        'gcp: {"service_account": the JSON key file}; wandb: {"api_key"}.',
    )

    def to_proto(self, owner_id: str) -> trainer_pb2.CreateCredentialRequest:
        return trainer_pb2.CreateCredentialRequest(
            owner_id=owner_id,
            name=self.name,
            kind=self.kind,
            location=self.location,
            secret_json=json.dumps(self.secret),
        )


class CredentialPublic(BaseModel):
    id: str
    name: str
    kind: str
    location: str
    hint: str = Field(description="The key id's last characters, or the account's email.")
    created_at: datetime | None
    checked_at: datetime | None

    @classmethod
    def from_proto(cls, c: trainer_pb2.Credential) -> CredentialPublic:
        return cls(
            id=c.id,
            name=c.name,
            kind=c.kind,
            location=c.location,
            hint=c.hint,
            created_at=_dt(c.created_at, c.HasField("created_at")),
            checked_at=_dt(c.checked_at, c.HasField("checked_at")),
        )


class CredentialsPublic(BaseModel):
    data: list[CredentialPublic]
    count: int


class JobPreview(JobPublic):
    """A job as `POST /jobs` would start it; nothing was stored (its id is not kept)."""

    config_yaml: str = Field(description="The Axolotl config the run would use, as YAML.")

    @classmethod
    def from_proto(cls, j: trainer_pb2.Job) -> JobPreview:
        return cls(**JobPublic.from_proto(j).model_dump(), config_yaml=j.config_yaml)
