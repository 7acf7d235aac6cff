"""Tables owned by the RAG service: knowledge bases."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel, col

from services.common.timestamps import utcnow


class KnowledgeBase(SQLModel, table=True):
    __tablename__ = "rag_knowledge_bases"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=32)
    name: str = Field(max_length=100)
    embedding_model: str = Field(max_length=100)
    chunk_tokens: int
    overlap_tokens: int
    bucket: str = Field(max_length=255)
    prefix: str = Field(max_length=1024)
    # A bucket of the user's own, reached with their credentials (secret encrypted).
    external: bool = False
    external_endpoint_url: str | None = Field(default=None, max_length=1024)
    external_region: str | None = Field(default=None, max_length=64)
    external_access_key_id: str | None = Field(default=None, max_length=256)
    external_secret_encrypted: str | None = Field(default=None, max_length=1024)
    created_at: datetime = Field(default_factory=utcnow)


# Encrypted with the platform key: re-encrypted by services/supervisor/rotate_secrets.py.
ENCRYPTED_COLUMNS = (col(KnowledgeBase.external_secret_encrypted),)
