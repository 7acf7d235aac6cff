"""Training jobs: creating one (its Axolotl config written once, here), reading, cancelling,
and recording what the training machine reports.

States: queued -> validating -> provisioning -> training -> evaluating -> uploading ->
succeeded | failed | cancelled. The worker (`tasks.py`) moves a job through the first ones
and ends it; the training machine reports training/evaluating/uploading and its progress.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from services.common.bundled_model import MODEL_ID as BUNDLED_MODEL_ID
from services.common.db import get_owned, list_owned, session_scope
from services.common.errors import InvalidInput, NotFound
from services.common.job_events import JobEventWriter
from services.common.logging import get_logger
from services.common.timestamps import utcnow
from services.trainer import axolotl_config, catalogue, credentials
from services.trainer.job_data import check_stage
from services.trainer.models import (
    CANCELLED,
    EVALUATING,
    JOB_FAILED,
    QUEUED,
    READY,
    TERMINAL,
    TRAINING,
    UPLOADING,
    Dataset,
    TrainingJob,
)
from services.trainer.reported_events import bounded
from services.trainer.settings import TrainerSettings

log = get_logger(__name__)
REPORTED_STATES = {TRAINING, EVALUATING, UPLOADING}


@dataclass(frozen=True)
class NewJob:
    owner_id: str
    name: str
    base_model: str
    dataset_id: str
    stage: str
    method: str
    provider: str
    preset: str
    hyperparameters: dict[str, Any]
    benchmark: str
    benchmark_sample: int
    wandb_online: bool
    credential_id: str = ""  # aws/gcp: the stored credentials whose account pays
    instance_type: str = ""  # aws/gcp: empty means the cheapest machine that fits
    hub_dataset: str = ""  # a suggested dataset's hub id, instead of dataset_id


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _choice(value: str, allowed: Iterable[str], code: str, what: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise InvalidInput(code, f"Choose {what}: {', '.join(allowed)}.")
    return value


def owned_dataset(engine: Engine, owner_id: str, dataset_id: str) -> Dataset:
    with session_scope(engine) as db:
        dataset = get_owned(db, Dataset, owner_id, dataset_id)
    if dataset is None:
        raise NotFound("dataset_not_found", "No such dataset.")
    return dataset


def model_location(settings: TrainerSettings, model: catalogue.BaseModel, provider: str) -> str:
    """What the config's `base_model` says: a folder on this machine, or a hub id."""
    if provider == "local":
        if not model.bundled:
            raise InvalidInput(
                "base_model_not_local",
                f"{model.display_name}'s weights are not on this machine; choose a cloud "
                "provider to fine-tune it, or the bundled model to train here.",
            )
        return str(settings.models_dir / BUNDLED_MODEL_ID)
    return model.hub_id


def create(
    engine: Engine, settings: TrainerSettings, new: NewJob, *, store: bool = True
) -> TrainingJob:
    """Check a new job and write its Axolotl config; stored unless `store` is false (a
    preview of what would run)."""
    stage = _choice(new.stage, axolotl_config.STAGES, "unknown_stage", "a goal")
    method = _choice(new.method, ("full", "lora", "qlora"), "unknown_method", "a method")
    provider = _choice(new.provider, ("local", "aws", "gcp"), "unknown_provider", "where to train")
    benchmark = _choice(new.benchmark or "gsm8k", ("gsm8k", "none"), "unknown_benchmark",
                        "a benchmark")  # fmt: skip
    if not 0 <= new.benchmark_sample <= 1319:
        raise InvalidInput("invalid_benchmark_sample", "Evaluate on 0 to 1,319 questions.")
    name = new.name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("invalid_name", "Give the job a name of 1 to 200 characters.")
    model = catalogue.get_base_model(new.base_model or BUNDLED_MODEL_ID)
    data = _training_data(engine, new, provider)
    check_stage(stage, data.format)  # type: ignore[arg-type]
    overrides = dict(new.hyperparameters)
    overrides.setdefault("sequence_len", data.sequence_len)
    try:
        hp = axolotl_config.preset(new.preset or "balanced", **overrides)
    except TypeError as exc:
        raise InvalidInput("invalid_hyperparameters", "A setting has the wrong type.") from exc
    device = "cpu" if provider == "local" else "gpu"
    instance = None
    if provider != "local":
        instance = _cloud_machine(engine, new, provider, model, method, hp)
    if new.wandb_online:
        wandb_key_id(engine, new.owner_id)  # refuses the job now, not after an hour's training
    job = TrainingJob(
        owner_id=new.owner_id,
        name=name,
        base_model=model.id,
        dataset_id=data.dataset_id,
        hub_dataset=data.hub.hub_id if data.hub else "",
        stage=stage,
        method=method,
        provider=provider,
        preset=new.preset or "balanced",
        hyperparameters=axolotl_config.hyperparameters_dict(hp),
        config_yaml="",
        benchmark=benchmark,
        benchmark_sample=new.benchmark_sample if benchmark != "none" else 0,
        wandb_online=new.wandb_online,
        credential_id=new.credential_id if instance else "",
        instance_type=instance.instance_type if instance else "",
    )
    spec = axolotl_config.JobSpec(
        base_model=model_location(settings, model, provider),
        chat_template=model.axolotl_chat_template,
        stage=stage,  # type: ignore[arg-type]
        method=method,  # type: ignore[arg-type]
        device=device,  # type: ignore[arg-type]
        hyperparameters=hp,
        train_rows=data.train_rows,
        eval_rows=data.eval_rows,
        hub_dataset=data.hub,
        wandb_run=job.id,
        wandb_online=new.wandb_online,
        sharded=instance is not None and catalogue.needs_sharding(instance, method),  # type: ignore[arg-type]
    )
    job.config_yaml = axolotl_config.to_yaml(axolotl_config.build_config(spec))
    job.max_steps = axolotl_config.total_steps(spec)
    if store:
        with session_scope(engine) as db:
            db.add(job)
    return job


