"""REST models for chat sessions (`/api/v1/chats`) and prompt templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from forgeline.v1 import deployer_pb2
from pydantic import BaseModel, Field

from services.gateway.schemas import _dt


class ChatCreate(BaseModel):
    title: str | None = Field(
        None,
        max_length=200,
        description="Empty: the chat takes its first question's first words as its title.",
    )
    model: str | None = Field(None, max_length=64, description="The deployment you chat with.")


class ChatRename(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class CitationOut(BaseModel):
    number: int = Field(description="The `[n]` in the answer.")
    kb_id: str
    document: str
    key: str
    page_start: int = Field(description="Counting from 1.")
    page_end: int
    snippet: str

    @classmethod
    def from_proto(cls, c: deployer_pb2.ChatCitation) -> CitationOut:
        return cls(
            number=c.number,
            kb_id=c.kb_id,
            document=c.document,
            key=c.key,
            page_start=c.page_start,
            page_end=c.page_end,
            snippet=c.snippet,
        )


class ChatMessageIn(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=1_000_000)
    status: Literal["complete", "stopped"] = "complete"
    model: str | None = Field(None, max_length=64)

    def to_proto(self) -> deployer_pb2.ChatMessage:
        return deployer_pb2.ChatMessage(
            role=self.role, content=self.content, status=self.status, model=self.model or ""
        )


class ChatMessagesIn(BaseModel):
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=100)


class ChatMessageOut(BaseModel):
    id: str
    role: str
    content: str
    status: Literal["complete", "stopped"] = Field(
        description="stopped: the answer was broken off; the content is as far as it got."
    )
    finish_reason: str | None
    model: str | None
    template: str | None = Field(description="The prompt template the request used.")
    citations: list[CitationOut] = Field(description="Answers from documents: their sources.")
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime | None

    @classmethod
    def from_proto(cls, m: deployer_pb2.ChatMessage) -> ChatMessageOut:
        return cls(
            id=m.id,
            role=m.role,
            content=m.content,
            status="stopped" if m.status == "stopped" else "complete",
            finish_reason=m.finish_reason or None,
            model=m.model or None,
            template=m.template or None,
            citations=[CitationOut.from_proto(c) for c in m.citations],
            prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens,
            created_at=_dt(m.created_at, m.HasField("created_at")),
        )


class ChatMessagesOut(BaseModel):
    data: list[ChatMessageOut]
    count: int


class ChatOut(BaseModel):
    id: str
    title: str
    model: str | None
    message_count: int
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def fields_from(cls, s: deployer_pb2.ChatSession) -> dict[str, Any]:
        return {
            "id": s.id,
            "title": s.title,
            "model": s.model or None,
            "message_count": s.message_count,
            "created_at": _dt(s.created_at, s.HasField("created_at")),
            "updated_at": _dt(s.updated_at, s.HasField("updated_at")),
        }

    @classmethod
    def from_proto(cls, s: deployer_pb2.ChatSession) -> ChatOut:
        return cls(**cls.fields_from(s))


class ChatWithMessages(ChatOut):
    messages: list[ChatMessageOut] = Field(description="Oldest first.")

    @classmethod
    def from_proto(cls, s: deployer_pb2.ChatSession) -> ChatWithMessages:
        return cls(
            **cls.fields_from(s), messages=[ChatMessageOut.from_proto(m) for m in s.messages]
        )


class ChatsOut(BaseModel):
    data: list[ChatOut] = Field(description="The most recently used first.")
    count: int


class TemplateOptionOut(BaseModel):
    name: str
    type: Literal["string", "object"]
    required: bool
    description: str
    choices: list[str]
    default: str | None


class PromptTemplateOut(BaseModel):
    name: str = Field(description='What you pass as "template" to /v1/chat/completions.')
    title: str
    description: str
    options: list[TemplateOptionOut] = Field(description='Keys of "template_options".')


class PromptTemplatesOut(BaseModel):
    data: list[PromptTemplateOut]
    count: int
