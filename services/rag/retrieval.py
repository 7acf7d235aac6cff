"""Hybrid retrieval over knowledge bases: dense (Chroma, cosine) + BM25, fused by RRF.

The pieces are LlamaIndex's: `ChromaVectorStore` under a `VectorStoreIndex` queried through
`VectorIndexRetriever` with `MetadataFilters`, and llama-index-retrievers-bm25's
`BM25Retriever` (bm25s) built per knowledge base. The query is embedded once by our own
`Embedder` (Chroma's default embedding function would download a model) and handed to the
dense side as `QueryBundle.embedding`.

Fusion is reciprocal rank fusion, written here rather than taken from `QueryFusionRetriever`
(mode "reciprocal_rerank"), for four reasons found in llama-index-core 0.14:
- it merges the two lists by `node.hash`, a hash of text *and* metadata, so one chunk comes
  back as two hits whenever the dense node (rebuilt from Chroma's record) and the BM25 node
  differ in metadata layout; chunk ids are the right key;
- it ignores `retriever_weights` in that mode;
- it keeps only the fused score, while a `Hit` reports each side's rank and score;
- without an `llm` argument it resolves `Settings.llm`, i.e. tries OpenAI, even for one query.
The formula is the same: score = sum over lists of weight / (rrf_k + rank), rank from 1.

Records in Chroma (written by the indexer, `services.common.vectors.chunk_records`),
document = the chunk text, metadata = kb_id, key, document (file name), page_start,
page_end (0-based, inclusive), chunk_index, token_count, header and heading. The embedding
is that of `Chunk.embedding_text`, header and heading included.

Defaults (`RetrievalSettings`), measured with `bench/retrieval_experiments.py` on
FinanceBench, page hit@5 all filings in one knowledge base / one knowledge base per filing,
222-token chunks with document header and page heading:
- hybrid beats either side: dense 0.63 / 0.71, BM25 0.33 / 0.47, RRF 0.63 / 0.78;
- dense counts twice in the fusion (`dense_weight=2`): BM25 is the weaker side here;
- at most one hit per page (`max_per_page=1`): neighbouring chunks of one page otherwise
  take several of the k places. With both: 0.67 / 0.82 (MRR@10 0.50 / 0.61);
- BM25 indexes the header and heading with the text. The header is a trade: it finds the
  filing among many and blurs the page within one (RRF with dense x2, no page limit: with
  0.65 / 0.76, without 0.59 / 0.80); the shared case is the one that needs help;
- BM25 splits letters from digits ("FY2022" -> "fy", "2022"); bm25s's own word pattern gave
  0.57 / 0.76 against 0.63 / 0.78 (plain RRF);
- 50 candidates from each side (20 or 100 made no consistent difference).

BM25 freshness: each knowledge base's BM25 index is built on first use and kept with a
version. Before each query the retriever asks `version_of(kb_id)`; when it changed, the index
is rebuilt from Chroma (lazily, on that query). The default version is a fingerprint of the
knowledge base's chunk ids, which change whenever a document is added, replaced (new etag)
or deleted, so it is right without any coordination; it costs one id listing per query
(`bm25_recheck_seconds` asks at most that often instead). A service that already keeps a
per-knowledge-base counter (bumped by the indexer after each upsert/delete) passes it as
`version_of`, and `invalidate()` forces a rebuild. A rebuild reads the knowledge base's
chunks back from Chroma and re-tokenises them: seconds for 8,000 chunks, so a knowledge base
that changes constantly should pass a version that changes less often than every write.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.retrievers import VectorIndexRetriever
from llama_index.core.schema import BaseNode, QueryBundle, TextNode
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters
from llama_index.retrievers.bm25 import BM25Retriever
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from services.common.embedding import Embedder

Mode = Literal["hybrid", "dense", "bm25"]

# Letters and digits as separate tokens: "FY2022" -> "fy", "2022"; "10-K" -> "10", "k".
# Questions say "FY2022", documents "fiscal 2022" or "2022"; bm25s's default pattern
# (\w\w+) keeps "fy2022" whole and matches neither.
SPLIT_TOKEN_PATTERN = r"(?u)[^\W\d_]{2,}|\d+"  # noqa: S105 (a regex, not a secret)
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # noqa: S105


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    mode: Mode = "hybrid"
    candidates: int = 50  # taken from each side before fusion
    rrf_k: int = 60
    # Dense counts twice in the fusion: BM25 alone is much weaker on these documents
    # (FinanceBench page hit@5, BM25 vs dense: 0.33 vs 0.63 shared, 0.47 vs 0.71 single).
    dense_weight: float = 2.0
    bm25_weight: float = 1.0
    bm25_header: bool = True  # index the document header with the chunk text in BM25
    bm25_heading: bool = True  # and the page heading
    bm25_recheck_seconds: float = 0.0  # see BM25Indexes: 0 = version check on every query
    bm25_token_pattern: str = SPLIT_TOKEN_PATTERN
    rerank_candidates: int = 20  # fused hits handed to the reranker, when there is one
    # At most this many hits per page (None: no limit): neighbouring chunks of one page
    # otherwise fill the top k with one place in the document.
    max_per_page: int | None = 1


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: str
    kb_id: str
    key: str  # the object key
    document: str  # its file name
    page_start: int  # 0-based, inclusive
    page_end: int
    chunk_index: int
    text: str
    score: float  # fused (or the single side's score), higher is better
    dense_rank: int | None = None  # 1-based rank on each side; None: not in its top
    dense_score: float | None = None  # cosine similarity
    bm25_rank: int | None = None
    bm25_score: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Reranker(Protocol):
    """Reorders fused hits, e.g. with a cross-encoder. Returns the hits best first."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]: ...


