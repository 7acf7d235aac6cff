"""The chat features of /v1/chat/completions against the session's one real deployment
(`deployed`; test_deployments.py runs these, so no second vLLM server starts): prompt
templates, answers from documents with citations, and chat history recorded by `chat_id`."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema
import openai
import pytest

from tests.factories import SignedInUser, make_user
from tests.integration.conftest import Stack
from tests.integration.kb_helpers import create_kb, upload, wait_for_documents

if TYPE_CHECKING:
    from tests.integration.deployment_helpers import Deployed

TOWER = (
    "The Eiffel Tower in Paris was finished in 1889. It is 330 metres tall and was the "
    "tallest structure in the world for 41 years."
)
LANDMARK = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 20},
        "year": {"type": "integer"},
    },
    "required": ["city", "year"],
    "additionalProperties": False,
}
FACTS = (
    b"Company handbook.\n\nEvery employee gets 27 days of paid holiday per year. "
    b"The office is closed on the first Monday of August."
)
OTHER = b"Travel policy.\n\nTrains are preferred over planes for trips under 500 km."
QUESTION = "How many days of paid holiday does an employee get?"


def summarise_and_extract(stack: Stack, deployed: Deployed) -> None:
    ai = deployed.openai(stack.url)
    summary = ai.chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": TOWER}],
        max_tokens=48,
        temperature=0,
        extra_body={"template": "summarise", "template_options": {"length": "short"}},
    )
    assert (summary.choices[0].message.content or "").strip()

    extracted = ai.chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": TOWER}],
        max_tokens=96,
        temperature=0,
        extra_body={
            "template": "extract",
            "template_options": {"schema": LANDMARK, "name": "landmark"},
        },
    )
    content = extracted.choices[0].message.content or ""
    data = json.loads(content)  # guided decoding: always JSON, even from a tiny model
    jsonschema.validate(data, LANDMARK)
    assert extracted.choices[0].finish_reason == "stop"


def _chat(client: httpx.Client, user: SignedInUser) -> dict[str, Any]:
    response = client.post("/api/v1/chats", json={}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _messages(
    client: httpx.Client, user: SignedInUser, chat_id: str, count: int
) -> list[dict[str, Any]]:
    """The chat's messages once there are `count` (a streamed answer is stored just after
    the stream ends)."""
    deadline = time.monotonic() + 15
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/chats/{chat_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        messages = response.json()["messages"]
        if len(messages) >= count:
            return messages
        time.sleep(0.2)
    raise AssertionError(f"expected {count} messages, got {messages}")


def answer_from_doc(stack: Stack, client: httpx.Client, deployed: Deployed) -> None:
    user = deployed.user
    kb = create_kb(client, user, "handbook")
    upload(client, user, kb["id"], {"handbook.txt": FACTS, "travel.txt": OTHER})
    wait_for_documents(
        client,
        user,
        kb["id"],
        lambda d: len(d) == 2 and all(x["state"] == "indexed" for x in d.values()),
    )
    ai = deployed.openai(stack.url)
    question = [{"role": "user", "content": QUESTION}]

    whole = ai.chat.completions.create(
        model=deployed.name,
        messages=question,  # type: ignore[arg-type]
        max_tokens=48,
        temperature=0,
        extra_body={"answer_from_doc": True, "knowledge_base": kb["id"]},
    )
    assert whole.object == "chat.completion" and whole.model == deployed.name
    assert (whole.choices[0].message.content or "").strip()
    citations = (whole.model_extra or {})["citations"]
    assert citations[0]["document"] == "handbook.txt" and citations[0]["number"] == 1
    assert citations[0]["kb_id"] == kb["id"] and citations[0]["page_start"] == 1
    assert "27 days" in citations[0]["snippet"]

    chat = _chat(client, user)
    stream = ai.chat.completions.create(
        model=deployed.name,
        messages=question,  # type: ignore[arg-type]
        max_tokens=48,
        temperature=0,
        stream=True,
        extra_body={"answer_from_doc": True, "knowledge_base": [kb["id"]], "chat_id": chat["id"]},
    )
    chunks = list(stream)
    assert len(chunks) > 3  # token by token
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    streamed_citations = (last.model_extra or {})["citations"]
    assert streamed_citations[0]["document"] == "handbook.txt"

    stored = _messages(client, user, chat["id"], 2)
    assert [(m["role"], m["content"]) for m in stored] == [("user", QUESTION), ("assistant", text)]
    assert stored[1]["citations"][0]["document"] == "handbook.txt"
    assert stored[1]["status"] == "complete"

    # Another user's knowledge base does not exist for this caller.
    theirs = create_kb(client, make_user(client), "theirs")
    with pytest.raises(openai.NotFoundError) as caught:
        ai.chat.completions.create(
            model=deployed.name,
            messages=question,  # type: ignore[arg-type]
            max_tokens=8,
            extra_body={"answer_from_doc": True, "knowledge_base": theirs["id"]},
        )
    assert caught.value.code == "kb_not_found"


def chat_history(stack: Stack, client: httpx.Client, deployed: Deployed) -> None:
    user = deployed.user
    ai = deployed.openai(stack.url)
    chat = _chat(client, user)
    reply = ai.chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": "What colour is the sky?"}],
        max_tokens=16,
        temperature=0,
        extra_body={
            "chat_id": chat["id"],
            "template": "qa",
            "template_options": {"text": "The sky is blue."},
        },
    )
    answer = reply.choices[0].message.content or ""
    stored = _messages(client, user, chat["id"], 2)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "What colour is the sky?"),
        ("assistant", answer),
    ]
    assert stored[1]["template"] == "qa" and stored[1]["model"] == deployed.name
    assert stored[1]["completion_tokens"] > 0

    # A stream the client breaks off is stored as far as it got, marked stopped.
    stream = ai.chat.completions.create(
        model=deployed.name,
        messages=[{"role": "user", "content": "Write a very long story about the sea."}],
        max_tokens=512,
        stream=True,
        extra_body={"chat_id": chat["id"], "ignore_eos": True},
    )
    for count, _ in enumerate(stream, start=1):
        if count == 4:
            break
    stream.close()
    stored = _messages(client, user, chat["id"], 4)
    assert stored[2]["content"] == "Write a very long story about the sea."
    assert stored[3]["role"] == "assistant" and stored[3]["status"] == "stopped"
    assert stored[3]["content"]

    # Another user's chat does not exist for this caller: nothing is generated.
    other = make_user(client)
    theirs = _chat(client, other)
    with pytest.raises(openai.NotFoundError) as caught:
        ai.chat.completions.create(
            model=deployed.name,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
            extra_body={"chat_id": theirs["id"]},
        )
    assert caught.value.code == "chat_not_found"
    assert (
        client.get(f"/api/v1/chats/{theirs['id']}", headers=other.headers).json()["messages"] == []
    )
    assert client.get(f"/api/v1/chats/{theirs['id']}", headers=user.headers).status_code == 404
