"""Answers from documents on the OpenAI-compatible chat API: `"answer_from_doc": true` with
`"knowledge_base": <id or [ids]>` on `/v1/chat/completions`.

The question (the conversation's last user message) goes to `RagService.Answer`, with the
caller's deployment as the model that writes the answer. RAG streams tokens, then citations;
here they become OpenAI's wire format so any OpenAI client reads them:

- whole: a `chat.completion` whose message is the answer, with an extra top-level field
  `citations` (`completion.model_extra["citations"]` in the official client);
- streamed: `chat.completion.chunk` events, one per token as it comes, then a last chunk with
  `finish_reason` and the `citations` field, then `data: [DONE]`. A failure after the first
  token is an `error` event (the client raises it) before `[DONE]`.

A citation is `{number, kb_id, document, key, page_start, page_end, pages, snippet}`:
`number` is the `[n]` in the answer, pages count from 1. A client that goes away cancels
the gRPC call, so RAG stops generating.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from forgeline.v1 import rag_pb2
from starlette.responses import Response

from services.common.errors import ForgelineError, InvalidInput
from services.common.logging import get_logger
from services.gateway.clients import RagClient
from services.gateway.inference import SSE_HEADERS, RelayedStream, Upstream, openai_error_body
from services.gateway.schemas import pages_label, snippet
from services.gateway.stream_tap import Outcome, OutcomeHook

log = get_logger(__name__)
MAX_KNOWLEDGE_BASES = 20
MAX_QUESTION_CHARS = 8000
DEFAULT_MAX_TOKENS = 512


def knowledge_base_ids(value: object) -> list[str]:
    """`knowledge_base`: one id, or a list of ids."""
    if value is None or value == "" or value == []:
        raise InvalidInput(
            "knowledge_base_required",
            "answer_from_doc needs the knowledge base to answer from: set 'knowledge_base' to "
            "its id, or to a list of ids.",
        )
    ids = [value] if isinstance(value, str) else value
    if (
        not isinstance(ids, list)
        or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids)
        or len(ids) > MAX_KNOWLEDGE_BASES
    ):
        raise InvalidInput(
            "invalid_knowledge_base",
            f"'knowledge_base' is a knowledge base id or a list of at most {MAX_KNOWLEDGE_BASES} "
            "ids.",
        )
    return list(dict.fromkeys(ids))


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(
            p["text"] for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )  # fmt: skip
    return ""


def last_user_text(messages: object) -> str:
    """The text of the conversation's last user message ("" if there is none)."""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text_of(message.get("content")).strip()
    return ""


def question_of(messages: object) -> str:
    """The conversation's last user message: what the documents must answer."""
    question = last_user_text(messages)
    if not question:
        raise InvalidInput(
            "question_required",
            "answer_from_doc answers the last user message: end 'messages' with a user "
            "message that asks something.",
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            "question_too_long", f"The question is at most {MAX_QUESTION_CHARS} characters."
        )
    return question


def answer_request(
    owner_id: str, kb_ids: list[str], body: dict[str, Any], upstream: Upstream
) -> rag_pb2.AnswerRequest:
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    temperature = body.get("temperature")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidInput("invalid_request", "max_tokens is a positive whole number.")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise InvalidInput("invalid_request", "temperature is a number from 0 to 2.")
    return rag_pb2.AnswerRequest(
        owner_id=owner_id,
        kb_ids=kb_ids,
        question=question_of(body.get("messages")),
        base_url=upstream.url,
        api_key=upstream.api_key,
        model=upstream.served_name,
        max_tokens=max_tokens,
        temperature=float(temperature or 0.0),
        platform_deployment=True,
    )


def citation_of(citation: rag_pb2.Citation) -> dict[str, Any]:
    hit = citation.hit
    return {
        "number": citation.number,
        "kb_id": hit.kb_id,
        "document": hit.document,
        "key": hit.key,
        "page_start": hit.page_start + 1,
        "page_end": max(hit.page_start, hit.page_end) + 1,
        "pages": pages_label(hit.page_start, hit.page_end),
        "snippet": snippet(hit.text),
    }


