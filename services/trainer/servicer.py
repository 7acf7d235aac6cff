"""TrainerService over gRPC: proto <-> domain only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
from forgeline.v1 import trainer_pb2, trainer_pb2_grpc
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.common.bundled_model import MODEL_ID as BUNDLED_MODEL_ID
from services.common.db import get_owned, list_owned, session_scope
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.job_events import JobEventWriter
from services.common.timestamps import to_timestamp, utcnow
from services.trainer import catalogue, credentials, datasets, jobs
from services.trainer.deployments import DeployerClient
from services.trainer.inspection import DatasetFiles, Inspector
from services.trainer.models import (
    FAILED,
    INSPECTING,
    INVALID,
    READY,
    Credential,
    Dataset,
    ModelVersion,
    TrainingJob,
)
from services.trainer.settings import TrainerSettings

_STATES = {
    INSPECTING: trainer_pb2.DATASET_STATE_INSPECTING,
    READY: trainer_pb2.DATASET_STATE_READY,
    INVALID: trainer_pb2.DATASET_STATE_INVALID,
    FAILED: trainer_pb2.DATASET_STATE_FAILED,
}
# The defaults the catalogue's memory figures and recommendations are given for.
CATALOGUE_SEQUENCE_LEN = 2048
CATALOGUE_MICRO_BATCH = 1


def dataset_to_proto(d: Dataset) -> trainer_pb2.Dataset:
    message = trainer_pb2.Dataset(
        id=d.id,
        owner_id=d.owner_id,
        name=d.name,
        file_name=d.file_name,
        key=d.key,
        size=d.size,
        file_type=d.file_type,
        state=_STATES[d.state],
        detected_format=d.detected_format,
        detection_reason=d.detection_reason,
        format=d.format,
        format_confirmed=bool(d.confirmed_format),
        columns=d.columns,
        rows=d.rows,
        valid_rows=d.valid_rows,
        problem_count=d.problem_count,
        problems=[
            trainer_pb2.Problem(
                line=p.get("line") or 0,
                unit=p.get("unit") or "line",
                field=p.get("field") or "",
                message=p.get("message") or "",
                fix=p.get("fix") or "",
            )
            for p in d.problems
        ],
        token_stats_note=d.token_stats_note,
        base_model=d.base_model,
        sequence_len=d.sequence_len,
        eval_fraction=d.eval_fraction,
        train_rows=d.train_rows,
        eval_rows=d.eval_rows,
        failure_code=d.failure_code,
        failure_reason=d.failure_reason,
        created_at=to_timestamp(d.created_at),
        updated_at=to_timestamp(d.updated_at),
    )
    if d.token_stats:
        s = d.token_stats
        message.token_stats.CopyFrom(
            trainer_pb2.TokenStats(
                rows=s["rows"],
                total_tokens=s["total_tokens"],
                min=s["min"],
                mean=s["mean"],
                p50=s["p50"],
                p95=s["p95"],
                max=s["max"],
                over_sequence_len=s["over_sequence_len"],
                sequence_len=s["sequence_len"],
                tokenizer=s.get("tokenizer", ""),
            )
        )
    return message


def instance_to_proto(instance: catalogue.GpuInstance) -> trainer_pb2.GpuInstance:
    return trainer_pb2.GpuInstance(
        provider=instance.provider,
        instance_type=instance.instance_type,
        gpu=instance.gpu,
        gpus=instance.gpus,
        gpu_memory_gb=instance.gpu_memory_gb,
        usd_per_hour=instance.usd_per_hour,
    )


def base_model_to_proto(model: catalogue.BaseModel) -> trainer_pb2.BaseModel:
    methods: tuple[catalogue.Method, ...] = ("full", "lora", "qlora")
    message = trainer_pb2.BaseModel(
        id=model.id,
        hub_id=model.hub_id,
        display_name=model.display_name,
        parameters=model.parameters,
        context_length=model.context_length,
        chat_template=model.chat_template,
        good_for=model.good_for,
        license=model.license,
        gated=model.gated,
        available_locally=model.bundled,
        memory=[
            trainer_pb2.MemoryNeed(
                method=method,
                gpu_memory_gb=catalogue.memory_gb(
                    model,
                    method,
                    sequence_len=CATALOGUE_SEQUENCE_LEN,
                    micro_batch_size=CATALOGUE_MICRO_BATCH,
                ),
            )
            for method in methods
        ],
    )
    for method in methods:
        for provider in ("aws", "gcp"):
            choice = catalogue.recommend_instance(
                model,
                method,
                provider,
                sequence_len=CATALOGUE_SEQUENCE_LEN,
                micro_batch_size=CATALOGUE_MICRO_BATCH,
            )
            entry = trainer_pb2.InstanceChoice(method=method)
            if choice is not None:
                entry.instance.CopyFrom(instance_to_proto(choice))
            message.recommended.append(entry)
    return message


def _optional(message: Any, field: str, value: float | None) -> None:
    if value is not None:
        setattr(message, field, value)


def job_to_proto(job: TrainingJob) -> trainer_pb2.Job:
    message = trainer_pb2.Job(
        id=job.id,
        owner_id=job.owner_id,
        name=job.name,
        base_model=job.base_model,
        dataset_id=job.dataset_id,
        stage=job.stage,
        method=job.method,
        provider=job.provider,
        preset=job.preset,
        hyperparameters_json=json.dumps(job.hyperparameters),
        config_yaml=job.config_yaml,
        state=job.state,
        failure_code=job.failure_code,
        failure_reason=job.failure_reason,
        cancel_requested=job.cancel_requested,
        step=job.step,
        max_steps=job.max_steps,
        model_version_id=job.model_version_id,
        created_at=to_timestamp(job.created_at),
        started_at=to_timestamp(job.started_at),
        finished_at=to_timestamp(job.finished_at),
        credential_id=job.credential_id,
        instance_type=job.instance_type,
        compute_ref=job.compute_ref,
        hub_dataset=job.hub_dataset,
    )
    _optional(message, "last_loss", job.last_loss)
    _optional(message, "last_eval_loss", job.last_eval_loss)
    if job.evaluation or job.last_eval_loss is not None:
        summary = jobs.evaluation_summary(job)
        evaluation = trainer_pb2.JobEvaluation(
            benchmark=summary["benchmark"],
            sample=summary["sample"],
            details_json=json.dumps(summary["details"]),
        )
        _optional(evaluation, "base_score", summary["base_score"])
        _optional(evaluation, "tuned_score", summary["tuned_score"])
        _optional(evaluation, "held_out_loss", summary["held_out_loss"])
        message.evaluation.CopyFrom(evaluation)
    return message


def source_to_proto(credential: Credential) -> trainer_pb2.CredentialSource:
    """For the deployer only: the secret stays encrypted with the platform key on the wire."""
    return trainer_pb2.CredentialSource(
        credential=credential_to_proto(credential), secret_encrypted=credential.secret_encrypted
    )


def credential_to_proto(credential: Credential) -> trainer_pb2.Credential:
    return trainer_pb2.Credential(
        id=credential.id,
        owner_id=credential.owner_id,
        name=credential.name,
        kind=credential.kind,
        location=credential.location,
        hint=credential.hint,
        created_at=to_timestamp(credential.created_at),
        checked_at=to_timestamp(credential.checked_at),
    )


def version_to_proto(version: ModelVersion) -> trainer_pb2.ModelVersion:
    return trainer_pb2.ModelVersion(
        id=version.id,
        owner_id=version.owner_id,
        name=version.name,
        job_id=version.job_id,
        base_model=version.base_model,
        dataset_id=version.dataset_id,
        hub_dataset=version.hub_dataset,
        method=version.method,
        config_yaml=version.config_yaml,
        metrics_json=json.dumps(version.metrics),
        bucket=version.bucket,
        adapter_prefix=version.adapter_prefix,
        merged_prefix=version.merged_prefix,
        created_at=to_timestamp(version.created_at),
    )


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        engine: Engine,
        settings: TrainerSettings,
        inspector: Inspector,
        files: DatasetFiles,
        events: JobEventWriter,
        enqueue: Callable[[str], object],
        deployments: DeployerClient | None = None,  # None: deployments are not asked
    ) -> None:
        self.deployments = deployments
        self.engine = engine
        self.settings = settings
        self.inspector = inspector
        self.files = files
        self.events = events
        self.enqueue = enqueue

    # --- catalogue ---------------------------------------------------------------------

    def ListBaseModels(
        self, request: trainer_pb2.ListBaseModelsRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ListBaseModelsResponse:
        return trainer_pb2.ListBaseModelsResponse(
            base_models=[base_model_to_proto(m) for m in catalogue.CATALOGUE.values()]
        )

    def ListSuggestedDatasets(
        self, request: trainer_pb2.ListSuggestedDatasetsRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ListSuggestedDatasetsResponse:
        return trainer_pb2.ListSuggestedDatasetsResponse(
            datasets=[
                trainer_pb2.SuggestedDataset(
                    hub_id=d.hub_id,
                    subset=d.subset or "",
                    split=d.split or "",
                    format=d.format,
                    rows=d.rows,
                    license=d.licence,
                    good_for=d.good_for,
                )
                for d in catalogue.SUGGESTED_DATASETS
            ]
        )

    def EstimateJob(
        self, request: trainer_pb2.EstimateJobRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.JobEstimate:
        model = catalogue.get_base_model(request.base_model or BUNDLED_MODEL_ID)
        tokens = request.tokens
        if request.dataset_id:
            dataset = self._get(request.owner_id, request.dataset_id)
            if not dataset.token_stats:
                raise InvalidInput(
                    "dataset_tokens_unknown",
                    "This dataset's tokens are not counted yet; wait until it is inspected, "
                    "or give a number of tokens.",
                )
            share = dataset.train_rows / dataset.valid_rows if dataset.valid_rows else 1.0
            tokens = int(dataset.token_stats["total_tokens"] * share)
        if tokens <= 0:
            raise InvalidInput("tokens_required", "Choose a dataset or give a number of tokens.")
        result = catalogue.estimate(
            model,
            request.method or "lora",
            provider=request.provider or "local",
            dataset_tokens=tokens,
            epochs=request.epochs or 1.0,
            sequence_len=request.sequence_len or CATALOGUE_SEQUENCE_LEN,
            micro_batch_size=request.micro_batch_size or CATALOGUE_MICRO_BATCH,
        )
        message = trainer_pb2.JobEstimate(
            gpu_memory_gb=result.memory_gb,
            fits=result.fits,
            tokens=result.tokens,
            hours=result.hours,
            assumptions=result.assumptions,
            warning=result.warning or "",
            summary=result.summary(),
        )
        if result.instance is not None:
            message.instance.CopyFrom(instance_to_proto(result.instance))
        if result.usd is not None:
            message.usd = result.usd
        return message

    # --- datasets ----------------------------------------------------------------------

    def _get(self, owner_id: str, dataset_id: str) -> Dataset:
        with session_scope(self.engine) as db:
            dataset = get_owned(db, Dataset, owner_id, dataset_id)
        if dataset is None:  # someone else's looks exactly like a missing one
            raise NotFound("dataset_not_found", "No such dataset.")
        return dataset

    def CreateDataset(
        self, request: trainer_pb2.CreateDatasetRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.Dataset:
        if not request.key.startswith(f"{request.owner_id}/datasets/{request.id}/"):
            raise InvalidInput("invalid_dataset_key", "The dataset is not in its owner's folder.")
        datasets.file_type_for(request.file_name)  # refuse what can never be read, now
        name = request.name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("invalid_name", "Give the dataset a name of 1 to 200 characters.")
        model = catalogue.get_base_model(request.base_model or BUNDLED_MODEL_ID)
        dataset = Dataset(
            id=request.id,
            owner_id=request.owner_id,
            name=name,
            file_name=request.file_name,
            bucket=request.bucket,
            key=request.key,
            size=request.size,
            base_model=model.id,
            sequence_len=min(CATALOGUE_SEQUENCE_LEN, model.context_length),
        )
        try:
            with session_scope(self.engine) as db:
                db.add(dataset)
        except IntegrityError as exc:
            raise Conflict(
                "dataset_name_taken",
                "You already have a dataset with this name; choose another name.",
            ) from exc
        self.inspector.submit(dataset.id)
        return dataset_to_proto(dataset)

    def ListDatasets(
        self, request: trainer_pb2.ListDatasetsRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ListDatasetsResponse:
        with session_scope(self.engine) as db:
            rows = list_owned(db, Dataset, request.owner_id, newest_first=True)
        return trainer_pb2.ListDatasetsResponse(datasets=[dataset_to_proto(d) for d in rows])

    def GetDataset(
        self, request: trainer_pb2.GetDatasetRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.Dataset:
        return dataset_to_proto(self._get(request.owner_id, request.id))

    def UpdateDataset(
        self, request: trainer_pb2.UpdateDatasetRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.Dataset:
        changes: dict[str, Any] = {}
        if request.HasField("name"):
            name = request.name.strip()
            if not name or len(name) > 200:
                raise InvalidInput(
                    "invalid_name", "Give the dataset a name of 1 to 200 characters."
                )
            changes["name"] = name
        reinspect: dict[str, Any] = {}
        if request.HasField("format"):
            if request.format not in datasets.FORMATS:
                raise InvalidInput(
                    "unknown_format", f"Choose one of these formats: {', '.join(datasets.FORMATS)}."
                )
            reinspect["confirmed_format"] = request.format
        if request.HasField("base_model"):
            reinspect["base_model"] = catalogue.get_base_model(request.base_model).id
        if request.HasField("sequence_len"):
            if not 64 <= request.sequence_len <= 131072:
                raise InvalidInput(
                    "invalid_sequence_len", "The sequence length must be 64 to 131,072 tokens."
                )
            reinspect["sequence_len"] = request.sequence_len
        if request.HasField("eval_fraction"):
            if not 0 <= request.eval_fraction <= 0.5:
                raise InvalidInput(
                    "invalid_eval_fraction", "Hold out between 0 and 50% of the rows."
                )
            reinspect["eval_fraction"] = request.eval_fraction
        try:
            with session_scope(self.engine) as db:
                dataset = get_owned(db, Dataset, request.owner_id, request.id)
                if dataset is None:
                    raise NotFound("dataset_not_found", "No such dataset.")
                for name, value in {**changes, **reinspect}.items():
                    setattr(dataset, name, value)
                if reinspect:
                    dataset.revision += 1
                    dataset.state = INSPECTING
                dataset.updated_at = utcnow()
                db.add(dataset)
                db.flush()
        except IntegrityError as exc:
            raise Conflict(
                "dataset_name_taken",
                "You already have a dataset with this name; choose another name.",
            ) from exc
        if reinspect:
            self.inspector.submit(dataset.id)
        return dataset_to_proto(dataset)

    def DeleteDataset(
        self, request: trainer_pb2.DeleteDatasetRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.DeleteDatasetResponse:
        with session_scope(self.engine) as db:
            dataset = get_owned(db, Dataset, request.owner_id, request.id)
            if dataset is None:
                raise NotFound("dataset_not_found", "No such dataset.")
            db.delete(dataset)
        self.files.forget(dataset.id)
        return trainer_pb2.DeleteDatasetResponse(bucket=dataset.bucket, key=dataset.key)

    def PreviewDataset(
        self, request: trainer_pb2.PreviewDatasetRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.PreviewDatasetResponse:
        dataset = self._get(request.owner_id, request.id)
        if dataset.state == FAILED:  # the file is not read again in this process
            raise InvalidInput("dataset_failed", dataset.failure_reason or "This dataset failed.")
        if not dataset.file_type:
            raise InvalidInput(
                "dataset_not_inspected",
                "This dataset has not been read yet; wait until it is inspected.",
            )
        path = self.files.path(dataset)
        file_type: datasets.FileType = dataset.file_type  # type: ignore[assignment]
        rows = datasets.preview(path, file_type, request.offset, request.limit or 20)
        held_out = self._held_out_lines(
            dataset, path, file_type, until=rows[-1].line if rows else 0
        )
        return trainer_pb2.PreviewDatasetResponse(
            rows=[
                trainer_pb2.PreviewRow(
                    line=row.line,
                    unit=row.unit,
                    data_json=json.dumps(row.data, ensure_ascii=False, default=str)
                    if row.data
                    else "",
                    error=row.error.message if row.error else "",
                    eval=row.line in held_out,
                )
                for row in rows
            ]
        )

    @staticmethod
    def _held_out_lines(
        dataset: Dataset, path: Any, file_type: datasets.FileType, *, until: int
    ) -> set[int]:
        """Lines (up to `until`) of the rows held out for evaluation, as a job splits them."""
        if not dataset.format or not dataset.valid_rows:
            return set()
        held: set[int] = set()
        fmt: datasets.Format = dataset.format  # type: ignore[assignment]
        for n, row in enumerate(datasets.training_rows(datasets.read_rows(path, file_type), fmt)):
            if row.line > until:
                break
            if datasets.is_eval_row(n, dataset.eval_fraction, dataset.id, rows=dataset.valid_rows):
                held.add(row.line)
        return held

    # --- jobs --------------------------------------------------------------------------

    def CreateJob(
        self, request: trainer_pb2.CreateJobRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.Job:
        try:
            overrides = json.loads(request.hyperparameters_json or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                "invalid_hyperparameters", "The advanced settings are not valid JSON."
            ) from exc
        if not isinstance(overrides, dict):
            raise InvalidInput(
                "invalid_hyperparameters", "The advanced settings must be an object."
            )
        job = jobs.create(
            self.engine,
            self.settings,
            jobs.NewJob(
                owner_id=request.owner_id,
                name=request.name,
                base_model=request.base_model,
                dataset_id=request.dataset_id,
                stage=request.stage or "sft",
                method=request.method or "lora",
                provider=request.provider or "local",
                preset=request.preset or "balanced",
                hyperparameters=overrides,
                benchmark=request.benchmark or "gsm8k",
                benchmark_sample=request.benchmark_sample,
                wandb_online=request.wandb_online,
                credential_id=request.credential_id,
                instance_type=request.instance_type,
                hub_dataset=request.hub_dataset,
            ),
            store=not request.dry_run,
        )
        if request.dry_run:
            return job_to_proto(job)
        self.events.append(job.id, "state", {"state": job.state})
        self.enqueue(job.id)
        return job_to_proto(job)

    def ListJobs(
        self, request: trainer_pb2.ListJobsRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ListJobsResponse:
        return trainer_pb2.ListJobsResponse(
            jobs=[job_to_proto(j) for j in jobs.list_for(self.engine, request.owner_id)]
        )

    def GetJob(
        self, request: trainer_pb2.GetJobRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.Job:
        return job_to_proto(jobs.get(self.engine, request.owner_id, request.id))

    def CancelJob(
        self, request: trainer_pb2.CancelJobRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.Job:
        job = jobs.request_cancel(self.engine, self.events, request.owner_id, request.id)
        return job_to_proto(job)

    def ReportJobEvents(
        self, request: trainer_pb2.ReportJobEventsRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ReportJobEventsResponse:
        reported = []
        for event in request.events:
            try:
                data = json.loads(event.data_json or "{}")
            except json.JSONDecodeError:
                data = {}
            reported.append({"type": event.type, "data": data if isinstance(data, dict) else {}})
        stop = jobs.report(self.engine, self.events, request.job_id, request.token, reported)
        return trainer_pb2.ReportJobEventsResponse(cancel=stop)

    def ListModelVersions(
        self, request: trainer_pb2.ListModelVersionsRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ListModelVersionsResponse:
        with session_scope(self.engine) as db:
            rows = list_owned(db, ModelVersion, request.owner_id, newest_first=True)
        return trainer_pb2.ListModelVersionsResponse(versions=[version_to_proto(v) for v in rows])

    # --- credentials ---------------------------------------------------------------------

    def CreateCredential(
        self, request: trainer_pb2.CreateCredentialRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.Credential:
        try:
            secret = json.loads(request.secret_json or "{}")
        except json.JSONDecodeError:
            secret = None
        if not isinstance(secret, dict):
            raise InvalidInput("invalid_secret", "The secret must be a JSON object.")
        credential = credentials.create(
            self.engine,
            self.settings,
            credentials.NewCredential(
                owner_id=request.owner_id,
                name=request.name,
                kind=request.kind,
                location=request.location.strip(),
                secret=secret,
            ),
        )
        return credential_to_proto(credential)

    def ListCredentials(
        self, request: trainer_pb2.ListCredentialsRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ListCredentialsResponse:
        rows = credentials.list_for(self.engine, request.owner_id)
        return trainer_pb2.ListCredentialsResponse(
            credentials=[credential_to_proto(c) for c in rows]
        )

    def DeleteCredential(
        self, request: trainer_pb2.DeleteCredentialRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.DeleteCredentialResponse:
        deployment_on = self.deployments.deployment_on if self.deployments else None
        credentials.delete(self.engine, request.owner_id, request.id, deployment_on)
        return trainer_pb2.DeleteCredentialResponse()

    def GetCredentialSource(
        self, request: trainer_pb2.GetCredentialSourceRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.CredentialSource:
        credential = credentials.get(self.engine, request.owner_id, request.id)
        return source_to_proto(credential)

    def ListCredentialSources(
        self, request: trainer_pb2.ListCredentialSourcesRequest, context: grpc.ServicerContext
    ) -> trainer_pb2.ListCredentialSourcesResponse:
        rows = credentials.list_cloud(self.engine)
        return trainer_pb2.ListCredentialSourcesResponse(sources=[source_to_proto(c) for c in rows])
