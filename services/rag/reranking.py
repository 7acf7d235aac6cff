"""The optional reranker: a sentence-transformers cross-encoder that reads the question and
each fused hit together and reorders them.

Off unless `RAG_RERANKER_MODEL` names one whose weights are on this machine (a folder, or a
hub id already in the Hugging Face cache, e.g. `BAAI/bge-reranker-base` or
`cross-encoder/ms-marco-MiniLM-L-6-v2`); nothing is downloaded at run time. It costs one
forward pass per candidate (`rerank_candidates`, 20 by default) on every query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.common import vectors
from services.rag.retrieval import Hit


def locate_reranker(name: str) -> Path:
    folder = Path(name).expanduser()
    if (folder / "config.json").exists():
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # not cached, or not a hub id
        raise RuntimeError(
            f"RAG_RERANKER_MODEL={name!r}: no such folder, and not in the Hugging Face cache. "
            "Put the model's files on this machine first (nothing is downloaded at run time)."
        ) from exc


class CrossEncoderReranker:
    def __init__(self, name: str, *, batch_size: int = 16, max_length: int = 512) -> None:
        from sentence_transformers import CrossEncoder

        self.path = locate_reranker(name)
        self._model: Any = CrossEncoder(
            str(self.path), device="cpu", max_length=max_length, local_files_only=True
        )
        self._batch_size = batch_size

    @staticmethod
    def passage(hit: Hit) -> str:
        # The header names the filing and company: without it "revenue in 2022" matches
        # every company's revenue page equally.
        header = str(hit.metadata.get(vectors.HEADER, "") or "")
        return f"{header}\n{hit.text}" if header else hit.text

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict(
            [(query, self.passage(hit)) for hit in hits],
            batch_size=self._batch_size,
            show_progress_bar=False,
        )
        rescored = [replace(hit, score=float(s)) for hit, s in zip(hits, scores, strict=True)]
        return sorted(rescored, key=lambda hit: hit.score, reverse=True)
