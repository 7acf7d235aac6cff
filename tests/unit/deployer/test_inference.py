"""The gateway's OpenAI-compatible plumbing: error shapes, the model cache, name lookup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import NotFound
from services.deployer.models import Deployment
from services.deployer.servicer import pick
from services.gateway.inference import (
    ModelCache,
    Upstream,
    error_type,
    is_openai_path,
    openai_error_body,
)


def test_errors_have_openai_s_shape() -> None:
    body = openai_error_body(404, "model_not_found", "No such model.")
    assert body == {
        "error": {
            "message": "No such model.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    assert error_type(401) == "authentication_error"
    assert error_type(403) == "permission_error"
    assert error_type(422) == "invalid_request_error"
    assert error_type(429) == "rate_limit_error"
    assert error_type(503) == "server_error"


def test_only_v1_paths_are_openai_ones() -> None:
    assert is_openai_path("/v1/chat/completions")
    assert is_openai_path("/v1")
    assert not is_openai_path("/v1beta")
    assert not is_openai_path("/api/v1/deployments")


def test_the_cache_expires_and_forgets() -> None:
    now = [0.0]
    cache = ModelCache(5, clock=lambda: now[0])
    upstream = Upstream("d1", "http://127.0.0.1:9/v1", "tutor")
    cache.put("alice", "tutor", upstream)
    assert cache.get("alice", "tutor") == upstream
    assert cache.get("bob", "tutor") is None  # per owner
    now[0] = 5.0
    assert cache.get("alice", "tutor") is None
    cache.put("alice", "tutor", upstream)
    cache.forget("alice", "tutor")
    assert cache.get("alice", "tutor") is None


def test_resolve_asks_once_within_the_ttl_and_caches_no_failure() -> None:
    cache = ModelCache(5)
    asked: list[str] = []
    upstream = Upstream("d1", "http://127.0.0.1:9/v1", "tutor")

    async def lookup() -> Upstream:
        asked.append("x")
        return upstream

    async def failing() -> Upstream:
        asked.append("fail")
        raise NotFound("model_not_found", "no")

    async def scenario() -> None:
        assert await cache.resolve("alice", "tutor", lookup) == upstream
        assert await cache.resolve("alice", "tutor", lookup) == upstream
        for _ in range(2):
            with pytest.raises(NotFound):
                await cache.resolve("alice", "other", failing)

    asyncio.run(scenario())
    assert asked == ["x", "fail", "fail"]


def test_a_model_names_the_newest_live_deployment_by_name_or_id() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)

    def row(name: str, state: str, minutes: int) -> Deployment:
        return Deployment(
            owner_id="o", name=name, state=state, created_at=base + timedelta(minutes=minutes)
        )

    old_stopped = row("tutor", "stopped", 10)
    live = row("tutor", "ready", 0)
    assert pick([old_stopped, live], "tutor") is live
    newer_stopped = row("tutor", "stopped", 20)
    assert pick([old_stopped, newer_stopped], "tutor") is newer_stopped
    assert pick([live], live.id) is live
    assert pick([live], "nothing") is None