# --- Records ------------------------------------------------------------------------------


def get_collection(client: ClientAPI, name: str) -> Collection:
    """A collection in cosine space, with no embedding function of Chroma's own."""
    return client.get_or_create_collection(
        name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )


# --- LlamaIndex glue ------------------------------------------------------------------------


class _EmbedderAdapter(BaseEmbedding):
    """Our `Embedder` as a LlamaIndex embed model (query side gets its instruction)."""

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(model_name=embedder.name)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.encode_query(query)]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return [float(x) for x in self._embedder.encode([text])[0]]


def _filters(kb_ids: Sequence[str], keys: Sequence[str] | None) -> MetadataFilters:
    filters = [MetadataFilter(key="kb_id", value=list(kb_ids), operator=FilterOperator.IN)]
    if keys:
        filters.append(MetadataFilter(key="key", value=list(keys), operator=FilterOperator.IN))
    return MetadataFilters(filters=filters)


@dataclass(slots=True)
class _Record:
    id: str
    text: str
    metadata: dict[str, Any]


def _hit(record: _Record, score: float) -> Hit:
    meta = record.metadata
    return Hit(
        chunk_id=record.id,
        kb_id=str(meta.get("kb_id", "")),
        key=str(meta.get("key", "")),
        document=str(meta.get("document", "")),
        page_start=int(meta.get("page_start", 0)),
        page_end=int(meta.get("page_end", meta.get("page_start", 0))),
        chunk_index=int(meta.get("chunk_index", 0)),
        text=record.text,
        score=score,
        metadata=meta,
    )


# --- BM25 per knowledge base ----------------------------------------------------------------


@dataclass(slots=True)
class _BM25Index:
    version: str
    retriever: BM25Retriever | None  # None: the knowledge base has no chunks
    records: dict[str, _Record]
    keys: list[str]  # object key of each corpus position, for document filters


def fingerprint_version(collection: Collection) -> Callable[[str], str]:
    """Version of a knowledge base = hash of its chunk ids (see the module docstring)."""

    def version_of(kb_id: str) -> str:
        ids = collection.get(where={"kb_id": kb_id}, include=[])["ids"]
        digest = hashlib.sha1(usedforsecurity=False)
        for chunk in sorted(ids):
            digest.update(chunk.encode())
            digest.update(b"\0")
        return digest.hexdigest()

    return version_of


