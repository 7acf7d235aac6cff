"""Grounded answers: a prompt built from the retrieved chunks, streamed from any
OpenAI-compatible endpoint (a Forgeline deployment, or an external API with the user's key).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import openai
from forgeline.v1 import rag_pb2

from services.common.errors import InvalidInput, Unavailable

NOT_IN_DOCUMENTS = "The documents do not contain the answer."
SYSTEM_PROMPT = (
    "You answer questions using only the numbered documents the user gives you. "
    "Cite the documents you use with their numbers in square brackets, like [1]. "
    f'If the documents do not contain the answer, reply exactly: "{NOT_IN_DOCUMENTS}" '
    "Do not use any other knowledge."
)


class HitLike(Protocol):
    document: str
    page_start: int
    page_end: int
    text: str


def _pages(hit: HitLike) -> str:
    first, last = hit.page_start + 1, hit.page_end + 1  # people count pages from 1
    return f"page {first}" if first == last else f"pages {first}-{last}"


def build_messages(
    question: str, hits: Sequence[HitLike], *, max_context_chars: int
) -> list[dict[str, str]]:
    """Numbered sources, most relevant first, cut to fit the model's context."""
    sources: list[str] = []
    budget = max_context_chars
    for number, hit in enumerate(hits, 1):
        text = " ".join(hit.text.split())[: max(0, budget)]
        if not text:
            break
        sources.append(f"[{number}] {hit.document}, {_pages(hit)}:\n{text}")
        budget -= len(text)
    context = "\n\n".join(sources) if sources else "(no documents matched)"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Documents:\n{context}\n\nQuestion: {question}"},
    ]


class Answerer:
    def __init__(self, *, timeout_seconds: float, max_context_chars: int = 4000) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_context_chars = max_context_chars

    def stream(self, request: rag_pb2.AnswerRequest, hits: Sequence[Any]) -> Iterator[str]:
        if not request.base_url or not request.model:
            raise InvalidInput(
                "model_required", "Choose the model that answers: its endpoint and name."
            )
        client = openai.OpenAI(
            base_url=request.base_url,
            api_key=request.api_key or "not-needed",
            timeout=self.timeout_seconds,
            max_retries=0,
        )
        messages = build_messages(request.question, hits, max_context_chars=self.max_context_chars)
        try:
            stream = client.chat.completions.create(
                model=request.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=request.max_tokens or 256,
                temperature=request.temperature,
                stream=True,
            )
            for chunk in stream:
                choices = getattr(chunk, "choices", None)
                if choices and choices[0].delta.content:
                    yield choices[0].delta.content
        except openai.AuthenticationError as error:
            raise InvalidInput(
                "model_key_rejected", "The model's endpoint refused the API key."
            ) from error
        except openai.NotFoundError as error:
            raise InvalidInput(
                "model_not_found", f"The endpoint does not serve a model named '{request.model}'."
            ) from error
        except openai.APIError as error:
            raise Unavailable(
                "model_unavailable", "The model's endpoint could not be reached or failed."
            ) from error
