"""One trace spans gateway -> auth; logs are JSON and never carry a secret."""

from __future__ import annotations

import json
import time

import httpx

from tests.factories import make_api_key, make_user
from tests.integration.conftest import Stack
from tests.servers import wait_until


def test_one_trace_spans_gateway_and_auth(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)  # a fresh token: the gateway must ask auth about it
    response = client.get("/api/v1/me", headers=user.headers)
    assert response.status_code == 200

    def linked_spans() -> bool:
        spans = stack.spans.spans()
        auth_spans = [s for s in spans if s.service == "auth" and s.name.endswith("/ValidateToken")]
        gateway_ids = {(s.trace_id, s.span_id) for s in spans if s.service == "gateway"}
        return any((s.trace_id, s.parent_span_id) in gateway_ids for s in auth_spans)

    wait_until(linked_spans, timeout=15, what="a gateway span parenting an auth span")
    spans = stack.spans.spans()
    validate = next(
        s
        for s in spans
        if s.service == "auth"
        and s.name.endswith("/ValidateToken")
        and any(g.span_id == s.parent_span_id for g in spans if g.service == "gateway")
    )
    trace = [s for s in spans if s.trace_id == validate.trace_id]
    assert {s.service for s in trace} == {"gateway", "auth"}
    assert any(s.service == "gateway" and "/api/v1/me" in s.name for s in trace)


def test_logs_are_json_and_hold_no_secrets(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)
    key = make_api_key(client, user)["key"]
    client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    ).json()
    client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})  # reuse: logged
    client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "wrong " + user.password}
    )
    time.sleep(0.5)

    logs = stack.platform.logs()
    secrets = [
        user.password,
        user.access_token,
        user.refresh_token,
        refreshed["access_token"],
        refreshed["refresh_token"],
        key,
        key.split("_")[-1],
    ]
    for secret in secrets:
        assert secret not in logs

    service_lines = [
        line.split(" | ", 1)[1]
        for line in stack.platform.log_path.read_text().splitlines()
        if line.strip().startswith(("auth |", "gateway |"))
    ]
    assert service_lines
    records = [json.loads(line) for line in service_lines]
    assert {r["service"] for r in records} == {"auth", "gateway"}
    assert any(r.get("path") == "/api/v1/me" and r.get("status") == 200 for r in records)
