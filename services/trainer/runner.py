"""One job from `queued` to its end, on the worker that holds its lease.

validating: the dataset is still ready and fits the goal; its rows become the job's train and
eval files in the object store. provisioning: the engine and the base model are on the
training machine; a manifest with presigned URLs and a callback token goes to the provider.
Then the node bootstrap script trains, evaluates and uploads, reporting through the callback,
while this worker watches the process, renews its lease and stops it on cancel. At the end
the model version is registered (succeeded), or the job fails with the reason it gave.

Whatever happens, the training process is stopped before the worker lets go of the job: a
GPU must never be left running by mistake.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from services.common.bundled_model import ensure_hf_model
from services.common.db import session_scope
from services.common.errors import ForgelineError
from services.common.job_events import JobEventWriter
from services.common.logging import get_logger
from services.common.timestamps import as_utc, utcnow
from services.trainer import catalogue, credentials, jobs
from services.trainer.axolotl_config import deepspeed_zero3
from services.trainer.job_data import prepare
from services.trainer.models import (
    CANCELLED,
    INSPECTING,
    JOB_FAILED,
    PROVISIONING,
    READY,
    SUCCEEDED,
    VALIDATING,
    ModelVersion,
    TrainingJob,
)
from services.trainer.providers.base import (
    EXIT_CANCELLED,
    EXIT_DONE,
    NODE_RESULTS,
    ComputeProvider,
    ComputeRun,
)
from services.trainer.result_uploads import UploadForm, upload_form
from services.trainer.settings import TrainerSettings

log = get_logger(__name__)
URL_SECONDS = 7 * 24 * 3600  # S3's longest presigned validity
POLL_SECONDS = 1.0


def job_prefix(job: TrainingJob) -> str:
    return f"{job.owner_id}/jobs/{job.id}/"


class JobRunner:
    def __init__(
        self,
        *,
        engine: Engine,
        s3: Any,
        events: JobEventWriter,
        settings: TrainerSettings,
        providers: Callable[[TrainingJob], ComputeProvider],
    ) -> None:
        self.engine = engine
        self.s3 = s3
        self.events = events
        self.settings = settings
        self.providers = providers

    def run(self, job_id: str, worker: str) -> str:
        job = jobs.claim(self.engine, job_id, worker, self.settings.trainer_lease_seconds)
        if job is None:
            return "skipped"  # ended, or another worker is on it
        if job.cancel_requested:
            jobs.set_state(self.engine, self.events, job_id, CANCELLED)
            return CANCELLED
        if jobs.kept_stopping(job):
            return self._give_up(job)
        run: ComputeRun | None = None
        provider: ComputeProvider | None = None
        try:
            jobs.set_state(self.engine, self.events, job_id, VALIDATING)
            provider = self.providers(job)
            self._validate_and_stage(job)
            jobs.set_state(self.engine, self.events, job_id, PROVISIONING)
            self._provision(job, provider)
            if job.compute_ref:  # a worker that crashed left its process or machine running
                provider.stop_ref(job_id, job.compute_ref)
            token, token_hash = jobs.new_callback_token()
            # compute_ref is cleared until the new machine is recorded: the reaper leaves a
            # job's machine alone only while it is the recorded one, or none is recorded yet.
            jobs.update(
                self.engine, job_id, callback_token_hash=token_hash, node_result="", compute_ref=""
            )
            run = provider.start(job_id, {**self._manifest(job), "token": token})
            jobs.update(self.engine, job_id, compute_ref=run.ref, launched_at=utcnow())
            return self._watch(job_id, worker, provider, run)
        except ForgelineError as error:
            jobs.set_state(
                self.engine,
                self.events,
                job_id,
                JOB_FAILED,
                failure_code=error.code,
                failure_reason=error.message,
            )
            return JOB_FAILED
        except Exception:
            log.exception("job crashed", job_id=job_id)
            jobs.set_state(
                self.engine,
                self.events,
                job_id,
                JOB_FAILED,
                failure_code="internal_error",
                failure_reason="Something went wrong on our side while running this job.",
            )
            return JOB_FAILED
        finally:
            if run is not None and provider is not None:
                provider.stop(run)

    def _give_up(self, job: TrainingJob) -> str:
        """End a job whose workers kept stopping while they ran it (jobs.kept_stopping)."""
        log.error("a job stopped its workers again and again; not taking it over",
                  job_id=job.id, worker_stops=job.attempts - 1)  # fmt: skip
        if job.compute_ref:  # what the last worker left running
            try:
                self.providers(job).stop_ref(job.id, job.compute_ref)
            except ForgelineError as error:  # a cloud machine: the reaper ends it later
                log.warning("could not stop a given-up job's machine", code=error.code)
        jobs.set_state(
            self.engine,
            self.events,
            job.id,
            JOB_FAILED,
            failure_code="worker_kept_stopping",
            failure_reason=(
                f"The training worker stopped {job.attempts - 1} times while running this "
                "job, with no new checkpoint in between, so it is not tried again: something "
                "in it may be what stops the worker (for example running out of memory). "
                "The platform's logs say more; you can start the job again."
            ),
        )
        return JOB_FAILED

    # --- stages ----------------------------------------------------------------------------

    def _validate_and_stage(self, job: TrainingJob) -> None:
        if job.hub_dataset:
            self.events.append(
                job.id,
                "log",
                {"line": f"The training machine loads {job.hub_dataset} from the hub."},
            )
            return
        dataset = jobs.owned_dataset(self.engine, job.owner_id, job.dataset_id)
        if dataset.state != READY:
            raise ForgelineError(
                "dataset_not_ready",
                "The dataset changed since the job was created and is "
                + ("being inspected again." if dataset.state == INSPECTING else "not usable."),
            )
        prefix = job_prefix(job)
        with tempfile.TemporaryDirectory(prefix="forgeline-job-") as tmp:
            source = Path(tmp) / dataset.file_name
            self.s3.download_file(dataset.bucket, dataset.key, str(source))
            prepared = prepare(
                source,
                dataset.file_type,  # type: ignore[arg-type]
                dataset.format,  # type: ignore[arg-type]
                job.stage,  # type: ignore[arg-type]
                eval_fraction=dataset.eval_fraction,
                seed=dataset.id,
                valid_rows=dataset.valid_rows,
                out_dir=Path(tmp) / "data",
            )
            for path in (prepared.train, prepared.eval):
                self.s3.upload_file(
                    str(path), self.settings.s3_bucket, prefix + f"data/{path.name}"
                )
        self.events.append(
            job.id,
            "log",
            {"line": f"{prepared.train_rows} rows to train on, {prepared.eval_rows} held out."},
        )

    def _provision(self, job: TrainingJob, provider: ComputeProvider) -> None:
        def progress(line: str) -> None:
            # The first run builds the axolotl engine (minutes): the job page shows why.
            self.events.append(job.id, "log", {"line": line})

        provider.prepare(progress)
        if job.provider == "local":
            ensure_hf_model(self.settings.models_dir, progress=progress)

    def _download_url(self, key: str) -> str:
        return str(
            self.s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.settings.s3_bucket, "Key": key},
                ExpiresIn=URL_SECONDS,
            )
        )

    def _upload_form(self, key: str) -> UploadForm:
        return upload_form(
            self.s3,
            self.settings.s3_bucket,
            key,
            max_bytes=self.settings.trainer_result_max_bytes,
            seconds=URL_SECONDS,
        )

    def _manifest(self, job: TrainingJob) -> dict[str, Any]:
        prefix = job_prefix(job)
        downloads = {}
        if not job.hub_dataset:  # a hub dataset is loaded by axolotl on the node
            downloads = {
                "data/train.jsonl": self._download_url(prefix + "data/train.jsonl"),
                "data/eval.jsonl": self._download_url(prefix + "data/eval.jsonl"),
            }
        manifest: dict[str, Any] = {
            "job_id": job.id,
            "callback_url": f"{self.settings.public_url.rstrip('/')}/api/v1/jobs/{job.id}/callback",
            "config_yaml": job.config_yaml,
            # the same place the config's `base_model` names (a folder here, a hub id on a
            # cloud node): the evaluation loads the base model from it
            "base_model": jobs.model_location(
                self.settings, catalogue.get_base_model(job.base_model), job.provider
            ),
            "adapter": job.method != "full",
            "downloads": downloads,
            "uploads": {
                "checkpoint": self._upload_form(prefix + "checkpoint.tar.gz"),
                "adapter": self._upload_form(prefix + "artefacts/adapter.tar.gz"),
                "merged": self._upload_form(prefix + "artefacts/merged.tar.gz"),
                "wandb": self._upload_form(prefix + "artefacts/wandb.tar.gz"),
            },
            "evaluation": self._evaluation(job),
        }
        if job.wandb_online:
            # The key travels in the manifest (owner-only on disk, presigned on a cloud) and
            # reaches axolotl as WANDB_API_KEY: never in the config, never in a log.
            key = credentials.get(
                self.engine, job.owner_id, jobs.wandb_key_id(self.engine, job.owner_id)
            )
            manifest["env"] = {
                "WANDB_API_KEY": credentials.secret_of(self.settings, key)["api_key"]
            }
        if "deepspeed:" in job.config_yaml:
            manifest["deepspeed_json"] = json.dumps(deepspeed_zero3())
        if job.last_checkpoint_step:
            downloads["checkpoint.tar.gz"] = self._download_url(prefix + "checkpoint.tar.gz")
            manifest["checkpoint_name"] = f"checkpoint-{job.last_checkpoint_step}"
        return manifest

    def _evaluation(self, job: TrainingJob) -> dict[str, Any] | None:
        if job.benchmark != "gsm8k" or not job.benchmark_sample:
            return None
        path = self.settings.gsm8k_path
        if not path.exists():
            self.events.append(
                job.id, "log", {"line": "GSM8K questions are not on this machine; skipping it."}
            )
            return None
        with path.open() as lines:
            questions = [
                json.loads(line)
                for _, line in zip(range(job.benchmark_sample), lines, strict=False)
            ]
        return {
            "benchmark": "gsm8k",
            "questions": questions,
            "max_new_tokens": self.settings.trainer_benchmark_max_new_tokens,
        }

    # --- watching ---------------------------------------------------------------------------

    def _watch(self, job_id: str, worker: str, provider: ComputeProvider, run: ComputeRun) -> str:
        renewed = time.monotonic()
        while True:
            with session_scope(self.engine) as db:
                current = db.get(TrainingJob, job_id)
            if current is None or current.cancel_requested:
                provider.stop(run)
                jobs.set_state(self.engine, self.events, job_id, CANCELLED)
                return CANCELLED
            # The node's last report says how it ended; a local process's exit status says
            # the same, a cloud machine has none to read.
            code = NODE_RESULTS.get(current.node_result)
            if code is None:
                code = provider.poll(run)
            if code is not None:
                break
            if self._boot_timed_out(current):
                provider.stop(run)
                jobs.set_state(
                    self.engine,
                    self.events,
                    job_id,
                    JOB_FAILED,
                    failure_code="node_did_not_start",
                    failure_reason="The training machine did not report in within "
                    f"{self.settings.cloud_boot_timeout_seconds // 60} minutes, so it was "
                    "terminated. Its log is in the cloud console (serial port output).",
                )
                return JOB_FAILED
            lease = self.settings.trainer_lease_seconds
            if time.monotonic() - renewed > lease / 3:
                renewed = time.monotonic()
                if jobs.renew(self.engine, job_id, worker, lease) is None:
                    log.warning("lost the job's lease; stopping", job_id=job_id)
                    return "lost"
            time.sleep(POLL_SECONDS)
        with session_scope(self.engine) as db:
            job = db.get(TrainingJob, job_id)
        assert job is not None
        if code == EXIT_DONE:
            version = self._register(job)
            jobs.set_state(self.engine, self.events, job_id, SUCCEEDED, model_version_id=version.id)
            return SUCCEEDED
        if code == EXIT_CANCELLED or job.cancel_requested:
            jobs.set_state(self.engine, self.events, job_id, CANCELLED)
            return CANCELLED
        lost = job.provider != "local" and not job.node_result
        jobs.set_state(
            self.engine,
            self.events,
            job_id,
            JOB_FAILED,
            failure_code=job.failure_code or ("node_lost" if lost else "training_failed"),
            failure_reason=job.failure_reason
            or (
                "The training machine stopped before it finished (the cloud may have "
                "reclaimed it, or its setup failed); it was terminated."
                if lost
                else f"The training process stopped unexpectedly (exit status {code})."
            ),
        )
        return JOB_FAILED

    def _boot_timed_out(self, job: TrainingJob) -> bool:
        """A cloud node still silent long after launch: installing failed, or it never got a
        GPU. Terminating it bounds what such a job costs."""
        if job.provider == "local" or job.state != PROVISIONING or job.launched_at is None:
            return False
        limit = timedelta(seconds=self.settings.cloud_boot_timeout_seconds)
        return utcnow() - as_utc(job.launched_at) > limit

    def _register(self, job: TrainingJob) -> ModelVersion:
        prefix = job_prefix(job)
        summary = jobs.evaluation_summary(job)
        version = ModelVersion(
            owner_id=job.owner_id,
            name=job.name,
            job_id=job.id,
            base_model=job.base_model,
            dataset_id=job.dataset_id,
            hub_dataset=job.hub_dataset,
            method=job.method,
            config_yaml=job.config_yaml,
            metrics={
                "final_loss": job.last_loss,
                "held_out_loss": job.last_eval_loss,
                "benchmark": summary["benchmark"],
                "benchmark_sample": summary["sample"],
                "base_score": summary["base_score"],
                "tuned_score": summary["tuned_score"],
                "steps": job.step,
            },
            bucket=self.settings.s3_bucket,
            adapter_prefix=prefix + "artefacts/adapter.tar.gz" if job.method != "full" else "",
            merged_prefix=prefix + "artefacts/merged.tar.gz",
        )
        with session_scope(self.engine) as db:
            db.add(version)
        return version
