"""REST models for usage accounting (requests and tokens on the OpenAI-compatible API)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from forgeline.v1 import auth_pb2, deployer_pb2
from pydantic import BaseModel, Field

from services.gateway.schemas import _dt


class UsageCounts(BaseModel):
    requests: int = Field(description="Generations answered (streamed or not).")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    aborted: int = Field(
        description="Generations broken off before the end (the client left, or the server "
        "failed); their tokens up to that point are counted."
    )

    @classmethod
    def from_proto(cls, c: deployer_pb2.UsageCounts) -> UsageCounts:
        return cls(**_counts(c))


def _counts(c: deployer_pb2.UsageCounts) -> dict[str, int]:
    return {
        "requests": c.requests,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
        "aborted": c.aborted,
    }


class DeploymentUsage(UsageCounts):
    deployment_id: str
    name: str | None = Field(description="The deployment's name (null once it is deleted).")


class ApiKeyUsage(UsageCounts):
    kind: Literal["api_key", "session"] = Field(
        description="An API key, or your signed-in sessions (the web client) together."
    )
    api_key_id: str | None
    api_key_name: str | None
    api_key_prefix: str | None


class DayUsage(UsageCounts):
    day: date = Field(description="The UTC day.")


class UsageReport(BaseModel):
    """Usage of the OpenAI-compatible API (`/v1`) in [start, end), counted per UTC hour."""

    start: datetime
    end: datetime
    totals: UsageCounts
    by_deployment: list[DeploymentUsage]
    by_api_key: list[ApiKeyUsage]
    by_day: list[DayUsage]

    @classmethod
    def build(cls, report: deployer_pb2.UsageReport, keys: list[auth_pb2.ApiKey]) -> UsageReport:
        known = {k.id: k for k in keys}
        by_key: list[ApiKeyUsage] = []
        sessions = deployer_pb2.UsageCounts()
        for group in report.by_credential:
            key = known.get(group.key)
            if key is None:  # a session id: all of the user's sessions make one line
                for field in ("requests", "prompt_tokens", "completion_tokens", "aborted"):
                    setattr(
                        sessions, field, getattr(sessions, field) + getattr(group.counts, field)
                    )
                continue
            by_key.append(
                ApiKeyUsage(
                    kind="api_key",
                    api_key_id=key.id,
                    api_key_name=key.name,
                    api_key_prefix=key.prefix,
                    **_counts(group.counts),
                )
            )
        if sessions.requests or sessions.prompt_tokens or sessions.completion_tokens:
            by_key.append(
                ApiKeyUsage(
                    kind="session",
                    api_key_id=None,
                    api_key_name=None,
                    api_key_prefix=None,
                    **_counts(sessions),
                )
            )
        return cls(
            start=_dt(report.start, report.HasField("start")) or datetime.now(UTC),
            end=_dt(report.end, report.HasField("end")) or datetime.now(UTC),
            totals=UsageCounts.from_proto(report.totals),
            by_deployment=[
                DeploymentUsage(
                    deployment_id=g.key, name=g.deployment_name or None, **_counts(g.counts)
                )
                for g in report.by_deployment
            ],
            by_api_key=by_key,
            by_day=[
                DayUsage(day=date.fromisoformat(g.key), **_counts(g.counts)) for g in report.by_day
            ],
        )
