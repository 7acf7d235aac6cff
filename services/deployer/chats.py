"""Chat sessions and their messages: the web client's history, and what the gateway records
for `/v1/chat/completions` with `chat_id`. The deployer owns them because it routes chat.

Every query filters by owner: another user's session answers exactly like a missing one
(`chat_not_found`). `ChatRpcs` is the gRPC side, mixed into `DeployerServicer`.
"""

from __future__ import annotations

from typing import Any

import grpc
from forgeline.v1 import deployer_pb2
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from services.common.db import get_owned, session_scope
from services.common.errors import InvalidInput, NotFound
from services.common.timestamps import to_timestamp, utcnow
from services.deployer.models import ChatMessage, ChatSession

ROLES = ("user", "assistant", "system")
STATUSES = ("complete", "stopped")
MAX_TITLE_CHARS = 200
MAX_CONTENT_CHARS = 1_000_000
MAX_MESSAGES_PER_CALL = 100
MAX_CITATIONS = 50
AUTO_TITLE_CHARS = 80


def _text(value: str) -> str:
    """Text as stored: PostgreSQL's text cannot hold NUL characters, which add nothing."""
    return value.replace("\x00", "")


def not_found() -> NotFound:
    return NotFound("chat_not_found", "There is no such chat.")


def clean_title(title: str, *, required: bool) -> str:
    title = " ".join(_text(title).split())
    if required and not title:
        raise InvalidInput("invalid_chat_title", "A chat's title is not empty.")
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidInput(
            "invalid_chat_title", f"A chat's title is at most {MAX_TITLE_CHARS} characters."
        )
    return title


def title_from(text: str) -> str:
    """A title for a session from its first question: its first words."""
    flat = " ".join(text.split())
    if len(flat) <= AUTO_TITLE_CHARS:
        return flat
    return (flat[:AUTO_TITLE_CHARS].rsplit(" ", 1)[0] or flat[:AUTO_TITLE_CHARS]) + "…"


def message_to_proto(m: ChatMessage) -> deployer_pb2.ChatMessage:
    return deployer_pb2.ChatMessage(
        id=m.id,
        session_id=m.session_id,
        role=m.role,
        content=m.content,
        status=m.status,
        finish_reason=m.finish_reason,
        model=m.model,
        template=m.template,
        citations=[deployer_pb2.ChatCitation(**c) for c in m.citations],
        prompt_tokens=m.prompt_tokens,
        completion_tokens=m.completion_tokens,
        created_at=to_timestamp(m.created_at),
    )


def session_to_proto(
    s: ChatSession, messages: list[ChatMessage] | None = None
) -> deployer_pb2.ChatSession:
    return deployer_pb2.ChatSession(
        id=s.id,
        owner_id=s.owner_id,
        title=s.title,
        model=s.model,
        message_count=s.message_count,
        created_at=to_timestamp(s.created_at),
        updated_at=to_timestamp(s.updated_at),
        messages=[message_to_proto(m) for m in messages or []],
    )


def _citation(c: deployer_pb2.ChatCitation) -> dict[str, Any]:
    return {
        "number": c.number,
        "kb_id": _text(c.kb_id)[:64],
        "document": _text(c.document)[:500],
        "key": _text(c.key)[:1024],
        "page_start": c.page_start,
        "page_end": c.page_end,
        "snippet": _text(c.snippet)[:2000],
    }


def _checked(m: deployer_pb2.ChatMessage) -> dict[str, Any]:
    if m.role not in ROLES:
        raise InvalidInput(
            "invalid_message_role", f"A message's role is one of {', '.join(ROLES)}."
        )
    status = m.status or "complete"
    if status not in STATUSES:
        raise InvalidInput(
            "invalid_message_status", f"A message's status is one of {', '.join(STATUSES)}."
        )
    if len(m.content) > MAX_CONTENT_CHARS:
        raise InvalidInput(
            "message_too_long", f"A message is at most {MAX_CONTENT_CHARS} characters."
        )
    if len(m.citations) > MAX_CITATIONS:
        raise InvalidInput(
            "too_many_citations", f"A message cites at most {MAX_CITATIONS} sources."
        )
    return {
        "role": m.role,
        "content": _text(m.content),
        "status": status,
        "finish_reason": _text(m.finish_reason)[:32],
        "model": _text(m.model)[:64],
        "template": _text(m.template)[:32],
        "citations": [_citation(c) for c in m.citations],
        "prompt_tokens": max(0, m.prompt_tokens),
        "completion_tokens": max(0, m.completion_tokens),
    }


