"""Retrieval across a caller's knowledge bases: one hybrid retriever per embedding model
(each model's chunks live in their own collection), built on first use and kept."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from services.common import vectors
from services.common.embedding import Embedder
from services.rag.models import KnowledgeBase
from services.rag.retrieval import Hit, HybridRetriever, Reranker


class Searcher:
    def __init__(self, chroma: Any, *, reranker: Reranker | None = None) -> None:
        self.chroma = chroma
        self.reranker = reranker
        self._retrievers: dict[str, HybridRetriever] = {}
        self._lock = threading.Lock()

    def retriever(self, model: str) -> HybridRetriever:
        with self._lock:
            if model not in self._retrievers:
                self._retrievers[model] = HybridRetriever(
                    vectors.get_collection(self.chroma, model),
                    Embedder(model),
                    reranker=self.reranker,
                )
            return self._retrievers[model]

    def warm_up(self, model: str) -> None:
        """Load a model before the first question, so that one is not slow."""
        self.retriever(model)._embedder.encode_query("warm-up")

    def forget(self, kb_id: str) -> None:
        """Drop cached BM25 state of a deleted knowledge base."""
        with self._lock:
            retrievers = list(self._retrievers.values())
        for retriever in retrievers:
            retriever.bm25.invalidate(kb_id)

    def search(
        self, kbs: Sequence[KnowledgeBase], query: str, *, k: int, documents: Sequence[str] = ()
    ) -> list[Hit]:
        by_model: dict[str, list[KnowledgeBase]] = {}
        for kb in kbs:
            by_model.setdefault(kb.embedding_model, []).append(kb)
        hits: list[Hit] = []
        for model, group in by_model.items():
            keys = [kb.prefix + name for kb in group for name in documents] or None
            hits += self.retriever(model).retrieve(
                query, kb_ids=[kb.id for kb in group], keys=keys, k=k
            )
        # Scores of different models' retrievers are fused ranks (or all the one reranker's
        # scores), so they compare well enough.
        return sorted(hits, key=lambda hit: hit.score, reverse=True)[:k]