class BM25Indexes:
    """BM25 indexes per knowledge base, rebuilt lazily when its version changes."""

    def __init__(
        self,
        collection: Collection,
        *,
        version_of: Callable[[str], str] | None = None,
        header: bool = True,
        heading: bool = True,
        token_pattern: str = SPLIT_TOKEN_PATTERN,
        recheck_seconds: float = 0.0,
    ) -> None:
        self._collection = collection
        self._version_of = version_of or fingerprint_version(collection)
        # Ask for the version at most this often per knowledge base: 0 checks on every
        # query (always fresh); a few seconds bounds staleness and saves the id listing.
        self._recheck_seconds = recheck_seconds
        self._checked: dict[str, float] = {}
        self._header = header
        self._heading = heading
        self._token_pattern = token_pattern
        self._indexes: dict[str, _BM25Index] = {}
        self._lock = threading.Lock()
        self._kb_locks: dict[str, threading.Lock] = {}
        self.builds = 0  # how many times an index was (re)built; for tests and metrics

    def invalidate(self, kb_id: str | None = None) -> None:
        with self._lock:
            if kb_id is None:
                self._indexes.clear()
                self._checked.clear()
            else:
                self._indexes.pop(kb_id, None)
                self._checked.pop(kb_id, None)

    def get(self, kb_id: str) -> _BM25Index:
        index = self._indexes.get(kb_id)
        now = time.monotonic()
        if index is not None and now - self._checked.get(kb_id, -math.inf) < (
            self._recheck_seconds
        ):
            return index
        version = self._version_of(kb_id)
        self._checked[kb_id] = now
        if index is not None and index.version == version:
            return index
        with self._lock:
            kb_lock = self._kb_locks.setdefault(kb_id, threading.Lock())
        with kb_lock:  # one build per knowledge base at a time; others wait for it
            index = self._indexes.get(kb_id)
            if index is None or index.version != version:
                index = self._build(kb_id, version)
                self._indexes[kb_id] = index
        return index

    def _build(self, kb_id: str, version: str) -> _BM25Index:
        got = self._collection.get(where={"kb_id": kb_id}, include=["documents", "metadatas"])
        records: dict[str, _Record] = {}
        nodes: list[BaseNode] = []
        keys: list[str] = []
        for chunk, text, meta in zip(
            got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
        ):
            metadata = dict(meta or {})
            records[chunk] = _Record(chunk, text or "", metadata)
            parts = [
                str(metadata.get("header", "")) if self._header else "",
                str(metadata.get("heading", "")) if self._heading else "",
                text or "",
            ]
            # Only this text is indexed: no metadata key is in BM25's view.
            nodes.append(TextNode(id_=chunk, text="\n".join(p for p in parts if p)))
            keys.append(str(metadata.get("key", "")))
        self.builds += 1
        if not nodes:
            return _BM25Index(version, None, records, keys)
        retriever = BM25Retriever.from_defaults(
            nodes=nodes,
            similarity_top_k=min(100, len(nodes)),
            token_pattern=self._token_pattern,
        )
        return _BM25Index(version, retriever, records, keys)


# --- The retriever ---------------------------------------------------------------------------


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], *, weights: Sequence[float] | None = None, k: int = 60
) -> dict[str, float]:
    """Fused score per id: sum of weight / (k + rank), ranks from 1."""
    scores: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        weight = weights[i] if weights is not None else 1.0
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


