"""The vector index contract between the indexer (writes) and the RAG service (reads).

One Chroma collection per embedding model (vectors of different models cannot be compared),
holding the chunks of every knowledge base that uses it, told apart by the `kb_id` metadata;
cosine space, our own embeddings (Chroma's default embedding function downloads a model,
which must never happen here). Every chunk carries the
metadata below; its id is derived from bucket, key, ETag and chunk number, so writing the
same version of a document twice replaces chunks instead of duplicating them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings as ChromaSettings

from services.common.settings import BaseServiceSettings

# Metadata keys on every chunk.
KB_ID = "kb_id"
HEADER = "header"  # the document's one-line description, embedded and BM25-indexed with it
HEADING = "heading"  # the page heading, when the chunk does not start the page
BUCKET = "bucket"
KEY = "key"
DOCUMENT = "document"  # the file name, for citations and filters
ETAG = "etag"
PAGE_START = "page_start"  # 0-based, inclusive
PAGE_END = "page_end"
CHUNK_INDEX = "chunk_index"


def chroma_client(settings: BaseServiceSettings) -> Any:
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "127.0.0.1",
            port=url.port or 8000,
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def collection_name(embedding_model: str) -> str:
    # Chroma names: 3-512 characters of [a-zA-Z0-9._-], starting and ending alphanumeric.
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", embedding_model).strip("-._")
    return f"chunks-{slug}"


def get_collection(client: Any, embedding_model: str) -> Any:
    return client.get_or_create_collection(
        collection_name(embedding_model),
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )


def chunk_id(kb_id: str, bucket: str, key: str, etag: str, index: int) -> str:
    # The knowledge base is part of the id: two of them may watch the same attached bucket.
    digest = hashlib.sha256(f"{kb_id}\0{bucket}\0{key}".encode()).hexdigest()[:32]
    return f"{digest}:{etag}:{index}"


class ChunkLike(Protocol):
    """What a record is made of (the indexer's `Chunk`)."""

    @property
    def index(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def page_start(self) -> int: ...
    @property
    def page_end(self) -> int: ...
    @property
    def token_count(self) -> int: ...
    @property
    def header(self) -> str: ...
    @property
    def heading(self) -> str: ...


def chunk_records(
    *,
    kb_id: str,
    bucket: str,
    key: str,
    etag: str,
    chunks: Sequence[ChunkLike],
    embeddings: Any,
    document: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `collection.upsert(...)`, one record per chunk: the text a
    citation shows as the document, the metadata above, and the chunk's embedding (that of
    its `embedding_text`, header and heading included)."""
    name = document if document is not None else key.rsplit("/", 1)[-1]
    return {
        "ids": [chunk_id(kb_id, bucket, key, etag, c.index) for c in chunks],
        "documents": [c.text for c in chunks],
        "embeddings": embeddings,
        "metadatas": [
            {
                KB_ID: kb_id,
                BUCKET: bucket,
                KEY: key,
                DOCUMENT: name,
                ETAG: etag,
                PAGE_START: c.page_start,
                PAGE_END: c.page_end,
                CHUNK_INDEX: c.index,
                "token_count": c.token_count,
                HEADER: c.header,
                HEADING: c.heading,
            }
            for c in chunks
        ],
    }
