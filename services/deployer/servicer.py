"""DeployerService over gRPC: proto <-> domain only. Every request names its owner and
every query filters by it; another user's deployment answers exactly like a missing one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from forgeline.v1 import deployer_pb2, deployer_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.engine import Engine
from sqlmodel import select

from services.common.crypto import SecretBox
from services.common.db import get_owned, list_owned, session_scope
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.timestamps import to_timestamp, utcnow
from services.deployer import lifecycle, usage
from services.deployer.adapters import (
    ADAPTER,
    adapter_names,
    adapter_versions,
    check_adapter_request,
    check_weights,
    name_adapters,
    served_name,
)
from services.deployer.catalogue import TrainerCatalogue
from services.deployer.chats import ChatRpcs
from services.deployer.cloud import credential_for, machine_for
from services.deployer.local import log_tail
from services.deployer.models import Deployment
from services.deployer.runner import log_path
from services.deployer.server_keys import new_api_key
from services.deployer.settings import DeployerSettings
from services.deployer.states import (
    CLOUD_TARGETS,
    LIVE,
    READY,
    check_target,
    choose_name,
    cost_guard,
    upstream_served_name,
)

DEFAULT_LOG_LINES = 200
MAX_IDLE_MINUTES = 7 * 24 * 60
MAX_LOG_LINES = 2000


def to_proto(d: Deployment) -> deployer_pb2.Deployment:
    return deployer_pb2.Deployment(
        id=d.id,
        owner_id=d.owner_id,
        name=d.name,
        base_model=d.base_model,
        model_version_id=d.model_version_id,
        target=d.target,
        state=d.state,
        status_message=d.status_message,
        failure_code=d.failure_code,
        failure_reason=d.failure_reason,
        restarts=d.restarts,
        created_at=to_timestamp(d.created_at),
        updated_at=to_timestamp(d.updated_at),
        ready_at=to_timestamp(d.ready_at),
        credential_id=d.credential_id,
        instance_type=d.instance_type,
        usd_per_hour=d.usd_per_hour,
        idle_minutes=d.idle_minutes,
        cost_guard=cost_guard(
            target=d.target, idle_minutes=d.idle_minutes, usd_per_hour=d.usd_per_hour
        ),
        stop_reason=d.stop_reason,
        last_used_at=to_timestamp(d.last_used_at),
        weights=d.weights,
        adapters=[
            deployer_pb2.DeploymentAdapter(model_version_id=a["model_version_id"], name=a["name"])
            for a in d.adapters
        ],
    )


def from_timestamp(stamp: Timestamp) -> datetime:
    moment: datetime = stamp.ToDatetime(tzinfo=UTC)
    return moment


def usage_record(r: deployer_pb2.UsageRecord) -> tuple[usage.BucketKey, usage.Counts]:
    hour = from_timestamp(r.hour) if r.HasField("hour") else utcnow()
    counts = usage.Counts(r.requests, r.prompt_tokens, r.completion_tokens, r.aborted)
    return (r.owner_id, r.deployment_id, r.credential_id, hour), counts


def _usage_counts(c: usage.Counts) -> deployer_pb2.UsageCounts:
    return deployer_pb2.UsageCounts(
        requests=c.requests,
        prompt_tokens=c.prompt_tokens,
        completion_tokens=c.completion_tokens,
        aborted=c.aborted,
    )


def usage_report_to_proto(found: usage.Report) -> deployer_pb2.UsageReport:
    return deployer_pb2.UsageReport(
        start=to_timestamp(found.start),
        end=to_timestamp(found.end),
        totals=_usage_counts(found.totals),
        by_deployment=[
            deployer_pb2.UsageGroup(key=i, deployment_name=name, counts=_usage_counts(c))
            for i, name, c in found.by_deployment
        ],
        by_credential=[
            deployer_pb2.UsageGroup(key=i, counts=_usage_counts(c)) for i, c in found.by_credential
        ],
        by_day=[deployer_pb2.UsageGroup(key=d, counts=_usage_counts(c)) for d, c in found.by_day],
    )


def not_found() -> NotFound:
    return NotFound("deployment_not_found", "There is no such deployment.")


def pick(rows: list[Deployment], model: str) -> Deployment | None:
    """The deployment a `model` names: by name or id, or one of its adapters' names; a live
    one before an ended one, the newest first (a name is free again once its deployment has
    ended)."""
    matching = [r for r in rows if model in (r.name, r.id) or model in adapter_names(r.adapters)]
    matching.sort(key=lambda r: (r.state in LIVE, r.created_at), reverse=True)
    return matching[0] if matching else None


class DeployerServicer(ChatRpcs, deployer_pb2_grpc.DeployerServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        engine: Engine,
        settings: DeployerSettings,
        trainer: TrainerCatalogue,
        enqueue_start: Callable[[str, int], None],
        enqueue_stop: Callable[[str], None],
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.trainer = trainer
        self.enqueue_start = enqueue_start
        self.enqueue_stop = enqueue_stop

    def CreateDeployment(
        self, request: deployer_pb2.CreateDeploymentRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.Deployment:
        target = check_target(request.target)
        weights = check_weights(request.weights)
        if bool(request.base_model) == bool(request.model_version_id):
            raise InvalidInput(
                "invalid_model_choice", "Name either a base_model or a model_version_id."
            )
        check_adapter_request(
            weights=weights, base_model=request.base_model,
            extra_adapters=len(request.extra_adapters),
        )  # fmt: skip
        versions: list[Any] = []
        cloud_fields: dict[str, Any] = {}
        if target in CLOUD_TARGETS:
            # Checked now, so a wrong credential is a 404 at once, not a failed start later.
            credential_for(self.trainer, request.owner_id, request.credential_id, target)
        if request.base_model:
            model = self.trainer.base_model(request.base_model)
            if target == "local" and not model.available_locally:
                raise InvalidInput(
                    "model_not_available_locally",
                    f"The weights of {model.id!r} are not on this machine, so it cannot be "
                    "deployed locally.",
                )
            if target in CLOUD_TARGETS and model.gated:
                raise InvalidInput(
                    "model_gated",
                    f"{model.display_name or model.id} needs a Hugging Face token to download, "
                    "which cloud deployments cannot pass yet; deploy an open model.",
                )
            default_name, parameters = model.id, int(model.parameters)
        else:
            version = self.trainer.model_version(request.owner_id, request.model_version_id)
            default_name = version.name or version.id
            if weights == ADAPTER:
                versions = adapter_versions(
                    self.trainer, request.owner_id, version, target,
                    [a.model_version_id for a in request.extra_adapters],
                )  # fmt: skip
            parameters = (
                int(self.trainer.base_model(version.base_model).parameters)
                if target in CLOUD_TARGETS
                else 0
            )
        if target in CLOUD_TARGETS:
            machine = machine_for(target, parameters, default_name)
            idle = request.idle_minutes or self.settings.deployer_idle_minutes
            if not 0 < idle <= MAX_IDLE_MINUTES:
                raise InvalidInput(
                    "invalid_idle_minutes",
                    f"idle_minutes is more than 0 and at most {MAX_IDLE_MINUTES} (a week).",
                )
            cloud_fields = {
                "credential_id": request.credential_id,
                "instance_type": machine.instance_type,
                "usd_per_hour": machine.usd_per_hour,
                "idle_minutes": idle,
            }
        with session_scope(self.engine) as db:
            live = db.exec(
                select(Deployment.name, Deployment.adapters).where(
                    Deployment.owner_id == request.owner_id,
                    Deployment.state.in_(LIVE),  # type: ignore[attr-defined]
                )
            ).all()
            # Adapter names answer as `model` too, so they are taken like deployment names.
            taken = {n for name, adapters in live for n in (name, *adapter_names(adapters))}
            name = choose_name(request.name.strip(), default_name, taken)
            if len(live) >= self.settings.deployer_max_per_user:
                raise Conflict(
                    "too_many_deployments",
                    f"You already have {len(live)} live deployments, the most allowed; stop "
                    "one first.",
                )
            row = Deployment(
                owner_id=request.owner_id,
                name=name,
                base_model=request.base_model,
                model_version_id=request.model_version_id,
                target=target,
                weights=weights,
                adapters=(
                    name_adapters(name, versions, [a.name for a in request.extra_adapters], taken)
                    if versions
                    else []
                ),
                status_message="Waiting for a worker",
                # Local servers too: loopback is open to every process of the machine.
                api_key_encrypted=SecretBox(self.settings).encrypt(new_api_key()),
                **cloud_fields,
            )
            db.add(row)
        self.enqueue_start(row.id, row.attempt)
        return to_proto(row)

    def ListDeployments(
        self, request: deployer_pb2.ListDeploymentsRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.ListDeploymentsResponse:
        with session_scope(self.engine) as db:
            rows = list_owned(db, Deployment, request.owner_id, newest_first=True)
        return deployer_pb2.ListDeploymentsResponse(deployments=[to_proto(r) for r in rows])

    def GetDeployment(
        self, request: deployer_pb2.GetDeploymentRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.Deployment:
        return to_proto(self._owned(request.owner_id, request.id))

    def StopDeployment(
        self, request: deployer_pb2.StopDeploymentRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.Deployment:
        row = lifecycle.request_stop(self.engine, request.id, request.owner_id)
        if row is None:
            raise not_found()
        if row.state == "stopping":
            self.enqueue_stop(row.id)
        return to_proto(row)

    def GetDeploymentLogs(
        self, request: deployer_pb2.GetDeploymentLogsRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.DeploymentLogs:
        row = self._owned(request.owner_id, request.id)
        lines = min(request.tail_lines or DEFAULT_LOG_LINES, MAX_LOG_LINES)
        return deployer_pb2.DeploymentLogs(lines=log_tail(log_path(self.settings, row.id), lines))

    def ResolveModel(
        self, request: deployer_pb2.ResolveModelRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.ResolvedModel:
        with session_scope(self.engine) as db:
            rows = list(
                db.exec(
                    select(Deployment).where(
                        Deployment.owner_id == request.owner_id,
                        (Deployment.name == request.model)
                        | (Deployment.id == request.model)
                        | (Deployment.weights == ADAPTER),  # adapter names: matched by pick
                    )
                ).all()
            )
        row = pick(rows, request.model)
        if row is None:
            raise NotFound(
                "model_not_found",
                f"The model {request.model!r} does not exist or you do not have access to it.",
            )
        ready = row.state == READY
        return deployer_pb2.ResolvedModel(
            deployment=to_proto(row),
            upstream_url=row.upstream_url if ready else "",
            served_name=served_name(
                weights=row.weights,
                deployment_name=upstream_served_name(row.name),
                adapters=row.adapters,
                model=request.model,
            ),
            api_key=(
                SecretBox(self.settings).decrypt(row.api_key_encrypted)
                if ready and row.api_key_encrypted
                else ""
            ),
        )

    def TouchDeployment(
        self, request: deployer_pb2.TouchDeploymentRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.TouchDeploymentResponse:
        if not lifecycle.touch(self.engine, request.id, request.owner_id):
            raise not_found()
        return deployer_pb2.TouchDeploymentResponse()

    def CredentialInUse(
        self, request: deployer_pb2.CredentialInUseRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.CredentialInUseResponse:
        row = lifecycle.live_on_credential(self.engine, request.owner_id, request.credential_id)
        return deployer_pb2.CredentialInUseResponse(
            in_use=row is not None, deployment_name=row.name if row else ""
        )

    def RecordUsage(
        self, request: deployer_pb2.RecordUsageRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.RecordUsageResponse:
        usage.record(self.engine, (usage_record(r) for r in request.records))
        return deployer_pb2.RecordUsageResponse()

    def GetUsage(
        self, request: deployer_pb2.GetUsageRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.UsageReport:
        start, end = usage.time_range(
            from_timestamp(request.start) if request.HasField("start") else None,
            from_timestamp(request.end) if request.HasField("end") else None,
            utcnow(),
        )
        found = usage.report(
            self.engine,
            owner_id=request.owner_id,
            start=start,
            end=end,
            deployment_id=request.deployment_id,
            credential_id=request.credential_id,
        )
        return usage_report_to_proto(found)

    def _owned(self, owner_id: str, deployment_id: str) -> Deployment:
        with session_scope(self.engine) as db:
            row = get_owned(db, Deployment, owner_id, deployment_id)
        if row is None:
            raise not_found()
        return row