@dataclass(frozen=True)
class _TrainingData:
    """What a job trains on: an uploaded dataset, or a suggested one from the hub."""

    format: str
    sequence_len: int
    train_rows: int
    eval_rows: int
    dataset_id: str = ""
    hub: catalogue.SuggestedDataset | None = None


def _training_data(engine: Engine, new: NewJob, provider: str) -> _TrainingData:
    if new.dataset_id and new.hub_dataset:
        raise InvalidInput(
            "one_dataset_only", "Choose either one of your datasets or a suggested one."
        )
    if new.hub_dataset:
        suggested = catalogue.get_suggested_dataset(new.hub_dataset)
        if provider == "local":
            raise InvalidInput(
                "hub_dataset_needs_cloud",
                "This machine cannot reach the Hugging Face hub: train on AWS or GCP to use a "
                "suggested dataset, or upload the data as a dataset of your own.",
            )
        eval_rows = max(1, int(suggested.rows * axolotl_config.HUB_EVAL_FRACTION))
        return _TrainingData(
            format=suggested.format,
            sequence_len=2048,
            train_rows=suggested.rows - eval_rows,
            eval_rows=eval_rows,
            hub=suggested,
        )
    if not new.dataset_id:
        raise InvalidInput("dataset_required", "Choose a dataset to train on, or a suggested one.")
    dataset = owned_dataset(engine, new.owner_id, new.dataset_id)
    if dataset.state != READY:
        raise InvalidInput(
            "dataset_not_ready",
            "This dataset is not ready to train on: "
            + (
                "it is still being inspected."
                if dataset.state == "inspecting"
                else "fix the problems it lists first."
            ),
        )
    return _TrainingData(
        format=dataset.format,
        sequence_len=dataset.sequence_len,
        train_rows=dataset.train_rows,
        eval_rows=dataset.eval_rows,
        dataset_id=dataset.id,
    )


def _cloud_machine(
    engine: Engine,
    new: NewJob,
    provider: str,
    model: catalogue.BaseModel,
    method: str,
    hp: axolotl_config.Hyperparameters,
) -> catalogue.GpuInstance:
    """The machine a cloud job runs on, in the account of credentials the user owns."""
    if not new.credential_id:
        raise InvalidInput(
            "credential_required",
            f"Choose the {provider.upper()} account to train in: add its credentials under "
            "Settings first.",
        )
    credential = credentials.get(engine, new.owner_id, new.credential_id)
    if credential.kind != provider:
        raise InvalidInput(
            "credential_mismatch",
            f"{credential.name!r} is a {credential.kind} credential, not {provider}.",
        )
    shape = {"sequence_len": hp.sequence_len, "micro_batch_size": hp.micro_batch_size}
    if not new.instance_type:
        instance = catalogue.recommend_instance(model, method, provider, **shape)  # type: ignore[arg-type]
        if instance is None:
            raise InvalidInput(
                "no_instance_fits",
                f"No {provider.upper()} machine has room for {model.display_name} with this "
                "method: choose LoRA or QLoRA, or a shorter sequence length.",
            )
        return instance
    instance = catalogue.get_instance(provider, new.instance_type)  # type: ignore[arg-type]
    if not catalogue.fits(model, method, instance, **shape):  # type: ignore[arg-type]
        raise InvalidInput(
            "instance_too_small",
            f"A {instance.label} has too little GPU memory for this run; leave the machine "
            "empty to get the cheapest one that fits.",
        )
    return instance


