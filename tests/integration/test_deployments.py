"""Deployments through the real platform: the bundled SmolLM2 served by vLLM (CPU) from the
engine environment, called with the official openai client through the gateway's `/v1`.

One deployment is started for the session and shared (`deployed`, conftest.py; vLLM takes
about a minute to start here): it answers chat and completions, streamed and not, and a
client that hangs up mid-stream makes vLLM abort the generation. A server killed outright and
restarted by the health monitor, and a stop that leaves no process behind, are asserted in
test_adapter_deployments.py, on a deployment of its own (killing or stopping this one would
make every later test depend on the order). The vLLM-heavy tests run on the SQLite stack only
(the database does not change what they exercise); the errors run on both.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.factories import SignedInUser, make_api_key, make_user
from tests.integration import chat_features
from tests.integration.conftest import Stack
from tests.integration.deployment_helpers import BUNDLED, Deployed, metrics, server_root

# Trains, serves or starts platforms: runs after the rest of the folder (tests/conftest.py).
pytestmark = pytest.mark.slow


def test_a_deployment_is_listed_as_an_openai_model(
    stack: Stack, client: httpx.Client, deployed: Deployed
) -> None:
    models = deployed.openai(stack.url).models.list()
    assert [m.id for m in models.data] == [deployed.name]
    listed = client.get("/api/v1/deployments", headers=deployed.user.headers).json()
    assert [d["id"] for d in listed["data"]] == [deployed.id]
    logs = client.get(
        f"/api/v1/deployments/{deployed.id}/logs",
        params={"tail": 500},
        headers=deployed.user.headers,
    ).json()["lines"]
    assert any("Application startup complete" in line for line in logs), logs[-20:]


def test_the_local_server_answers_only_the_platform(deployed: Deployed) -> None:
    """A local vLLM listens on loopback, where every process of the machine can reach it: it
    has a key of its own, as a cloud node does, which only the gateway holds. The key is in
    the server's environment (owner-only), not on its command line, which `ps` shows to all."""
    root = server_root(deployed.id)
    assert root is not None
    port = root.cmdline()[root.cmdline().index("--port") + 1]
    assert "--api-key" not in root.cmdline()
    direct = f"http://127.0.0.1:{port}"
    for headers in ({}, {"Authorization": f"Bearer {deployed.key}"}):
        refused = httpx.get(f"{direct}/v1/models", headers=headers, timeout=10)
        assert refused.status_code == 401, refused.text
    refused = httpx.post(
        f"{direct}/v1/completions",
        json={"model": deployed.name, "prompt": "Hi", "max_tokens": 1},
        timeout=10,
    )
    assert refused.status_code == 401
    # The platform's health checks need no key.
    assert httpx.get(f"{direct}/health", timeout=10).status_code == 200


def test_chat_and_completions_through_the_openai_client(stack: Stack, deployed: Deployed) -> None:
    client = deployed.openai(stack.url)
    reply = client.chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.model == deployed.name
    assert (reply.choices[0].message.content or "").strip()

    stream = client.chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": "Count from one to five."}],
        max_tokens=12,
        temperature=0,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len([p for p in pieces if p]) > 3  # tokens arrived one by one
    assert "".join(pieces).strip()

    completion = client.completions.create(
        model=deployed.name, prompt="Once upon a time", max_tokens=8, temperature=0
    )
    assert completion.choices[0].text.strip()


def wait_usage(
    client: httpx.Client, user: SignedInUser, key_id: str, requests: int
) -> dict[str, Any]:
    """GET /usage for one key until it shows `requests` (a stream's outcome is taken just
    after its last byte went out, so it may lag the client by a moment)."""
    deadline = time.monotonic() + 20
    while True:
        report: dict[str, Any] = client.get(
            "/api/v1/usage", params={"api_key_id": key_id}, headers=user.headers
        ).json()
        if report["totals"]["requests"] >= requests or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


def test_usage_counts_what_the_answers_said(
    stack: Stack, client: httpx.Client, deployed: Deployed
) -> None:
    """After chat and completion calls, streamed and not, with a fresh key, GET /usage shows
    as many requests and the very token counts the answers' `usage` reported; only the user
    and an administrator see them."""
    key = make_api_key(client, deployed.user, "usage check")
    api = deployed.openai(stack.url, key=key["key"])
    messages: Any = [{"role": "user", "content": "Name a colour."}]
    answers = [
        api.chat.completions.create(model=deployed.name, messages=messages, max_tokens=6).usage,
        api.completions.create(model=deployed.name, prompt="Red, green and", max_tokens=5).usage,
        list(
            api.chat.completions.create(
                model=deployed.name, messages=messages, max_tokens=7, stream=True,
                stream_options={"include_usage": True},
            )
        )[-1].usage,
    ]  # fmt: skip
    assert all(a is not None for a in answers)
    report = wait_usage(client, deployed.user, key["id"], 3)
    totals = report["totals"]
    assert totals == {
        "requests": 3,
        "prompt_tokens": sum(a.prompt_tokens for a in answers if a),
        "completion_tokens": sum(a.completion_tokens for a in answers if a),
        "total_tokens": sum(a.total_tokens for a in answers if a),
        "aborted": 0,
    }, report
    [by_key] = report["by_api_key"]
    assert (by_key["kind"], by_key["api_key_id"], by_key["api_key_name"]) == (
        "api_key", key["id"], "usage check",
    )  # fmt: skip
    [by_deployment] = report["by_deployment"]
    assert (by_deployment["deployment_id"], by_deployment["name"]) == (deployed.id, deployed.name)
    assert by_deployment["requests"] == 3
    assert sum(d["requests"] for d in report["by_day"]) == 3

    # A stream that never asked for usage is counted all the same (the gateway asks).
    list(
        api.chat.completions.create(
            model=deployed.name, messages=messages, max_tokens=3, stream=True
        )
    )
    later = wait_usage(client, deployed.user, key["id"], 4)["totals"]
    assert later["requests"] == 4
    assert later["prompt_tokens"] - totals["prompt_tokens"] == answers[0].prompt_tokens  # type: ignore[union-attr]
    assert 1 <= later["completion_tokens"] - totals["completion_tokens"] <= 3

    admin_view = client.get(
        f"/api/v1/admin/users/{deployed.user.id}/usage", params={"api_key_id": key["id"]},
        headers=stack.admin.headers,
    )  # fmt: skip
    assert admin_view.status_code == 200 and admin_view.json()["totals"] == later
    stranger = make_user(client)
    assert client.get("/api/v1/usage", headers=stranger.headers).json()["totals"]["requests"] == 0
    theirs = f"/api/v1/admin/users/{deployed.user.id}/usage"
    assert client.get(theirs, headers=stranger.headers).status_code == 403


