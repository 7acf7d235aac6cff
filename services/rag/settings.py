"""Settings of the RAG service (on top of the shared ones)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import BaseServiceSettings


class RagSettings(BaseServiceSettings):
    rag_grpc_bind: str = "127.0.0.1:50052"
    retrieve_max_k: int = Field(50, ge=1, le=200)
    answer_timeout_seconds: float = 120.0
    # Let users attach buckets on private or loopback addresses (a MinIO beside a one-machine
    # install). Off by default: the indexer would reach into our network on a user's behalf.
    rag_allow_private_bucket_endpoints: bool = False
    # A cross-encoder that reorders the fused hits (a folder, or a hub id already cached);
    # unset: no reranking. See services/rag/reranking.py.
    rag_reranker_model: str | None = None
