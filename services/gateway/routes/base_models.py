"""The fine-tuning catalogue: base models, suggested public datasets, and the time and cost
estimate shown before a run."""

from __future__ import annotations

from fastapi import APIRouter
from forgeline.v1 import trainer_pb2

from services.gateway.deps import CurrentPrincipal, TrainerDep
from services.gateway.openapi import ERRORS
from services.gateway.training_schemas import (
    BaseModelPublic,
    BaseModelsPublic,
    EstimatePublic,
    EstimateRequest,
    SuggestedDatasetPublic,
    SuggestedDatasetsPublic,
)

router = APIRouter(tags=["fine-tuning"])


@router.get("/base-models", response_model=BaseModelsPublic, responses=ERRORS(401, 503))
async def list_base_models(principal: CurrentPrincipal, trainer: TrainerDep) -> BaseModelsPublic:
    """Models you can fine-tune: size, chat template, what each is good for, the GPU memory
    each method needs and the cheapest cloud instance that fits it."""
    reply = await trainer.call("ListBaseModels", trainer_pb2.ListBaseModelsRequest())
    data = [BaseModelPublic.from_proto(m) for m in reply.base_models]
    return BaseModelsPublic(data=data, count=len(data))


@router.get(
    "/suggested-datasets", response_model=SuggestedDatasetsPublic, responses=ERRORS(401, 503)
)
async def list_suggested_datasets(
    principal: CurrentPrincipal, trainer: TrainerDep
) -> SuggestedDatasetsPublic:
    """Public datasets a job can train on directly; they are loaded from the Hugging Face
    Hub on compute that can reach it."""
    reply = await trainer.call("ListSuggestedDatasets", trainer_pb2.ListSuggestedDatasetsRequest())
    data = [SuggestedDatasetPublic.from_proto(d) for d in reply.datasets]
    return SuggestedDatasetsPublic(data=data, count=len(data))


@router.post("/estimates", response_model=EstimatePublic, responses=ERRORS(401, 404, 422, 503))
async def estimate(
    body: EstimateRequest, principal: CurrentPrincipal, trainer: TrainerDep
) -> EstimatePublic:
    """How long a run would take and what it would cost, before you start it."""
    reply = await trainer.call("EstimateJob", body.to_proto(principal.user.id))
    return EstimatePublic.from_proto(reply)
