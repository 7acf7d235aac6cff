"""Per-key rate limits and the usage API through the real platform, on both databases.

No model server is needed: the limit is checked before `model` is resolved, and every call
let through counts, whatever becomes of it (here: 404 `model_not_found`). The token counts
of real generations are checked in test_deployments.py, beside its vLLM deployment."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.factories import SignedInUser, make_api_key, make_user
from tests.integration.conftest import Stack

# Usage is summed and grouped by the database (tests/README.md).
pytestmark = pytest.mark.both_databases


def create_key(client: httpx.Client, user: SignedInUser, **fields: object) -> httpx.Response:
    return client.post("/api/v1/api-keys", json={"name": "limited", **fields}, headers=user.headers)


def call(stack: Stack, key: str) -> None:
    openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0).chat.completions.create(
        model="no-such-model", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )


def test_a_key_with_its_own_limit_gets_429_and_another_key_does_not(
    stack: Stack, client: httpx.Client, user: SignedInUser
) -> None:
    created = create_key(client, user, requests_per_minute=2)
    assert created.status_code == 201, created.text
    limited = created.json()
    assert limited["requests_per_minute"] == 2 and limited["tokens_per_minute"] is None
    listed = client.get("/api/v1/api-keys", headers=user.headers).json()["data"]
    assert [k["requests_per_minute"] for k in listed if k["id"] == limited["id"]] == [2]
    other_key = make_api_key(client, user, "unlimited")["key"]

    for _ in range(2):
        with pytest.raises(openai.NotFoundError) as missing:
            call(stack, limited["key"])
        assert missing.value.code == "model_not_found"
    with pytest.raises(openai.RateLimitError) as caught:
        call(stack, limited["key"])
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "rate_limit_error"
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 120
    # The raw answer is OpenAI's error envelope too.
    raw = client.post(
        "/v1/completions",
        json={"model": "no-such-model", "prompt": "hi"},
        headers={"Authorization": f"Bearer {limited['key']}"},
    )
    assert raw.status_code == 429 and raw.headers["Retry-After"]
    assert raw.json()["error"]["code"] == "rate_limit_exceeded"

    # Another key of the same user, and the user's session, are not affected.
    for _ in range(3):
        with pytest.raises(openai.NotFoundError):
            call(stack, other_key)
    with pytest.raises(openai.NotFoundError):
        call(stack, user.access_token)
    # Listing models is not limited.
    models = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=limited["key"], max_retries=0)
    assert models.models.list().data == []


def test_key_limits_are_checked(client: httpx.Client, user: SignedInUser) -> None:
    too_high = create_key(client, user, requests_per_minute=1_000_000)
    assert too_high.status_code == 422
    assert too_high.json()["error"]["code"] == "rate_limit_too_high"
    for bad in (
        {"requests_per_minute": 0},
        {"tokens_per_minute": -5},
        {"requests_per_minute": "x"},
    ):
        response = create_key(client, user, **bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "invalid_request"
    tokens = create_key(client, user, tokens_per_minute=5000)
    assert tokens.status_code == 201 and tokens.json()["tokens_per_minute"] == 5000


def test_usage_is_the_callers_own_and_admins_see_anyones(
    stack: Stack, client: httpx.Client, user: SignedInUser
) -> None:
    empty = client.get("/api/v1/usage", headers=user.headers)
    assert empty.status_code == 200, empty.text
    report = empty.json()
    assert report["totals"] == {
        "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "aborted": 0,
    }  # fmt: skip
    assert report["by_deployment"] == report["by_api_key"] == report["by_day"] == []
    assert report["start"] < report["end"]

    assert client.get("/api/v1/usage").status_code == 401
    for params, code in (
        ({"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, "invalid_time_range"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "time_range_too_long"),
        ({"start": "1900-01-01T00:00:00Z"}, "invalid_time_range"),
        ({"start": "yesterday"}, "invalid_request"),
    ):
        response = client.get("/api/v1/usage", params=params, headers=user.headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["code"] == code

    # Only an administrator sees another user's usage.
    other = make_user(client)
    theirs = f"/api/v1/admin/users/{user.id}/usage"
    denied = client.get(theirs, headers=other.headers)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "admin_required"
    seen = client.get(theirs, headers=stack.admin.headers)
    assert seen.status_code == 200 and seen.json()["totals"]["requests"] == 0
    missing = client.get("/api/v1/admin/users/nobody/usage", headers=stack.admin.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "user_not_found"
