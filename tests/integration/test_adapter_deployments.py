"""LoRA adapter deployments through the real platform: the session's two versions fine-tuned
on the bundled SmolLM2 (the `trained_versions` fixture), served as base + adapters by ONE
vLLM server (`--enable-lora`), each adapter answering to its own `model` through the
gateway's `/v1`, with the official openai client. A server killed outright is restarted by
the health monitor with both adapters, and its engine processes are cleaned up; a stop ends
the server and both adapters, leaving no process (these two are asserted here for every
deployment: test_deployments.py shares one deployment across its tests and must not kill it).

vLLM runs on the SQLite stack only, like test_deployments.py; the refusals run on both.
"""

from __future__ import annotations

import secrets
import signal
from typing import Any

import httpx
import openai
import pytest

from tests.factories import SignedInUser, make_user
from tests.integration.conftest import Stack
from tests.integration.deployment_helpers import (
    BUNDLED,
    gone,
    server_root,
    server_tree,
    wait_state,
)
from tests.integration.job_helpers import TrainedVersions

# Trains, serves or starts platforms: runs after the rest of the folder (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.mark.both_databases
def test_what_cannot_be_served_as_an_adapter_is_refused(
    client: httpx.Client, user: SignedInUser
) -> None:
    """Runs on both databases: nothing here starts a server."""
    for body, status, code in (
        ({"base_model": BUNDLED, "weights": "adapter"}, 422, "adapter_needs_model_version"),
        (
            {"base_model": BUNDLED, "extra_adapters": [{"model_version_id": "0" * 32}]},
            422,
            "extra_adapters_need_adapter_weights",
        ),
        ({"model_version_id": "0" * 32, "weights": "adapter"}, 404, "model_version_not_found"),
        ({"model_version_id": "0" * 32, "weights": "lora"}, 422, "invalid_request"),
    ):
        response = client.post("/api/v1/deployments", json=body, headers=user.headers)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["message"], (body, error)
    assert client.get("/api/v1/deployments", headers=user.headers).json()["count"] == 0


def test_two_adapters_answer_from_one_server(
    stack: Stack, client: httpx.Client, trained_versions: TrainedVersions
) -> None:
    user, (first, second) = trained_versions.user, trained_versions.versions
    suffix = secrets.token_hex(3)
    tutor, poet = f"tutor-{suffix}", f"poet-{suffix}"

    def create(**body: Any) -> httpx.Response:
        return client.post("/api/v1/deployments", json=body, headers=user.headers)

    refused = create(
        model_version_id=first, weights="adapter", extra_adapters=[{"model_version_id": first}]
    )
    assert refused.json()["error"]["code"] == "duplicate_adapter", refused.text
    other = make_user(client)
    borrowed = client.post(
        "/api/v1/deployments",
        json={"model_version_id": first, "weights": "adapter"},
        headers=other.headers,
    )
    assert borrowed.status_code == 404
    assert borrowed.json()["error"]["code"] == "model_version_not_found"

    created = create(
        model_version_id=first,
        weights="adapter",
        name=tutor,
        extra_adapters=[{"model_version_id": second, "name": poet}],
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["weights"] == "adapter" and body["name"] == tutor
    assert body["adapters"] == [
        {"model_version_id": first, "name": tutor},
        {"model_version_id": second, "name": poet},
    ]
    taken = create(model_version_id=second, weights="adapter", name=poet)
    assert taken.status_code == 422 and taken.json()["error"]["code"] == "deployment_name_taken"
    deployment_id = body["id"]
    ready = wait_state(client, user, deployment_id, {"ready", "failed"}, timeout=900)
    assert ready["state"] == "ready", ready

    # One server carries both adapters; the base model answers to no caller's name.
    tree = server_tree(deployment_id)
    argv = tree[0].cmdline()
    assert "--enable-lora" in argv and argv[argv.index("--max-loras") + 1] == "2"
    assert argv[argv.index("--served-model-name") + 1] == "forgeline/base"

    api = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=trained_versions.key, max_retries=0)
    assert sorted(m.id for m in api.models.list().data) == sorted([tutor, poet])
    assert api.models.retrieve(poet).id == poet

    def ask(model: str) -> str:
        reply = api.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "What is 2 + 3?"}],
            max_tokens=8,
            temperature=0,
        )
        assert reply.model == (poet if model == poet else tutor)
        return reply.choices[0].message.content or ""

    assert ask(tutor).strip() and ask(poet).strip()
    assert ask(deployment_id).strip()  # the id names the first adapter
    with pytest.raises(openai.NotFoundError):
        ask("forgeline/base")

    # Killed outright: the restarted server loads both adapters again.
    tree[0].send_signal(signal.SIGKILL)
    starting = wait_state(client, user, deployment_id, {"starting", "failed"}, timeout=30)
    assert starting["state"] == "starting" and starting["restarts"] == 1, starting
    again = wait_state(client, user, deployment_id, {"ready", "failed"}, timeout=600)
    assert again["state"] == "ready" and again["restarts"] == 1, again
    # The killed server's engine processes (which outlive their parent) were cleaned up.
    assert gone(tree) == []
    assert ask(tutor).strip() and ask(poet).strip()

    # A stop ends the server and both adapters with it.
    tree = server_tree(deployment_id)
    stopping = client.post(f"/api/v1/deployments/{deployment_id}/stop", headers=user.headers)
    assert stopping.status_code == 200
    assert stopping.json()["state"] in {"stopping", "stopped"}
    assert wait_state(client, user, deployment_id, {"stopped"}, timeout=60)["state"] == "stopped"
    assert gone(tree) == []
    assert server_root(deployment_id) is None
    assert api.models.list().data == []
    for model in (tutor, poet):
        with pytest.raises(openai.APIStatusError) as caught:
            ask(model)
        assert caught.value.status_code == 503
        assert caught.value.code == "deployment_not_ready"
