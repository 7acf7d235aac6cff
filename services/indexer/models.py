"""Tables owned by the indexer: documents and their sync state."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from services.common.timestamps import utcnow

PENDING = "pending"
INDEXED = "indexed"
FAILED = "failed"
DELETED = "deleted"


class Document(SQLModel, table=True):
    """One object in a knowledge base's bucket prefix; the bucket is the truth, this row is
    what the index holds of it."""

    __tablename__ = "indexer_documents"
    # Two knowledge bases may watch the same attached bucket: one row per knowledge base.
    __table_args__ = (
        UniqueConstraint("kb_id", "bucket", "key", name="uq_indexer_documents_object"),
    )

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=32)
    kb_id: str = Field(index=True, max_length=32)
    bucket: str = Field(max_length=255)
    key: str = Field(max_length=1024)
    name: str = Field(max_length=1024)
    # The version the bucket last reported, and the one whose chunks are in the index.
    etag: str = Field(default="", max_length=128)
    indexed_etag: str = Field(default="", max_length=128)
    # The knowledge base's embedding model and chunking when it was indexed (see
    # KnowledgeBaseSource.signature); a change re-indexes the document.
    indexed_signature: str = Field(default="", max_length=160)
    size: int = 0
    state: str = Field(default=PENDING, max_length=16)
    failure_code: str | None = Field(default=None, max_length=64)
    failure_reason: str | None = Field(default=None, max_length=1024)
    chunks: int = 0
    pages: int = 0
    # Reads of this version a worker started and never finished (it died reading it):
    # past READINGS_ALLOWED the document fails instead of stopping the next worker too.
    reading_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    updated_at: datetime = Field(default_factory=utcnow)
