"""Answers from documents in OpenAI's wire format: RAG's tokens and citations become chat
completion chunks (streamed) or one completion (whole) that the official openai client reads,
citations included; a client that hangs up closes the gRPC stream and the partial answer is
reported as aborted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

from forgeline.v1 import rag_pb2
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from services.common.errors import Unavailable
from services.gateway.grounded_chat import (
    GroundedStream,
    Reply,
    answer_request,
    as_chunks,
    completion,
    gather,
)
from services.gateway.inference import Upstream
from services.gateway.stream_tap import Outcome

HIT = rag_pb2.Hit(
    kb_id="kb1", document="handbook.txt", key="u/kbs/kb1/handbook.txt", page_start=0,
    page_end=0, text="Every employee gets 27 days of paid holiday per year.",
)  # fmt: skip


def _events(*tokens: str, fail: bool = False) -> list[rag_pb2.AnswerEvent]:
    events = [rag_pb2.AnswerEvent(token=t) for t in tokens]
    if not fail:
        events.append(rag_pb2.AnswerEvent(citation=rag_pb2.Citation(number=1, hit=HIT)))
        events.append(rag_pb2.AnswerEvent(done=True))
    return events


class FakeCall:
    """RAG's answer stream: events, then optionally a failure; remembers being closed."""

    def __init__(
        self, events: list[rag_pb2.AnswerEvent], *, fail: bool = False, hang: bool = False
    ) -> None:
        self.events = events
        self.fail = fail
        self.hang = hang
        self.closed = False

    async def stream(self) -> AsyncGenerator[rag_pb2.AnswerEvent, None]:
        try:
            for event in self.events:
                yield event
            if self.hang:
                await asyncio.sleep(3600)
            if self.fail:
                raise Unavailable("model_unavailable", "The model's endpoint failed.")
        finally:
            self.closed = True


def _data(body: bytes) -> list[str]:
    return [block[6:] for block in body.decode().split("\n\n") if block.startswith("data: ")]


async def _collect(call: FakeCall) -> tuple[list[str], Outcome]:
    outcome = Outcome(aborted=True)
    pieces = [p async for p in as_chunks(call.stream(), Reply("chatcmpl-1", 1, "tutor"), outcome)]
    return _data(b"".join(pieces)), outcome


def test_streamed_tokens_become_chunks_with_citations_last() -> None:
    data, outcome = asyncio.run(_collect(FakeCall(_events("Twenty", "-seven", " days [1]."))))
    assert data[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(d)) for d in data[:-1]]
    assert all(c.object == "chat.completion.chunk" and c.model == "tutor" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Twenty-seven days [1]."
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    citations = (last.model_extra or {})["citations"]
    assert citations == [
        {
            "number": 1, "kb_id": "kb1", "document": "handbook.txt",
            "key": "u/kbs/kb1/handbook.txt", "page_start": 1, "page_end": 1, "pages": "p. 1",
            "snippet": "Every employee gets 27 days of paid holiday per year.",
        }
    ]  # fmt: skip
    assert not outcome.aborted and outcome.text == text and outcome.citations == citations
    assert outcome.completion_tokens == 3


def test_a_failure_mid_stream_is_an_error_event_then_done() -> None:
    data, outcome = asyncio.run(_collect(FakeCall(_events("Twenty", fail=True), fail=True)))
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])["error"]
    assert error["code"] == "model_unavailable" and error["type"] == "server_error"
    assert outcome.aborted and outcome.text == "Twenty"


def test_a_whole_answer_is_one_completion_the_openai_client_reads() -> None:
    call = FakeCall(_events("27", " days [1]."))
    outcome = Outcome(aborted=True)
    asyncio.run(gather(call.stream(), outcome))
    body = completion(Reply("chatcmpl-1", 1, "tutor"), outcome.text, outcome.citations)
    parsed = ChatCompletion.model_validate(json.loads(json.dumps(body)))
    assert parsed.choices[0].message.content == "27 days [1]."
    assert (parsed.model_extra or {})["citations"][0]["document"] == "handbook.txt"
    assert call.closed and not outcome.aborted


def test_a_client_hanging_up_closes_the_answer_stream_and_reports_the_partial_answer() -> None:
    async def run() -> tuple[FakeCall, list[Outcome]]:
        call = FakeCall(_events("Twenty", fail=True), hang=True)
        reported: list[Outcome] = []

        async def on_outcome(outcome: Outcome) -> None:
            reported.append(outcome)

        response = GroundedStream(call.stream(), Reply("c", 1, "tutor"), on_outcome)
        sent: list[dict[str, Any]] = []
        disconnect = asyncio.Event()

        async def send(message: Any) -> None:
            sent.append(message)
            if message.get("body", b"").count(b"Twenty"):
                disconnect.set()  # the client hangs up after the first token

        async def receive() -> Any:
            await disconnect.wait()
            return {"type": "http.disconnect"}

        scope = {"type": "http", "asgi": {"spec_version": "2.3"}}
        await asyncio.wait_for(response(scope, receive, send), timeout=5)
        return call, reported

    call, reported = asyncio.run(run())
    assert call.closed  # the gRPC call was cancelled
    assert len(reported) == 1 and reported[0].aborted and reported[0].text == "Twenty"


def test_the_answer_request_names_the_deployment_and_the_last_question() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "How many days?"}]},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
    }
    upstream = Upstream("dep", "http://127.0.0.1:9/v1", "tutor-served", "secret")
    request = answer_request("owner", ["kb1"], body, upstream)
    assert request.question == "How many days?"
    assert (request.base_url, request.model, request.api_key) == (
        "http://127.0.0.1:9/v1", "tutor-served", "secret",
    )  # fmt: skip
    assert list(request.kb_ids) == ["kb1"] and request.max_tokens == 64
