"""Chat sessions for the web client's history, through the real platform on both databases:
create, list, read with messages, rename, append, delete; another user's chat does not exist
for them. The Forgeline fields of /v1/chat/completions that are refused before any model is
asked (templates, answer_from_doc) are checked here too; what needs a model runs with the
deployment in test_deployments.py."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import make_user
from tests.integration.conftest import Stack

# Chats are locked for appending and ordered by the database (tests/README.md).
pytestmark = pytest.mark.both_databases


def test_chat_sessions_are_stored_and_private(stack: Stack, client: httpx.Client) -> None:
    ann, bob = make_user(client), make_user(client)
    created = client.post("/api/v1/chats", json={}, headers=ann.headers)
    assert created.status_code == 201, created.text
    chat = created.json()
    assert chat["title"] == "" and chat["message_count"] == 0

    appended = client.post(
        f"/api/v1/chats/{chat['id']}/messages",
        json={
            "messages": [
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "Paris.", "model": "tutor"},
            ]
        },
        headers=ann.headers,
    )
    assert appended.status_code == 201, appended.text
    assert [m["role"] for m in appended.json()["data"]] == ["user", "assistant"]

    got = client.get(f"/api/v1/chats/{chat['id']}", headers=ann.headers).json()
    assert got["title"] == "What is the capital of France?"  # from the first question
    assert got["model"] == "tutor" and got["message_count"] == 2
    assert [(m["role"], m["content"], m["status"]) for m in got["messages"]] == [
        ("user", "What is the capital of France?", "complete"),
        ("assistant", "Paris.", "complete"),
    ]
    renamed = client.patch(
        f"/api/v1/chats/{chat['id']}", json={"title": "Geography"}, headers=ann.headers
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Geography"
    second = client.post("/api/v1/chats", json={"title": "Later"}, headers=ann.headers).json()
    listed = client.get("/api/v1/chats", headers=ann.headers).json()
    assert [c["id"] for c in listed["data"]] == [second["id"], chat["id"]]  # recent first
    assert "messages" not in listed["data"][0]

    # Another user: nothing of Ann's exists.
    assert client.get("/api/v1/chats", headers=bob.headers).json() == {"data": [], "count": 0}
    theirs = f"/api/v1/chats/{chat['id']}"
    for response in (
        client.get(theirs, headers=bob.headers),
        client.patch(theirs, json={"title": "mine"}, headers=bob.headers),
        client.delete(theirs, headers=bob.headers),
        client.post(
            f"{theirs}/messages",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers=bob.headers,
        ),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "chat_not_found"

    # Bad input, each with its code.
    for method, path, body, code in (
        ("PATCH", theirs, {"title": ""}, "invalid_request"),
        ("PATCH", theirs, {"title": "   "}, "invalid_chat_title"),
        ("POST", f"{theirs}/messages", {"messages": []}, "invalid_request"),
        ("POST", f"{theirs}/messages", {"messages": [{"role": "robot", "content": "x"}]},
         "invalid_request"),
    ):  # fmt: skip
        response = client.request(method, path, json=body, headers=ann.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == code

    assert client.delete(theirs, headers=ann.headers).status_code == 204
    assert client.get(theirs, headers=ann.headers).status_code == 404
    assert client.get("/api/v1/chats", headers=ann.headers).json()["count"] == 1
    assert client.get("/api/v1/chats").status_code == 401


def test_prompt_templates_are_listed_and_bad_fields_refused(
    stack: Stack, client: httpx.Client
) -> None:
    user = make_user(client)
    listed = client.get("/api/v1/prompt-templates", headers=user.headers)
    assert listed.status_code == 200
    templates = {t["name"]: t for t in listed.json()["data"]}
    assert set(templates) == {"summarise", "extract", "qa"}
    assert [o["name"] for o in templates["extract"]["options"]] == ["schema", "name"]

    messages = [{"role": "user", "content": "Ann is 31."}]
    for extra, code in (
        ({"template": "poem"}, "unknown_template"),
        ({"template": "extract"}, "schema_required"),
        ({"template": "extract", "template_options": {"schema": {"type": "nope"}}},
         "invalid_schema"),
        ({"answer_from_doc": True}, "knowledge_base_required"),
    ):  # fmt: skip
        response = client.post(
            "/v1/chat/completions",
            json={"model": "anything", "messages": messages, **extra},
            headers=user.headers,
        )
        assert response.status_code == 422, (extra, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["type"] == "invalid_request_error"
    response = client.post(
        "/v1/completions",
        json={"model": "anything", "prompt": "x", "template": "summarise"},
        headers=user.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "chat_completions_only"
