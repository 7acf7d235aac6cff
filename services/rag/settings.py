"""Settings of the RAG service (on top of the shared ones)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import BaseServiceSettings


class RagSettings(BaseServiceSettings):
    rag_grpc_bind: str = "127.0.0.1:50052"
    retrieve_max_k: int = Field(50, ge=1, le=200)
    answer_timeout_seconds: float = 120.0
    # Let a knowledge-base query name a model endpoint on a private or loopback address (an
    # Ollama beside a one-machine install). Off by default: any user could then reach other
    # users' local vLLM servers and the platform's own servers. The platform's own public
    # URL (its `/v1`) is always allowed, and `/v1` grounded chat uses the caller's own
    # deployment, which the gateway resolves.
    rag_allow_private_model_endpoints: bool = False
    public_url: str = "http://127.0.0.1:8000"
    # A cross-encoder that reorders the fused hits (a folder, or a hub id already cached);
    # unset: no reranking. See services/rag/reranking.py.
    rag_reranker_model: str | None = None
