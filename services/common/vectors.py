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
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings as ChromaSettings

from services.common.settings import BaseServiceSettings

# Metadata keys on every chunk.
KB_ID = "kb_id"
HEADER = "header"  # the document's one-line description, embedded and BM25-indexed with it
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


def chunk_id(bucket: str, key: str, etag: str, index: int) -> str:
    digest = hashlib.sha256(f"{bucket}\0{key}".encode()).hexdigest()[:32]
    return f"{digest}:{etag}:{index}"
