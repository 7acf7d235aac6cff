"""Grounded answers: a prompt built from the retrieved chunks, streamed from any
OpenAI-compatible endpoint (a Forgeline deployment, or an external API with the user's key).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import httpx2
import openai
from forgeline.v1 import rag_pb2

from services.common.errors import InvalidInput, Unavailable
from services.common.outbound import OutboundPolicy, OutboundRefused, guarded_client

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
    def __init__(
        self,
        *,
        timeout_seconds: float,
        policy: OutboundPolicy,
        max_context_chars: int = 4000,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.policy = policy  # what a user-given endpoint may reach
        self.max_context_chars = max_context_chars

    def _http_client(self, request: rag_pb2.AnswerRequest) -> httpx2.Client:
        # httpx2: the httpx fork the OpenAI client is built on.
        if request.platform_deployment:  # resolved by the gateway: ours
            return httpx2.Client(timeout=self.timeout_seconds, trust_env=False)
        self.policy.check_url(request.base_url)  # a clear refusal before anything is sent
        client: httpx2.Client = guarded_client(
            self.policy, timeout=self.timeout_seconds, flavour=httpx2
        )
        return client

    def stream(self, request: rag_pb2.AnswerRequest, hits: Sequence[Any]) -> Iterator[str]:
        if not request.base_url or not request.model:
            raise InvalidInput(
                "model_required", "Choose the model that answers: its endpoint and name."
            )
        http = self._http_client(request)
        client = openai.OpenAI(
            base_url=request.base_url,
            api_key=request.api_key or "not-needed",
            timeout=self.timeout_seconds,
            max_retries=0,
            http_client=http,
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
        except openai.APIConnectionError as error:
            # The guard refuses inside the transport (a redirect, a name that now resolves
            # elsewhere); the client reports that as a connection error.
            if isinstance(error.__cause__, OutboundRefused):
                raise error.__cause__ from None
            raise Unavailable(
                "model_unavailable", "The model's endpoint could not be reached or failed."
            ) from error
        except openai.APIError as error:
            raise Unavailable(
                "model_unavailable", "The model's endpoint could not be reached or failed."
            ) from error
        finally:
            client.close()  # and with it the HTTP client, this request's own
