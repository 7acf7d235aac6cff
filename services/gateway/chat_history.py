"""Chat history for `/v1/chat/completions` with `"chat_id": <one of your chat sessions>`.

Before generating, the gateway appends the request's last user message to the session (a
session that is not the caller's is a 404 `chat_not_found`, and nothing is generated). When
the generation ends, the outcome listener below appends the assistant's answer, with the
model, the prompt template used and, for answers from documents, the citations. An answer
the client (or the server) broke off is stored as far as it got, with status `stopped`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from forgeline.v1 import deployer_pb2

from services.common.errors import InvalidInput
from services.common.logging import get_logger
from services.gateway.clients import DeployerClient
from services.gateway.grounded_chat import last_user_text
from services.gateway.stream_tap import Generation, Outcome, OutcomeListener

log = get_logger(__name__)
CHAT_ENDPOINT = "chat/completions"


def chat_id_of(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise InvalidInput(
            "invalid_chat_id", "'chat_id' is the id of one of your chats (POST /api/v1/chats)."
        )
    return value


def _template_of(body: dict[str, Any]) -> str:
    template = body.get("template")
    return template if isinstance(template, str) else ""


async def record_question(
    deployer: DeployerClient, owner_id: str, chat_id: str, body: dict[str, Any]
) -> None:
    """Append the request's last user message to the caller's session (404 if not theirs)."""
    question = last_user_text(body.get("messages"))
    if not question:  # nothing the user asked to record; still check the session is theirs
        await deployer.call(
            "GetChatSession", deployer_pb2.GetChatSessionRequest(owner_id=owner_id, id=chat_id)
        )
        return
    message = deployer_pb2.ChatMessage(
        role="user",
        content=question,
        model=str(body.get("model") or "")[:64],
        template=_template_of(body),
    )
    await deployer.call(
        "AppendChatMessages",
        deployer_pb2.AppendChatMessagesRequest(
            owner_id=owner_id, session_id=chat_id, messages=[message]
        ),
    )


def question_recorder(
    deployer: DeployerClient, owner_id: str, chat_id: str, body: dict[str, Any]
) -> Callable[[], Awaitable[None]] | None:
    """What records the question of a request with a chat_id; None without one."""
    if not chat_id:
        return None
    return partial(record_question, deployer, owner_id, chat_id, body)


def answer_message(generation: Generation, outcome: Outcome) -> deployer_pb2.ChatMessage:
    return deployer_pb2.ChatMessage(
        role="assistant",
        content=outcome.text,
        status="stopped" if outcome.aborted else "complete",
        finish_reason=outcome.finish_reason,
        model=generation.model[:64],
        template=_template_of(generation.body),
        citations=[
            deployer_pb2.ChatCitation(
                number=int(c.get("number") or 0),
                kb_id=str(c.get("kb_id") or ""),
                document=str(c.get("document") or ""),
                key=str(c.get("key") or ""),
                page_start=int(c.get("page_start") or 0),
                page_end=int(c.get("page_end") or 0),
                snippet=str(c.get("snippet") or ""),
            )
            for c in outcome.citations
        ],
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
    )


def answer_recorder(deployer: DeployerClient) -> OutcomeListener:
    """The outcome listener that stores answers of requests that named a `chat_id`."""

    async def record_answer(generation: Generation, outcome: Outcome) -> None:
        chat_id = generation.body.get("chat_id")
        if generation.endpoint != CHAT_ENDPOINT or not isinstance(chat_id, str) or not chat_id:
            return
        await deployer.call(
            "AppendChatMessages",
            deployer_pb2.AppendChatMessagesRequest(
                owner_id=generation.owner_id,
                session_id=chat_id,
                messages=[answer_message(generation, outcome)],
            ),
        )

    return record_answer
