"""The indexer's view of knowledge bases, asked of the RAG service (which owns them)."""

from __future__ import annotations

import grpc
from cachetools import TTLCache
from forgeline.v1 import rag_pb2, rag_pb2_grpc

from services.common.errors import from_grpc
from services.common.grpc_client import sync_channel
from services.indexer.sync import KnowledgeBaseConfig


class KnowledgeBaseDirectory:
    """Looks a knowledge base up by owner and id; None once it has been deleted."""

    def __init__(self, rag_address: str, *, deadline_seconds: float) -> None:
        self._stub = rag_pb2_grpc.RagServiceStub(sync_channel(rag_address))
        self._deadline = deadline_seconds
        # Settings of a knowledge base never change after creation; a deletion shows within
        # the TTL, and the documents of a deleted one are dropped explicitly anyway.
        self._cache: TTLCache[tuple[str, str], KnowledgeBaseConfig] = TTLCache(1024, ttl=30)

    def get(self, owner_id: str, kb_id: str) -> KnowledgeBaseConfig | None:
        cached = self._cache.get((owner_id, kb_id))
        if cached is not None:
            return cached
        try:
            kb = self._stub.GetKnowledgeBase(
                rag_pb2.GetKnowledgeBaseRequest(owner_id=owner_id, id=kb_id),
                timeout=self._deadline,
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise from_grpc(
                error.code(), error.details(), tuple(error.trailing_metadata() or ()), service="rag"
            ) from None
        config = KnowledgeBaseConfig(
            id=kb.id,
            owner_id=kb.owner_id,
            embedding_model=kb.embedding_model,
            chunk_tokens=kb.chunking.chunk_tokens,
            overlap_tokens=kb.chunking.overlap_tokens,
        )
        self._cache[(owner_id, kb_id)] = config
        return config