class HybridRetriever:
    """Dense + BM25 retrieval over one Chroma collection holding one or more knowledge bases."""

    def __init__(
        self,
        collection: Collection,
        embedder: Embedder,
        *,
        settings: RetrievalSettings | None = None,
        bm25: BM25Indexes | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.settings = settings or RetrievalSettings()
        self._collection = collection
        self._embedder = embedder
        self._index = VectorStoreIndex.from_vector_store(
            ChromaVectorStore(chroma_collection=collection),
            embed_model=_EmbedderAdapter(embedder),
        )
        self.bm25 = bm25 or BM25Indexes(
            collection,
            header=self.settings.bm25_header,
            heading=self.settings.bm25_heading,
            token_pattern=self.settings.bm25_token_pattern,
            recheck_seconds=self.settings.bm25_recheck_seconds,
        )
        self.reranker = reranker

    def retrieve(
        self,
        query: str,
        *,
        kb_ids: Sequence[str],
        keys: Sequence[str] | None = None,
        k: int = 5,
        mode: Mode | None = None,
        query_embedding: Sequence[float] | None = None,
    ) -> list[Hit]:
        """The top `k` chunks for `query` in `kb_ids`, optionally only from objects `keys`."""
        if not kb_ids or not query.strip():
            return []
        mode = mode or self.settings.mode
        n = max(k, self.settings.candidates)
        dense: list[tuple[_Record, float]] = []
        sparse: list[tuple[_Record, float]] = []
        if mode in ("hybrid", "dense"):
            dense = self._dense(query, kb_ids, keys, n, query_embedding)
        if mode in ("hybrid", "bm25"):
            sparse = self._bm25(query, kb_ids, keys, n)

        if mode == "dense":
            hits = [
                replace(_hit(r, s), dense_rank=i, dense_score=s)
                for i, (r, s) in enumerate(dense, 1)
            ]
        elif mode == "bm25":
            hits = [
                replace(_hit(r, s), bm25_rank=i, bm25_score=s) for i, (r, s) in enumerate(sparse, 1)
            ]
        else:
            hits = self._fuse(dense, sparse)

        if self.reranker is not None and hits:
            head = self.reranker.rerank(query, hits[: self.settings.rerank_candidates])
            hits = head + hits[self.settings.rerank_candidates :]
        if self.settings.max_per_page is not None:
            hits = _limit_per_page(hits, self.settings.max_per_page)
        return hits[:k]

    def _dense(
        self,
        query: str,
        kb_ids: Sequence[str],
        keys: Sequence[str] | None,
        n: int,
        query_embedding: Sequence[float] | None,
    ) -> list[tuple[_Record, float]]:
        vector: Sequence[float] | Any = query_embedding
        if vector is None:
            vector = self._embedder.encode_query(query)
        embedding = [float(x) for x in vector]
        retriever = VectorIndexRetriever(
            index=self._index, similarity_top_k=n, filters=_filters(kb_ids, keys)
        )
        out: list[tuple[_Record, float]] = []
        for result in retriever.retrieve(QueryBundle(query_str=query, embedding=embedding)):
            node = result.node
            # ChromaVectorStore reports exp(-distance); cosine similarity = 1 - distance.
            similarity = 1.0 + _log(result.score)
            out.append((_Record(node.node_id, node.get_content(), dict(node.metadata)), similarity))
        return out

    def _bm25(
        self, query: str, kb_ids: Sequence[str], keys: Sequence[str] | None, n: int
    ) -> list[tuple[_Record, float]]:
        allowed = set(keys) if keys else None
        found: list[tuple[_Record, float]] = []
        for kb_id in dict.fromkeys(kb_ids):
            index = self.bm25.get(kb_id)
            if index.retriever is None:
                continue
            retriever = copy.copy(index.retriever)  # per-query settings on a shallow copy
            retriever.similarity_top_k = min(n, len(index.keys))
            if allowed is not None:
                mask = [int(key in allowed) for key in index.keys]
                if not any(mask):
                    continue
                retriever.corpus_weight_mask = mask
            for result in retriever.retrieve(QueryBundle(query_str=query)):
                score = float(result.score or 0.0)
                record = index.records.get(result.node.node_id)
                # bm25s returns k rows even when fewer match: drop zero scores and masked rows.
                if score <= 0.0 or record is None:
                    continue
                if allowed is not None and record.metadata.get("key") not in allowed:
                    continue
                found.append((record, score))
        # Several knowledge bases: their BM25 scores are not comparable; interleave by rank
        # would be fairer, but one list sorted by score is what a single BM25 would give.
        found.sort(key=lambda pair: pair[1], reverse=True)
        return found[:n]

    def _fuse(
        self, dense: list[tuple[_Record, float]], sparse: list[tuple[_Record, float]]
    ) -> list[Hit]:
        s = self.settings
        scores = reciprocal_rank_fusion(
            [[r.id for r, _ in dense], [r.id for r, _ in sparse]],
            weights=[s.dense_weight, s.bm25_weight],
            k=s.rrf_k,
        )
        records = {r.id: r for r, _ in sparse} | {r.id: r for r, _ in dense}
        dense_at = {r.id: (i, score) for i, (r, score) in enumerate(dense, 1)}
        sparse_at = {r.id: (i, score) for i, (r, score) in enumerate(sparse, 1)}
        hits: list[Hit] = []
        for chunk, score in sorted(scores.items(), key=lambda item: item[1], reverse=True):
            d = dense_at.get(chunk)
            b = sparse_at.get(chunk)
            hits.append(
                replace(
                    _hit(records[chunk], score),
                    dense_rank=d[0] if d else None,
                    dense_score=d[1] if d else None,
                    bm25_rank=b[0] if b else None,
                    bm25_score=b[1] if b else None,
                )
            )
        return hits


def _limit_per_page(hits: Sequence[Hit], limit: int) -> list[Hit]:
    seen: dict[tuple[str, str, int], int] = {}
    kept: list[Hit] = []
    for hit in hits:
        page = (hit.kb_id, hit.key, hit.page_start)
        seen[page] = seen.get(page, 0) + 1
        if seen[page] <= limit:
            kept.append(hit)
    return kept


def _log(value: float | None) -> float:
    return math.log(value) if value and value > 0 else -1.0


__all__ = [
    "DEFAULT_TOKEN_PATTERN",
    "SPLIT_TOKEN_PATTERN",
    "BM25Indexes",
    "Hit",
    "HybridRetriever",
    "Mode",
    "Reranker",
    "RetrievalSettings",
    "fingerprint_version",
    "get_collection",
    "reciprocal_rank_fusion",
]