def _owned(db: Session, owner_id: str, session_id: str) -> ChatSession:
    row = get_owned(db, ChatSession, owner_id, session_id) if owner_id and session_id else None
    if row is None:
        raise not_found()
    return row


def _messages(db: Session, session_id: str) -> list[ChatMessage]:
    statement = (
        select(ChatMessage)
        .where(ChatMessage.session_id == session_id)
        .order_by(col(ChatMessage.position), col(ChatMessage.created_at))
    )
    return list(db.exec(statement).all())


class ChatRpcs:
    """The chat-session RPCs of DeployerService (needs `self.engine`)."""

    engine: Engine

    def CreateChatSession(
        self, request: deployer_pb2.CreateChatSessionRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.ChatSession:
        if not request.owner_id:
            raise InvalidInput("owner_required", "A chat belongs to someone.")
        row = ChatSession(
            owner_id=request.owner_id,
            title=clean_title(request.title, required=False),
            model=_text(request.model)[:64],
        )
        with session_scope(self.engine) as db:
            db.add(row)
        return session_to_proto(row)

    def ListChatSessions(
        self, request: deployer_pb2.ListChatSessionsRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.ListChatSessionsResponse:
        with session_scope(self.engine) as db:
            rows = db.exec(
                select(ChatSession)
                .where(ChatSession.owner_id == request.owner_id)
                .order_by(col(ChatSession.updated_at).desc(), col(ChatSession.created_at).desc())
            ).all()
            sessions = [session_to_proto(r) for r in rows]
        return deployer_pb2.ListChatSessionsResponse(sessions=sessions)

    def GetChatSession(
        self, request: deployer_pb2.GetChatSessionRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.ChatSession:
        with session_scope(self.engine) as db:
            row = _owned(db, request.owner_id, request.id)
            return session_to_proto(row, _messages(db, row.id))

    def RenameChatSession(
        self, request: deployer_pb2.RenameChatSessionRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.ChatSession:
        title = clean_title(request.title, required=True)
        with session_scope(self.engine) as db:
            row = _owned(db, request.owner_id, request.id)
            row.title = title
            row.updated_at = utcnow()
            db.add(row)
            db.flush()
            return session_to_proto(row)

    def DeleteChatSession(
        self, request: deployer_pb2.DeleteChatSessionRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.DeleteChatSessionResponse:
        with session_scope(self.engine) as db:
            row = _owned(db, request.owner_id, request.id)
            db.exec(delete(ChatMessage).where(col(ChatMessage.session_id) == row.id))
            db.delete(row)
        return deployer_pb2.DeleteChatSessionResponse()

    def AppendChatMessages(
        self, request: deployer_pb2.AppendChatMessagesRequest, context: grpc.ServicerContext
    ) -> deployer_pb2.AppendChatMessagesResponse:
        if not request.messages:
            raise InvalidInput("messages_required", "Append at least one message.")
        if len(request.messages) > MAX_MESSAGES_PER_CALL:
            raise InvalidInput(
                "too_many_messages", f"Append at most {MAX_MESSAGES_PER_CALL} messages at once."
            )
        fields = [_checked(m) for m in request.messages]
        with session_scope(self.engine) as db:
            row = _owned(db, request.owner_id, request.session_id)
            # Locks the session row where the database can, so positions stay in order.
            db.exec(
                select(ChatSession.id).where(ChatSession.id == row.id).with_for_update()
            ).first()
            last = db.exec(
                select(ChatMessage.position)
                .where(ChatMessage.session_id == row.id)
                .order_by(col(ChatMessage.position).desc())
            ).first()
            position = -1 if last is None else last
            added: list[ChatMessage] = []
            now = utcnow()
            for values in fields:
                position += 1
                message = ChatMessage(
                    session_id=row.id,
                    owner_id=row.owner_id,
                    position=position,
                    created_at=now,
                    **values,
                )
                db.add(message)
                added.append(message)
                if not row.title and message.role == "user" and message.content.strip():
                    row.title = title_from(message.content)
                if message.model:
                    row.model = message.model
            row.message_count += len(added)
            row.updated_at = now
            db.add(row)
            db.flush()
            return deployer_pb2.AppendChatMessagesResponse(
                messages=[message_to_proto(m) for m in added]
            )
