"""Usage of the OpenAI-compatible API: your own (`GET /usage`); an administrator's view of
any user's is `GET /admin/users/{id}/usage` (routes/admin.py), built by `usage_report`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from forgeline.v1 import deployer_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field

from services.common.errors import InvalidInput
from services.common.timestamps import as_utc, to_timestamp
from services.gateway.clients import AuthClient, DeployerClient
from services.gateway.deps import AuthDep, CurrentPrincipal, DeployerDep
from services.gateway.openapi import ERRORS
from services.gateway.usage import UsageBatcher
from services.gateway.usage_schemas import UsageReport

router = APIRouter(tags=["usage"])
_EARLIEST, _LATEST = 2000, 2200


class UsageQuery(BaseModel):
    start: datetime | None = Field(
        None, description="From (inclusive, taken back to its hour); default: 30 days ago."
    )
    end: datetime | None = Field(None, description="Until (exclusive); default: now.")
    deployment_id: str | None = Field(None, max_length=32, description="Only this deployment.")
    api_key_id: str | None = Field(None, max_length=32, description="Only this API key.")


UsageParams = Annotated[UsageQuery, Query()]


def _stamp(name: str, value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    try:
        value = as_utc(value)
    except (OverflowError, ValueError):
        value = datetime.min.replace(tzinfo=UTC)
    if not _EARLIEST <= value.year < _LATEST:
        raise InvalidInput(
            "invalid_time_range", f"{name} must be a time between {_EARLIEST} and {_LATEST}."
        )
    return to_timestamp(value)


async def usage_report(
    request: Request,
    user_id: str,
    query: UsageQuery,
    auth: AuthClient,
    deployer: DeployerClient,
) -> UsageReport:
    # What this gateway has not sent yet is sent first: you see your last request at once.
    batcher: UsageBatcher = request.app.state.usage
    await batcher.flush()
    report = await deployer.call(
        "GetUsage",
        deployer_pb2.GetUsageRequest(
            owner_id=user_id,
            deployment_id=query.deployment_id or "",
            credential_id=query.api_key_id or "",
            start=_stamp("start", query.start),
            end=_stamp("end", query.end),
        ),
    )
    keys = await auth.list_api_keys(user_id)
    return UsageReport.build(report, list(keys.keys))


@router.get("/usage", response_model=UsageReport, responses=ERRORS(401, 422, 503))
async def my_usage(
    request: Request,
    query: UsageParams,
    principal: CurrentPrincipal,
    auth: AuthDep,
    deployer: DeployerDep,
) -> UsageReport:
    """Your requests and tokens on the OpenAI-compatible API (`/v1`), in total and per
    deployment, per API key (signed-in sessions together) and per UTC day."""
    return await usage_report(request, principal.user.id, query, auth, deployer)