def wandb_key_id(engine: Engine, owner_id: str) -> str:
    """The user's stored wandb key (the newest), which online logging needs."""
    keys = [c for c in credentials.list_for(engine, owner_id) if c.kind == "wandb"]
    if not keys:
        raise InvalidInput(
            "wandb_key_missing",
            "Logging to wandb online needs your wandb API key: add it under Settings, or "
            "leave online logging off (runs are then logged offline with the job).",
        )
    return keys[0].id


def get(engine: Engine, owner_id: str, job_id: str) -> TrainingJob:
    with session_scope(engine) as db:
        job = get_owned(db, TrainingJob, owner_id, job_id)
    if job is None:
        raise NotFound("job_not_found", "No such job.")
    return job


def list_for(engine: Engine, owner_id: str) -> list[TrainingJob]:
    with session_scope(engine) as db:
        return list_owned(db, TrainingJob, owner_id, newest_first=True)


def update(engine: Engine, job_id: str, **values: Any) -> TrainingJob | None:
    with session_scope(engine) as db:
        job = db.get(TrainingJob, job_id)
        if job is None:
            return None
        for name, value in values.items():
            setattr(job, name, value)
        job.updated_at = utcnow()
        db.add(job)
    return job


def set_state(
    engine: Engine, events: JobEventWriter, job_id: str, state: str, **values: Any
) -> TrainingJob | None:
    """Move a job on (never out of an ended state) and tell its watchers."""
    with session_scope(engine) as db:
        job = db.get(TrainingJob, job_id)
        if job is None or job.state in TERMINAL:
            return job
        job.state = state
        for name, value in values.items():
            setattr(job, name, value)
        now = utcnow()
        job.updated_at = now
        if state == TRAINING and job.started_at is None:
            job.started_at = now
        if state in TERMINAL:
            job.finished_at = now
            job.lease_owner, job.lease_until = "", None
        db.add(job)
    data: dict[str, Any] = {"state": state}
    if state == JOB_FAILED:
        data |= {"code": values.get("failure_code", ""), "reason": values.get("failure_reason")}
    events.append(job_id, "state", data)
    if state in TERMINAL:
        events.expire(job_id)
    return job


# A job whose workers stopped this many times while running it, with no new checkpoint in
# between, ends failed instead of being taken over again: what it does (a dataset staged in
# the worker, say) may be what stops them, and each takeover would stop the next worker too,
# until the supervisor gives up on the platform.
WORKER_STOPS_ALLOWED = 3


def kept_stopping(job: TrainingJob) -> bool:
    """Whether the claim just taken follows too many worker stops without progress."""
    return job.attempts - 1 >= WORKER_STOPS_ALLOWED


def claim(engine: Engine, job_id: str, worker: str, lease_seconds: int) -> TrainingJob | None:
    """Take the job's lease, or None when another live worker holds it or it has ended."""
    now = utcnow()
    with session_scope(engine) as db:
        job = db.exec(
            select(TrainingJob)
            .where(TrainingJob.id == job_id)
            .where(
                or_(
                    col(TrainingJob.lease_until).is_(None),
                    col(TrainingJob.lease_until) < now,
                    col(TrainingJob.lease_owner) == worker,
                )
            )
            .with_for_update()
        ).first()
        if job is None or job.state in TERMINAL:
            return None
        job.lease_owner, job.lease_until = worker, now + timedelta(seconds=lease_seconds)
        job.attempts += 1
        db.add(job)
    return job


def renew(engine: Engine, job_id: str, worker: str, lease_seconds: int) -> TrainingJob | None:
    with session_scope(engine) as db:
        job = db.get(TrainingJob, job_id)
        if job is None or job.lease_owner != worker:
            return None
        job.lease_until = utcnow() + timedelta(seconds=lease_seconds)
        db.add(job)
    return job


