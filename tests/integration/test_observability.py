"""One trace spans gateway -> auth; logs are JSON and never carry a secret."""

from __future__ import annotations

import json
import secrets
import time

import httpx

from tests.factories import make_api_key, make_user
from tests.integration.conftest import Stack
from tests.servers import wait_until
from tests.servers.otlp import ReceivedSpan


def test_one_trace_spans_gateway_and_auth(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)  # a fresh token: the gateway must ask auth about it
    # The request carries its own trace id (W3C traceparent), so its spans are told apart
    # from those of every other request of the session.
    trace_id = secrets.token_hex(16)
    headers = {**user.headers, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200

    def trace() -> list[ReceivedSpan]:
        return [s for s in stack.spans.spans() if s.trace_id == trace_id]

    def linked_spans() -> bool:
        spans = trace()
        gateway_ids = {s.span_id for s in spans if s.service == "gateway"}
        return any(
            s.service == "auth"
            and s.name.endswith("/ValidateToken")
            and s.parent_span_id in gateway_ids
            for s in spans
        )

    wait_until(linked_spans, timeout=15, what="a gateway span parenting an auth span")
    spans = trace()
    assert {s.service for s in spans} == {"gateway", "auth"}
    assert any(s.service == "gateway" and "/api/v1/me" in s.name for s in spans)


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
        # All after "flk_<prefix>_": the random part may hold "_" itself, and what followed
        # its last one was now and then a letter or two that any log holds (a CI failure).
        key.split("_", 2)[2],
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
