"""Hybrid retrieval on a tiny corpus: real MiniLM embeddings, an ephemeral Chroma client."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import chromadb
import pytest

from services.common.embedding import Embedder, available_models
from services.common.vectors import chunk_records
from services.indexer.chunking import Chunk, chunk_pages
from services.rag.retrieval import (
    Hit,
    HybridRetriever,
    RetrievalSettings,
    get_collection,
    reciprocal_rank_fusion,
)

# About refunds in meaning, without any of the query's words: BM25 cannot match them.
REFUNDS = [
    "Returned items are reimbursed to the original payment method within 14 days.",
    "Unopened products can be sent back for a full reimbursement within 30 days.",
    "Money back for damaged goods needs a photo of the damage and the packing slip.",
    "Store credit instead of reimbursement is offered for clearance items.",
    "Cancelled subscriptions get back a prorated amount for the remaining billing days.",
]
# The only chunk that names QX7731; nothing in it is about refunds.
ORDER = "Lighthouse roster QX7731: the night watch is kept by Anna and two volunteers."
OTHER = [
    "The cafeteria serves lunch from noon until two, with vegetarian options daily.",
    "Security badges must be worn visibly at all times inside the building.",
]
QUERY = "What is the refund policy for order QX7731?"


def chunks(texts: Sequence[str], header: str = "") -> list[Chunk]:
    return [
        Chunk(index=i, text=t, page_start=i, page_end=i, token_count=len(t.split()), header=header)
        for i, t in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def client() -> Any:
    return chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))


def add(collection: Any, embedder: Embedder, kb_id: str, key: str, texts: Sequence[str]) -> None:
    cs = chunks(texts)
    vectors = embedder.encode([c.embedding_text for c in cs])
    collection.upsert(
        **chunk_records(kb_id=kb_id, bucket="b", key=key, etag="e", chunks=cs, embeddings=vectors)
    )


@pytest.fixture
def collection(client: Any, embedder: Embedder) -> Any:
    collection = get_collection(client, f"test-{uuid.uuid4().hex}")
    add(collection, embedder, "kb-a", "docs/refunds.pdf", REFUNDS)
    add(collection, embedder, "kb-a", "docs/shipping.pdf", [ORDER, *OTHER])
    add(collection, embedder, "kb-b", "other/refunds.pdf", REFUNDS)
    return collection


def test_the_default_model_is_available_offline(embedder: Embedder) -> None:
    assert available_models()["all-MiniLM-L6-v2"] is True
    assert embedder.max_tokens == 256
    assert embedder.dimension == 384
    assert embedder.default_chunk_tokens == 222
    vectors = embedder.encode(["one", "two"])
    assert vectors.dtype.name == "float32"
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-5
    (chunk,) = chunk_pages(
        [(0, ""), (1, "Hello world.")],
        tokenizer=embedder.tokenizer,
        chunk_tokens=embedder.default_chunk_tokens,
        header="ACME 2024 10K",
        embed_limit=embedder.max_tokens,
    )
    assert (chunk.page_start, chunk.embedding_text) == (1, "ACME 2024 10K\nHello world.")


def test_hybrid_finds_a_keyword_only_match_that_dense_misses(
    collection: Any, embedder: Embedder
) -> None:
    retriever = HybridRetriever(collection, embedder)
    dense = retriever.retrieve(QUERY, kb_ids=["kb-a"], k=3, mode="dense")
    bm25 = retriever.retrieve(QUERY, kb_ids=["kb-a"], k=3, mode="bm25")
    hybrid = retriever.retrieve(QUERY, kb_ids=["kb-a"], k=3, mode="hybrid")
    assert ORDER not in [h.text for h in dense]
    assert bm25[0].text == ORDER
    assert ORDER in [h.text for h in hybrid]
    found = next(h for h in hybrid if h.text == ORDER)
    assert (found.key, found.document, found.page_start, found.page_end) == (
        "docs/shipping.pdf",
        "shipping.pdf",
        0,
        0,
    )
    assert found.bm25_rank == 1 and found.dense_rank is not None and found.dense_rank > 3
    # Fused scores are RRF scores, best first; dense scores are cosine similarities.
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
    assert all(-1.0 <= (h.dense_score or 0.0) <= 1.0 for h in hybrid)


def test_filters_restrict_to_one_knowledge_base_and_to_documents(
    collection: Any, embedder: Embedder
) -> None:
    retriever = HybridRetriever(collection, embedder)
    only_b = retriever.retrieve(QUERY, kb_ids=["kb-b"], k=10)
    assert only_b and {h.kb_id for h in only_b} == {"kb-b"}
    assert len(only_b) == len(REFUNDS)
    both = retriever.retrieve(QUERY, kb_ids=["kb-a", "kb-b"], k=20)
    assert {h.kb_id for h in both} == {"kb-a", "kb-b"}
    one_doc = retriever.retrieve(QUERY, kb_ids=["kb-a"], keys=["docs/refunds.pdf"], k=10)
    assert {h.key for h in one_doc} == {"docs/refunds.pdf"}
    for mode in ("dense", "bm25"):
        hits = retriever.retrieve(
            QUERY, kb_ids=["kb-a"], keys=["docs/shipping.pdf"], k=10, mode=mode
        )
        assert hits and {h.key for h in hits} == {"docs/shipping.pdf"}
    assert retriever.retrieve(QUERY, kb_ids=["kb-missing"], k=5) == []


def test_bm25_follows_documents_as_they_change(collection: Any, embedder: Embedder) -> None:
    retriever = HybridRetriever(collection, embedder)
    assert retriever.retrieve("zeppelin hangar", kb_ids=["kb-a"], k=3, mode="bm25") == []
    builds = retriever.bm25.builds
    retriever.retrieve("anything else", kb_ids=["kb-a"], k=3, mode="bm25")
    assert retriever.bm25.builds == builds  # unchanged knowledge base: no rebuild

    add(collection, embedder, "kb-a", "docs/new.pdf", ["The zeppelin hangar opens in May."])
    hits = retriever.retrieve("zeppelin hangar", kb_ids=["kb-a"], k=3, mode="bm25")
    assert [h.key for h in hits] == ["docs/new.pdf"]
    assert retriever.bm25.builds == builds + 1

    collection.delete(where={"key": "docs/new.pdf"})
    assert retriever.retrieve("zeppelin hangar", kb_ids=["kb-a"], k=3, mode="bm25") == []


def test_a_reranker_reorders_the_fused_hits(collection: Any, embedder: Embedder) -> None:
    class Reverse:
        def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
            assert query == QUERY
            return list(reversed(hits))

    plain = HybridRetriever(collection, embedder).retrieve(QUERY, kb_ids=["kb-b"], k=5)
    reranked = HybridRetriever(collection, embedder, reranker=Reverse()).retrieve(
        QUERY, kb_ids=["kb-b"], k=5
    )
    assert [h.chunk_id for h in reranked] == [h.chunk_id for h in reversed(plain)]


def test_reciprocal_rank_fusion() -> None:
    scores = reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=60)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert max(scores, key=scores.__getitem__) == "b"
    weighted = reciprocal_rank_fusion([["a"], ["c"]], weights=[2.0, 1.0], k=60)
    assert weighted["a"] == pytest.approx(2 * weighted["c"])


def test_one_hit_per_page_by_default(client: Any, embedder: Embedder) -> None:
    collection = get_collection(client, f"test-{uuid.uuid4().hex}")
    same_page = [
        Chunk(index=i, text=t, page_start=4, page_end=4, token_count=len(t.split()))
        for i, t in enumerate(REFUNDS[:3])
    ]
    vectors = embedder.encode([c.embedding_text for c in same_page])
    collection.upsert(
        **chunk_records(
            kb_id="kb", bucket="b", key="a.pdf", etag="e", chunks=same_page, embeddings=vectors
        )
    )
    add(collection, embedder, "kb", "b.pdf", OTHER)
    hits = HybridRetriever(collection, embedder).retrieve(QUERY, kb_ids=["kb"], k=5)
    assert [(h.key, h.page_start) for h in hits].count(("a.pdf", 4)) == 1
    every = HybridRetriever(
        collection, embedder, settings=RetrievalSettings(max_per_page=None)
    ).retrieve(QUERY, kb_ids=["kb"], k=5)
    assert [(h.key, h.page_start) for h in every].count(("a.pdf", 4)) == 3


def test_bm25_recheck_interval_bounds_version_checks(collection: Any, embedder: Embedder) -> None:
    retriever = HybridRetriever(
        collection, embedder, settings=RetrievalSettings(mode="bm25", bm25_recheck_seconds=3600)
    )
    assert retriever.retrieve("zeppelin hangar", kb_ids=["kb-a"], k=3) == []
    add(collection, embedder, "kb-a", "docs/new.pdf", ["The zeppelin hangar opens in May."])
    assert retriever.retrieve("zeppelin hangar", kb_ids=["kb-a"], k=3) == []  # not rechecked
    retriever.bm25.invalidate("kb-a")
    hits = retriever.retrieve("zeppelin hangar", kb_ids=["kb-a"], k=3)
    assert [h.key for h in hits] == ["docs/new.pdf"]