@dataclass(frozen=True)
class Reply:
    """What every chunk of one answer shares."""

    id: str
    created: int
    model: str  # the name the caller used

    @classmethod
    def new(cls, model: str) -> Reply:
        return cls(f"chatcmpl-{secrets.token_hex(12)}", int(time.time()), model)


def completion(reply: Reply, text: str, citations: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole `chat.completion`, citations in an extra field."""
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "citations": citations,
    }


def chunk(
    reply: Reply, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": reply.id,
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


def sse(payload: object) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


DONE = sse("[DONE]")


async def gather(
    events: AsyncGenerator[rag_pb2.AnswerEvent, None], outcome: Outcome
) -> None:  # fmt: skip
    """Read a whole answer into `outcome` (text, citations, finish)."""
    parts: list[str] = []
    try:
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "token":
                parts.append(event.token)
                outcome.completion_tokens += 1
            elif kind == "citation":
                outcome.citations.append(citation_of(event.citation))
            elif kind == "done":
                outcome.finish_reason = "stop"
                outcome.aborted = False
                break
    finally:
        outcome.text = "".join(parts)
        await events.aclose()


async def as_chunks(
    events: AsyncGenerator[rag_pb2.AnswerEvent, None], reply: Reply, outcome: Outcome
) -> AsyncIterator[bytes]:
    """AnswerEvents as OpenAI `chat.completion.chunk` events, adding up `outcome` as they
    pass. One chunk per token (about one model token each: completion_tokens counts them)."""
    parts: list[str] = []
    try:
        yield sse(chunk(reply, {"role": "assistant", "content": ""}))
        try:
            async for event in events:
                kind = event.WhichOneof("event")
                if kind == "token":
                    parts.append(event.token)
                    outcome.completion_tokens += 1
                    yield sse(chunk(reply, {"content": event.token}))
                elif kind == "citation":
                    outcome.citations.append(citation_of(event.citation))
                elif kind == "done":
                    break
        except ForgelineError as error:
            status = int(error.http_status)
            yield sse(openai_error_body(status, error.code, error.message))
            yield DONE
            return
        except Exception:
            log.exception("an answer from documents failed mid-stream")
            yield sse(openai_error_body(500, "internal_error", "Something went wrong on our side."))
            yield DONE
            return
        outcome.finish_reason = "stop"
        yield sse(chunk(reply, {}, "stop", citations=outcome.citations))
        outcome.aborted = False
        yield DONE
    finally:
        outcome.text = "".join(parts)


class GroundedStream(RelayedStream):
    """Stream an answer's chunks; when either side ends, close the gRPC call (a client that
    hangs up cancels it, and RAG stops generating), then report the outcome."""

    def __init__(
        self,
        events: AsyncGenerator[rag_pb2.AnswerEvent, None],
        reply: Reply,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self.events = events
        self.outcome = Outcome(aborted=True)  # until the last chunk is out
        self.on_outcome = on_outcome
        super().__init__(
            as_chunks(events, reply, self.outcome),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    async def finish(self) -> None:
        await self.events.aclose()  # cancels the gRPC call if it is still going
        if self.on_outcome is not None:
            await self.on_outcome(self.outcome)


async def answer(
    rag: RagClient,
    request: rag_pb2.AnswerRequest,
    *,
    model: str,
    streamed: bool,
    on_outcome: OutcomeHook,
    first: Callable[[], Awaitable[None]] | None = None,
) -> Response:
    """Answer from the documents in OpenAI's wire format. A failure before the first event
    (a knowledge base that is not the caller's: 404 `kb_not_found`) raises, as an HTTP
    error. `first` runs once the answer has started, before anything is sent (recording the
    question in a chat); if it fails, the answer is cancelled."""
    events = await rag.answer(request)
    if first is not None:
        try:
            await first()
        except BaseException:
            await events.aclose()
            raise
    reply = Reply.new(model)
    if streamed:
        return GroundedStream(events, reply, on_outcome)
    outcome = Outcome(aborted=True)
    await gather(events, outcome)
    await on_outcome(outcome)
    return JSONResponse(completion(reply, outcome.text, outcome.citations))