def orphaned(engine: Engine) -> list[str]:
    """Jobs not ended whose worker stopped renewing the lease (it crashed)."""
    # Queued jobs that never started still have their task in the queue: left alone.
    now = utcnow()
    with session_scope(engine) as db:
        rows = db.exec(
            select(TrainingJob.id).where(
                col(TrainingJob.state).not_in(TERMINAL),
                col(TrainingJob.lease_until).is_not(None),
                col(TrainingJob.lease_until) < now,
            )
        ).all()
    return list(rows)


def queued_without_task(engine: Engine, waiting: Iterable[str]) -> list[str]:
    """Queued jobs that no run_job message in the broker is for (`waiting`): their task was
    lost with the broker's data (Redis restarted without persistence). Sending one again is
    safe: a second task for the same job finds it claimed or ended and skips it."""
    waiting = set(waiting)
    with session_scope(engine) as db:
        rows = db.exec(
            select(TrainingJob.id).where(
                TrainingJob.state == QUEUED, col(TrainingJob.lease_until).is_(None)
            )
        ).all()
    return [job_id for job_id in rows if job_id not in waiting]


def last_lease_end(engine: Engine) -> datetime | None:
    """When the last lease still held on a job not ended runs out: by then every worker that
    had stopped before now has left its jobs orphaned."""
    with session_scope(engine) as db:
        end = db.exec(
            select(func.max(TrainingJob.lease_until)).where(
                col(TrainingJob.state).not_in(TERMINAL),
                col(TrainingJob.lease_until) >= utcnow(),
            )
        ).one()
    return end


def request_cancel(
    engine: Engine, events: JobEventWriter, owner_id: str, job_id: str
) -> TrainingJob:
    job = get(engine, owner_id, job_id)
    if job.state in TERMINAL:
        return job
    leased = job.lease_until is not None and job.lease_until > utcnow()
    if job.state == QUEUED or not leased:
        # Nobody is running it: it ends now (a worker that picks it up finds it ended).
        set_state(engine, events, job_id, CANCELLED, cancel_requested=True)
    else:
        update(engine, job_id, cancel_requested=True)
        events.append(job_id, "log", {"line": "Cancelling: stopping the training machine."})
    return get(engine, owner_id, job_id)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def report(
    engine: Engine, events: JobEventWriter, job_id: str, token: str, reported: list[dict[str, Any]]
) -> bool:
    """Record what the training machine sent; True when it should stop."""
    with session_scope(engine) as db:
        job = db.get(TrainingJob, job_id)
    if (
        job is None
        or not job.callback_token_hash
        or not hmac.compare_digest(job.callback_token_hash, token_hash(token))
    ):
        raise NotFound("job_not_found", "No such job.")  # a wrong token learns nothing
    if job.state in TERMINAL:
        return True
    changes: dict[str, Any] = {}
    for event in reported:
        kept = bounded(str(event.get("type", "")), dict(event.get("data") or {}))
        if kept is None:
            continue  # not a kind any node sends
        kind, data = kept
        if kind == "state" and data.get("state") in REPORTED_STATES:
            set_state(engine, events, job_id, data["state"])
            continue
        if kind == "progress":
            changes |= {
                "step": int(data.get("step") or 0),
                "max_steps": int(data.get("max_steps") or job.max_steps),
                "last_loss": _number(data.get("loss")),
            }
        elif kind == "eval":
            changes["last_eval_loss"] = _number(data.get("eval_loss"))
        elif kind == "checkpoint":
            # Progress: worker stops before this one no longer count (kept_stopping).
            changes |= {"last_checkpoint_step": int(data.get("step") or 0), "attempts": 1}
        elif kind == "evaluation":
            changes["evaluation"] = data
        elif kind == "error":
            changes |= {
                "failure_code": "training_failed",
                "failure_reason": str(data.get("message", ""))[-2000:],
                "node_result": "error",
            }
        elif kind in ("done", "cancelled"):
            changes["node_result"] = kind
        events.append(job_id, kind, data)
    if changes:
        update(engine, job_id, **changes)
    return job.cancel_requested


def new_callback_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def evaluation_summary(job: TrainingJob) -> dict[str, Any]:
    """What the job page shows: base vs tuned on the benchmark, and the held-out loss."""
    evaluation = dict(job.evaluation or {})
    return {
        "benchmark": evaluation.get("benchmark", job.benchmark),
        "sample": evaluation.get("sample", 0),
        "base_score": evaluation.get("base_exact_match"),
        "tuned_score": evaluation.get("tuned_exact_match"),
        "held_out_loss": job.last_eval_loss,
        "details": {
            "base_examples": evaluation.get("base_examples", []),
            "tuned_examples": evaluation.get("tuned_examples", []),
        },
    }
