"""Deployments: serve a base model or a fine-tuned version behind an OpenAI-compatible API.
The calls themselves go to `/v1/*` (routes/openai.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from forgeline.v1 import deployer_pb2

from services.gateway.deployment_schemas import (
    DeploymentCreate,
    DeploymentLogsPublic,
    DeploymentPublic,
    DeploymentsPublic,
)
from services.gateway.deps import CurrentPrincipal, DeployerDep
from services.gateway.openapi import ERRORS

router = APIRouter(tags=["deployments"])
DeploymentId = Annotated[str, Path(max_length=64)]


@router.post(
    "/deployments", response_model=DeploymentPublic, status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 404, 409, 422, 503),
)  # fmt: skip
async def create_deployment(
    body: DeploymentCreate, principal: CurrentPrincipal, deployer: DeployerDep
) -> DeploymentPublic:
    """Start serving a model. It goes `pending → starting → ready` (a minute or two on a
    CPU); then call it at `/v1/chat/completions` with `model` set to its `name`. With
    `"weights": "adapter"`, a LoRA version is served as base model + adapter, and
    `extra_adapters` adds more adapters of the same base to the same server, each called by
    its own name."""
    reply = await deployer.call("CreateDeployment", body.to_proto(principal.user.id))
    return DeploymentPublic.from_proto(reply)


@router.get("/deployments", response_model=DeploymentsPublic, responses=ERRORS(401, 503))
async def list_deployments(principal: CurrentPrincipal, deployer: DeployerDep) -> DeploymentsPublic:
    reply = await deployer.call(
        "ListDeployments", deployer_pb2.ListDeploymentsRequest(owner_id=principal.user.id)
    )
    data = [DeploymentPublic.from_proto(d) for d in reply.deployments]
    return DeploymentsPublic(data=data, count=len(data))


@router.get(
    "/deployments/{deployment_id}", response_model=DeploymentPublic,
    responses=ERRORS(401, 404, 503),
)  # fmt: skip
async def get_deployment(
    deployment_id: DeploymentId, principal: CurrentPrincipal, deployer: DeployerDep
) -> DeploymentPublic:
    reply = await deployer.call(
        "GetDeployment",
        deployer_pb2.GetDeploymentRequest(owner_id=principal.user.id, id=deployment_id),
    )
    return DeploymentPublic.from_proto(reply)


@router.post(
    "/deployments/{deployment_id}/stop", response_model=DeploymentPublic,
    responses=ERRORS(401, 404, 503),
)  # fmt: skip
async def stop_deployment(
    deployment_id: DeploymentId, principal: CurrentPrincipal, deployer: DeployerDep
) -> DeploymentPublic:
    """Stop the server and everything it started; the deployment goes `stopping → stopped`.
    Stopping a stopped deployment changes nothing."""
    reply = await deployer.call(
        "StopDeployment",
        deployer_pb2.StopDeploymentRequest(owner_id=principal.user.id, id=deployment_id),
    )
    return DeploymentPublic.from_proto(reply)


@router.get(
    "/deployments/{deployment_id}/logs", response_model=DeploymentLogsPublic,
    responses=ERRORS(401, 404, 503),
)  # fmt: skip
async def deployment_logs(
    deployment_id: DeploymentId,
    principal: CurrentPrincipal,
    deployer: DeployerDep,
    tail: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> DeploymentLogsPublic:
    """The last lines the server wrote (vLLM's log, every restart included)."""
    reply = await deployer.call(
        "GetDeploymentLogs",
        deployer_pb2.GetDeploymentLogsRequest(
            owner_id=principal.user.id, id=deployment_id, tail_lines=tail
        ),
    )
    return DeploymentLogsPublic(lines=list(reply.lines))