def test_a_client_hanging_up_aborts_the_generation(stack: Stack, deployed: Deployed) -> None:
    root = server_root(deployed.id)
    assert root is not None
    before = metrics(root)
    stream = deployed.openai(stack.url).chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": "Write a very long story about the sea."}],
        max_tokens=512,
        stream=True,
        extra_body={"ignore_eos": True},  # only an abort ends it before 512 tokens
    )
    for count, _ in enumerate(stream, start=1):
        if count == 2:
            break
    stream.close()
    started = time.monotonic()
    # At ~20 tokens/s here, 512 tokens take ~25 s: the request must end long before that.
    while metrics(root).get("vllm:num_requests_running", 1) > 0:
        assert time.monotonic() - started < 10, "vLLM kept generating after the client left"
        time.sleep(0.2)
    time.sleep(1)
    after = metrics(root)
    generated = after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
    assert generated < 512, generated
    # It did not run to its length limit.
    assert after.get("vllm:request_success_total:length") == before.get(
        "vllm:request_success_total:length"
    )


def test_errors_in_openai_shape(stack: Stack, client: httpx.Client, deployed: Deployed) -> None:
    url = stack.url
    for headers in ({}, {"Authorization": "Bearer flk_nope_notakey"}):
        response = client.post(
            "/v1/chat/completions",
            json={"model": deployed.name, "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
        )
        assert response.status_code == 401
        error = response.json()["error"]
        assert set(error) >= {"message", "type", "code"} and error["message"]
    with pytest.raises(openai.AuthenticationError):
        deployed.openai(url, key="flk_wrong_key").models.list()

    # Another user cannot see or call the deployment: it does not exist for them.
    other = make_user(client)
    other_key = make_api_key(client, other)["key"]
    with pytest.raises(openai.NotFoundError) as caught:
        deployed.openai(url, key=other_key).chat.completions.create(
            model=deployed.name, messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    assert caught.value.code == "model_not_found"
    assert deployed.openai(url, key=other_key).models.list().data == []
    theirs = f"/api/v1/deployments/{deployed.id}"
    assert client.get(theirs, headers=other.headers).status_code == 404
    assert (
        client.post(f"/api/v1/deployments/{deployed.id}/stop", headers=other.headers).status_code
        == 404
    )
    assert (
        client.get(f"/api/v1/deployments/{deployed.id}/logs", headers=other.headers).status_code
        == 404
    )

    response = client.post(
        "/v1/chat/completions",
        json={
            "model": deployed.name,
            "messages": [{"role": "user", "content": "hi"}],
            "answer_from_doc": True,
        },
        headers={"Authorization": f"Bearer {deployed.key}"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "knowledge_base_required"


# --- templates, answers from documents, chat history (chat_features.py) ------------------


def test_summarise_and_extract_templates(stack: Stack, deployed: Deployed) -> None:
    chat_features.summarise_and_extract(stack, deployed)


def test_answer_from_doc_whole_and_streamed_into_a_chat(
    stack: Stack, client: httpx.Client, deployed: Deployed
) -> None:
    chat_features.answer_from_doc(stack, client, deployed)


def test_a_chat_id_records_question_and_answer_and_stays_private(
    stack: Stack, client: httpx.Client, deployed: Deployed
) -> None:
    chat_features.chat_history(stack, client, deployed)


@pytest.mark.both_databases
def test_deployment_requests_are_checked(client: httpx.Client, user: SignedInUser) -> None:
    """Runs on both databases: nothing here starts a server."""
    for body, status, code in (
        ({"base_model": BUNDLED, "target": "aws"}, 422, "credential_required"),
        ({"base_model": BUNDLED, "target": "gcp"}, 422, "credential_required"),
        ({"base_model": "no-such-model"}, 404, "unknown_base_model"),
        ({"model_version_id": "0" * 32}, 404, "model_version_not_found"),
        ({"base_model": BUNDLED, "name": "bad name!"}, 422, "invalid_deployment_name"),
        ({}, 422, "invalid_request"),
    ):
        response = client.post("/api/v1/deployments", json=body, headers=user.headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code, (body, response.text)
    assert client.get("/api/v1/deployments/" + "0" * 32, headers=user.headers).status_code == 404
    assert client.get("/v1/models").status_code == 401
    response = client.post(
        "/v1/chat/completions",
        json={"model": "nothing-here", "messages": []},
        headers=user.headers,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert response.json()["error"]["type"] == "invalid_request_error"
