"""Fine-tuning jobs: create, list, read (with the Axolotl config), cancel, watch live (SSE),
and the callback the training machine reports through; the model versions jobs register.

The events of a job live in a Redis stream (services/common/job_events.py); `/events`
streams them as SSE with the stream ids as event ids, so a browser that reconnects with
`Last-Event-ID` continues exactly where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request, status
from fastapi.responses import PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from forgeline.v1 import trainer_pb2

from services.common.errors import Unauthenticated
from services.common.job_events import JobEventReader, valid_event_id
from services.gateway.deps import CurrentPrincipal, TrainerDep
from services.gateway.openapi import ERRORS
from services.gateway.training_schemas import (
    CallbackBody,
    JobCreate,
    JobPreview,
    JobPublic,
    JobsPublic,
    ModelVersionPublic,
    ModelVersionsPublic,
)

router = APIRouter(tags=["fine-tuning"])
JobId = Annotated[str, Path(max_length=64)]
ENDED = {"succeeded", "failed", "cancelled"}
# How long one read of the stream waits before a keep-alive comment goes out.
BLOCK_MS = 10_000
_job_token = HTTPBearer(auto_error=False, description="The job's own callback token.")


@router.post(
    "/jobs", response_model=JobPublic, status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 404, 422, 503),
)  # fmt: skip
async def create_job(
    body: JobCreate, principal: CurrentPrincipal, trainer: TrainerDep
) -> JobPublic:
    """Start fine-tuning: a base model, a ready dataset, a goal and a preset. The Axolotl
    config is written now and shown on the job; the run starts as soon as a worker is free."""
    job = await trainer.call("CreateJob", body.to_proto(principal.user.id))
    return JobPublic.from_proto(job)


@router.post("/jobs/preview", response_model=JobPreview, responses=ERRORS(401, 404, 422, 503))
async def preview_job(
    body: JobCreate, principal: CurrentPrincipal, trainer: TrainerDep
) -> JobPreview:
    """The job a `POST /jobs` with this body would start, checked the same way, with its
    Axolotl YAML (`config_yaml`) and steps; nothing is stored or started."""
    request = body.to_proto(principal.user.id)
    request.dry_run = True
    job = await trainer.call("CreateJob", request)
    return JobPreview.from_proto(job)


@router.get("/jobs", response_model=JobsPublic, responses=ERRORS(401, 503))
async def list_jobs(principal: CurrentPrincipal, trainer: TrainerDep) -> JobsPublic:
    reply = await trainer.call("ListJobs", trainer_pb2.ListJobsRequest(owner_id=principal.user.id))
    data = [JobPublic.from_proto(j) for j in reply.jobs]
    return JobsPublic(data=data, count=len(data))


@router.get("/jobs/{job_id}", response_model=JobPublic, responses=ERRORS(401, 404, 503))
async def get_job(job_id: JobId, principal: CurrentPrincipal, trainer: TrainerDep) -> JobPublic:
    job = await trainer.call(
        "GetJob", trainer_pb2.GetJobRequest(owner_id=principal.user.id, id=job_id)
    )
    return JobPublic.from_proto(job)


@router.get(
    "/jobs/{job_id}/config",
    response_class=PlainTextResponse,
    responses={**ERRORS(401, 404, 503), 200: {"content": {"application/yaml": {}}}},
)
async def get_job_config(
    job_id: JobId, principal: CurrentPrincipal, trainer: TrainerDep
) -> PlainTextResponse:
    """The job's Axolotl YAML config, exactly as it runs."""
    job = await trainer.call(
        "GetJob", trainer_pb2.GetJobRequest(owner_id=principal.user.id, id=job_id)
    )
    return PlainTextResponse(job.config_yaml, media_type="application/yaml")


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, responses=ERRORS(401, 404, 503))
async def cancel_job(job_id: JobId, principal: CurrentPrincipal, trainer: TrainerDep) -> JobPublic:
    """Stop the job, whatever its state; its compute is released. Cancelling an ended job
    changes nothing."""
    job = await trainer.call(
        "CancelJob", trainer_pb2.CancelJobRequest(owner_id=principal.user.id, id=job_id)
    )
    return JobPublic.from_proto(job)


@router.get(
    "/jobs/{job_id}/events",
    responses={**ERRORS(401, 404, 503), 200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    job_id: JobId,
    request: Request,
    principal: CurrentPrincipal,
    trainer: TrainerDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Live events as SSE: `state`, `progress` (step, loss, learning rate, tokens/s), `eval`
    (eval loss), `log` (lines), `checkpoint`, `evaluation` (base vs tuned). The stream ends
    after the job's final state. Reconnect with `Last-Event-ID` to resume."""
    job = await trainer.call(
        "GetJob", trainer_pb2.GetJobRequest(owner_id=principal.user.id, id=job_id)
    )
    reader = JobEventReader(request.app.state.redis)
    return StreamingResponse(
        _sse(reader, request, job_id, job.state, valid_event_id(last_event_id)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    reader: JobEventReader, request: Request, job_id: str, state: str, last_id: str | None
) -> AsyncIterator[str]:
    while not await request.is_disconnected():
        events = await reader.after(job_id, last_id, block_ms=BLOCK_MS)
        if not events:
            if state in ENDED:
                # Nothing more will come (or the stream expired): say how it ended, close.
                yield f"event: state\ndata: {json.dumps({'state': state})}\n\n"
                return
            yield ": keep-alive\n\n"
            continue
        for event in events:
            last_id = event.id
            yield f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.data)}\n\n"
            if event.type == "state" and event.data.get("state") in ENDED:
                return


@router.post("/jobs/{job_id}/callback", include_in_schema=False)
async def job_callback(
    job_id: JobId,
    body: CallbackBody,
    trainer: TrainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_job_token)],
) -> dict[str, bool]:
    """For training machines only: events in, "should I stop?" out. Authenticated by the
    job's own token (in its manifest), not by a user."""
    if credentials is None or not 16 <= len(credentials.credentials) <= 200:
        raise Unauthenticated("token_invalid", "A job token is required.")
    reply = await trainer.call(
        "ReportJobEvents",
        trainer_pb2.ReportJobEventsRequest(
            job_id=job_id,
            token=credentials.credentials,
            events=[
                trainer_pb2.ReportedEvent(
                    type=str(e.get("type", ""))[:32], data_json=json.dumps(e.get("data") or {})
                )
                for e in body.events
            ],
        ),
    )
    return {"cancel": reply.cancel}


@router.get("/models", response_model=ModelVersionsPublic, responses=ERRORS(401, 503))
async def list_model_versions(
    principal: CurrentPrincipal, trainer: TrainerDep
) -> ModelVersionsPublic:
    """Your fine-tuned models with their lineage (base model, dataset, method) and metrics."""
    reply = await trainer.call(
        "ListModelVersions", trainer_pb2.ListModelVersionsRequest(owner_id=principal.user.id)
    )
    data = [ModelVersionPublic.from_proto(v) for v in reply.versions]
    return ModelVersionsPublic(data=data, count=len(data))
