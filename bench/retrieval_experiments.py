"""Research script: which chunking, embedding text and retrieval mode find FinanceBench pages.

Not the final benchmark. It indexes the 31 FinanceBench filings into a Chroma
PersistentClient under --work (default /tmp/forgeline-retrieval), asks the 49 questions and
prints page_hit@k, doc_hit@k and MRR for:
- "shared": all filings in one knowledge base (one collection);
- "single": one knowledge base (one collection) per filing, asked only its own questions;
for each variant of chunk size, overlap, header in the dense text, header in BM25, BM25
tokenisation and retrieval mode (dense / bm25 / hybrid). Everything goes through the
service code: `services.indexer.chunking`, `services.common.embedding` and
`services.rag.retrieval`.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.retrieval_experiments [--only c222-h ...]

Embeddings are cached per text in an SQLite file under --work, so a variant that shares
chunks with another (or a rerun) does not embed them again; results per variant are kept as
JSON there too (--fresh recomputes). Page hit@k: one of the top k chunks comes from the
evidence document and spans an evidence page (page_index is 0-based, as pypdf counts).
MRR is over the top 10, on page hits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "financebench"
K = 5
TOP = 10
FINAL_VARIANT = "c222-hp"  # the chunking the indexer uses by default


@dataclass(frozen=True)
class IndexVariant:
    """What is embedded: chunking and whether the header goes into the dense text."""

    name: str
    chunk_tokens: int
    overlap_tokens: int
    dense_header: bool
    cross_pages: bool = False
    headings: bool = False  # page headings in front of chunks that do not start a page
    embed_limit: int | None = None  # shrink chunks so header + heading + text fit the model


INDEX_VARIANTS = {
    v.name: v
    for v in (
        IndexVariant("c222-h", 222, 32, True),
        IndexVariant("c222-n", 222, 32, False),
        IndexVariant("c512-n", 512, 32, False),
        IndexVariant("c512-h", 512, 32, True),
        IndexVariant("c128-h", 128, 32, True),
        IndexVariant("c128-n", 128, 32, False),
        IndexVariant("c256-h", 256, 32, True),
        IndexVariant("c256-n", 256, 32, False),
        IndexVariant("c222-hp", 222, 32, True, headings=True, embed_limit=256),
        IndexVariant("c128-hp", 128, 32, True, headings=True, embed_limit=256),
        IndexVariant("c256-hp", 256, 32, True, headings=True),
        IndexVariant("c222-np", 222, 32, False, headings=True, embed_limit=256),
        IndexVariant("c222-hp-o0", 222, 0, True, headings=True, embed_limit=256),
        IndexVariant("c222-hp-o64", 222, 64, True, headings=True, embed_limit=256),
        IndexVariant("c222-hp-x", 222, 32, True, headings=True, embed_limit=256, cross_pages=True),
    )
}


@dataclass(frozen=True)
class QueryVariant:
    """How it is searched."""

    name: str
    mode: str
    bm25_header: bool = True
    bm25_heading: bool = True
    split_tokens: bool = True
    candidates: int = 50
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    max_per_page: int | None = None


QUERY_VARIANTS = [
    QueryVariant("dense", "dense"),
    QueryVariant("bm25", "bm25"),
    QueryVariant("bm25-nohdr", "bm25", bm25_header=False),
    QueryVariant("bm25-nohdr-nohead", "bm25", bm25_header=False, bm25_heading=False),
    QueryVariant("bm25-wordtok", "bm25", split_tokens=False),
    QueryVariant("hybrid", "hybrid"),
    QueryVariant("hybrid-bm25nohdr", "hybrid", bm25_header=False),
    QueryVariant("hybrid-wordtok", "hybrid", split_tokens=False),
    QueryVariant("hybrid-c20", "hybrid", candidates=20),
    QueryVariant("hybrid-c100", "hybrid", candidates=100),
    QueryVariant("hybrid-d2", "hybrid", dense_weight=2.0),
    QueryVariant("hybrid-b2", "hybrid", bm25_weight=2.0),
    QueryVariant("hybrid-d2-bm25nohdr", "hybrid", dense_weight=2.0, bm25_header=False),
    QueryVariant("hybrid-d3", "hybrid", dense_weight=3.0),
    QueryVariant("dense-page1", "dense", max_per_page=1),
    QueryVariant("hybrid-page1", "hybrid", max_per_page=1),
    QueryVariant("hybrid-d2-page1", "hybrid", dense_weight=2.0, max_per_page=1),
    QueryVariant("hybrid-d2-page2", "hybrid", dense_weight=2.0, max_per_page=2),
    # RetrievalSettings() as the service uses it: the chosen defaults.
    QueryVariant("chosen", "hybrid"),
]


# --- Data ----------------------------------------------------------------------------------


def extract_pages(path: Path, extractor: str = "service") -> tuple[list[str], str]:
    """Text per page and the PDF title: with the indexer's own `extract` ("service"), or
    with plain pypdfium2 ("pdfium", what the first experiments used before it existed)."""
    if extractor == "service":
        from services.common.documents import extract

        document = extract(path.name, path.read_bytes())
        return [page.text for page in document.pages], document.title or ""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        pages = []
        for i in range(len(doc)):
            page = doc[i]
            text = page.get_textpage().get_text_range()
            pages.append(text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " "))
        title = str(doc.get_metadata_dict().get("Title", "") or "")
    finally:
        doc.close()
    return pages, title


def load_filings(work: Path, extractor: str = "service") -> dict[str, dict[str, Any]]:
    cache = work / ("pages.json" if extractor == "pdfium" else f"pages-{extractor}.json")
    if cache.exists():
        return dict(json.loads(cache.read_text()))
    started = time.perf_counter()
    filings: dict[str, dict[str, Any]] = {}
    for pdf in sorted((DATA / "pdfs").glob("*.pdf")):
        pages, title = extract_pages(pdf, extractor)
        filings[pdf.stem] = {"pages": pages, "title": title}
    print(
        f"extracted {sum(len(f['pages']) for f in filings.values())} pages in "
        f"{time.perf_counter() - started:.1f}s"
    )
    cache.write_text(json.dumps(filings))
    return filings


def load_questions() -> list[dict[str, Any]]:
    lines = (DATA / "questions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# --- Embedding cache -------------------------------------------------------------------------


class EmbeddingCache:
    def __init__(self, path: Path, embedder: Any) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS e (k TEXT PRIMARY KEY, v BLOB)")
        self._embedder = embedder
        self.encoded = 0
        self.encode_seconds = 0.0

    def _key(self, text: str) -> str:
        return hashlib.sha1(
            f"{self._embedder.name}\0{text}".encode(), usedforsecurity=False
        ).hexdigest()

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        keys = [self._key(("Q\0" if query else "") + t) for t in texts]
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(self._db.execute(f"SELECT k, v FROM e WHERE k IN ({marks})", part))  # noqa: S608
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        for start in range(0, len(missing), 256):
            batch = missing[start : start + 256]
            began = time.perf_counter()
            batch_texts = [t for _, t in batch]
            if query:
                vectors = self._embedder.encode_queries(batch_texts)
            else:
                vectors = self._embedder.encode(batch_texts, batch_size=32)
            self.encode_seconds += time.perf_counter() - began
            self.encoded += len(batch)
            rows = [
                (k, v.astype(np.float32).tobytes())
                for (k, _), v in zip(batch, vectors, strict=True)
            ]
            self._db.executemany("INSERT OR REPLACE INTO e VALUES (?, ?)", rows)
            self._db.commit()
            found.update(rows)
            if len(missing) > 256:
                print(
                    f"  embedded {min(start + 256, len(missing))}/{len(missing)} "
                    f"({self.encoded / self.encode_seconds:.1f} chunks/s)",
                    flush=True,
                )
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])


# --- Metrics -----------------------------------------------------------------------------------


def evidence_pages(question: dict[str, Any]) -> set[int]:
    return {
        int(e["page_index"]) for e in question["evidence"] if e["doc_name"] == question["doc_name"]
    }


def score(
    questions: Sequence[dict[str, Any]], results: Sequence[Sequence[Any]]
) -> dict[str, float]:
    page_hits = doc_hits = page10 = 0
    reciprocal = 0.0
    for question, hits in zip(questions, results, strict=True):
        pages = evidence_pages(question)
        doc = question["doc_name"]

        def is_page_hit(hit: Any, pages: set[int] = pages, doc: str = doc) -> bool:
            return hit.key == doc and any(hit.page_start <= p <= hit.page_end for p in pages)

        flags = [is_page_hit(h) for h in hits[:TOP]]
        page_hits += any(flags[:K])
        page10 += any(flags)
        doc_hits += any(h.key == doc for h in hits[:K])
        reciprocal += next((1.0 / (i + 1) for i, f in enumerate(flags) if f), 0.0)
    n = len(questions)
    return {
        "page_hit@5": page_hits / n,
        "doc_hit@5": doc_hits / n,
        "mrr@10": reciprocal / n,
        "page_hit@10": page10 / n,
    }


# --- Index and query ---------------------------------------------------------------------------


def build_chunks(
    filings: dict[str, dict[str, Any]], variant: IndexVariant, tokenizer: Any
) -> tuple[dict[str, list[Any]], float]:
    from services.indexer.chunking import chunk_pages, document_header

    started = time.perf_counter()
    chunks: dict[str, list[Any]] = {}
    for name, filing in filings.items():
        pages = filing["pages"]
        header = document_header(f"{name}.pdf", title=filing["title"], first_page=pages[0])
        chunks[name] = chunk_pages(
            list(enumerate(pages)),
            tokenizer=tokenizer,
            chunk_tokens=variant.chunk_tokens,
            overlap_tokens=variant.overlap_tokens,
            header=header,
            headings=variant.headings,
            embed_limit=variant.embed_limit,
            cross_pages=variant.cross_pages,
        )
    return chunks, time.perf_counter() - started


def populate(
    collection: Any, kb_id: str, items: Iterable[tuple[str, list[Any], np.ndarray]]
) -> None:
    from services.common.vectors import chunk_records

    for key, chunks, vectors in items:
        records = chunk_records(
            kb_id=kb_id,
            bucket="bench",
            key=key,
            etag="v1",
            chunks=chunks,
            embeddings=vectors,
            document=f"{key}.pdf",
        )
        for start in range(0, len(chunks), 4000):
            collection.upsert(
                **{name: values[start : start + 4000] for name, values in records.items()}
            )


def run_variant(
    variant: IndexVariant,
    *,
    filings: dict[str, dict[str, Any]],
    questions: list[dict[str, Any]],
    embedder: Any,
    cache: EmbeddingCache,
    client: Any,
    query_vectors: np.ndarray,
    query_variants: Sequence[QueryVariant],
    extractor: str = "service",
) -> dict[str, Any]:
    from services.rag.retrieval import (
        DEFAULT_TOKEN_PATTERN,
        SPLIT_TOKEN_PATTERN,
        BM25Indexes,
        HybridRetriever,
        RetrievalSettings,
        get_collection,
    )

    chunks, chunk_seconds = build_chunks(filings, variant, embedder.tokenizer)
    n_chunks = sum(len(c) for c in chunks.values())
    tokens = [c.token_count for cs in chunks.values() for c in cs]
    print(
        f"[{variant.name}] {n_chunks} chunks (mean {np.mean(tokens):.0f} tokens, "
        f"max {max(tokens)}) in {chunk_seconds:.1f}s",
        flush=True,
    )

    encoded_before, seconds_before = cache.encoded, cache.encode_seconds
    vectors: dict[str, np.ndarray] = {}
    for name, cs in chunks.items():
        texts = [
            c.embedding_text if variant.dense_header else replace(c, header="").embedding_text
            for c in cs
        ]
        vectors[name] = cache.encode(texts)
    fresh = cache.encoded - encoded_before
    fresh_seconds = cache.encode_seconds - seconds_before

    started = time.perf_counter()
    prefix = f"v-{variant.name}" if extractor == "pdfium" else f"v-{extractor}-{variant.name}"
    shared = get_collection(client, f"{prefix}-shared")
    if shared.count() != n_chunks:
        client.delete_collection(shared.name)
        shared = get_collection(client, f"{prefix}-shared")
        populate(shared, "shared", ((n, chunks[n], vectors[n]) for n in chunks))
    singles: dict[str, Any] = {}
    for name in sorted({q["doc_name"] for q in questions}):
        collection = get_collection(client, f"{prefix}-{name}"[:500])
        if collection.count() != len(chunks[name]):
            client.delete_collection(collection.name)
            collection = get_collection(client, f"{prefix}-{name}"[:500])
            populate(collection, name, [(name, chunks[name], vectors[name])])
        singles[name] = collection
    store_seconds = time.perf_counter() - started

    figures: dict[str, Any] = {}
    for qv in query_variants:
        settings = (
            RetrievalSettings()
            if qv.name == "chosen"
            else RetrievalSettings(
                mode=qv.mode,  # type: ignore[arg-type]
                candidates=qv.candidates,
                dense_weight=qv.dense_weight,
                bm25_weight=qv.bm25_weight,
                max_per_page=qv.max_per_page,
                bm25_header=qv.bm25_header,
                bm25_heading=qv.bm25_heading,
                bm25_token_pattern=SPLIT_TOKEN_PATTERN
                if qv.split_tokens
                else DEFAULT_TOKEN_PATTERN,
            )
        )

        def retriever(collection: Any, settings: RetrievalSettings = settings) -> HybridRetriever:
            bm25 = BM25Indexes(
                collection,
                version_of=lambda _kb: "static",
                header=settings.bm25_header,
                heading=settings.bm25_heading,
                token_pattern=settings.bm25_token_pattern,
            )
            return HybridRetriever(collection, embedder, settings=settings, bm25=bm25)

        started = time.perf_counter()
        shared_retriever = retriever(shared)
        shared_results = [
            shared_retriever.retrieve(
                q["question"], kb_ids=["shared"], k=TOP, query_embedding=query_vectors[i]
            )
            for i, q in enumerate(questions)
        ]
        single_retrievers = {name: retriever(c) for name, c in singles.items()}
        single_results = [
            single_retrievers[q["doc_name"]].retrieve(
                q["question"], kb_ids=[q["doc_name"]], k=TOP, query_embedding=query_vectors[i]
            )
            for i, q in enumerate(questions)
        ]
        seconds = time.perf_counter() - started
        if qv.name == "chosen":
            # The service's layout: one collection for every knowledge base, told apart by
            # the kb_id filter (Chroma filters inside its HNSW search), not one per filing.
            together = get_collection(client, f"{prefix}-kbs")
            if together.count() != n_chunks:
                client.delete_collection(together.name)
                together = get_collection(client, f"{prefix}-kbs")
                for name in chunks:
                    populate(together, name, [(name, chunks[name], vectors[name])])
            filtered = retriever(together)
            filtered_results = [
                filtered.retrieve(
                    q["question"], kb_ids=[q["doc_name"]], k=TOP, query_embedding=query_vectors[i]
                )
                for i, q in enumerate(questions)
            ]
            kb_filter = score(questions, filtered_results)
            print(
                f"[{variant.name}] {qv.name:18s} single by kb_id filter in one collection: "
                f"p@5 {kb_filter['page_hit@5']:.2f} d@5 {kb_filter['doc_hit@5']:.2f} "
                f"mrr {kb_filter['mrr@10']:.2f}",
                flush=True,
            )
        figures[qv.name] = {
            "shared": score(questions, shared_results),
            "single": score(questions, single_results),
            "seconds": seconds,
            "page_hits_shared": [
                any(
                    h.key == q["doc_name"]
                    and any(h.page_start <= p <= h.page_end for p in evidence_pages(q))
                    for h in r[:K]
                )
                for q, r in zip(questions, shared_results, strict=True)
            ],
        }
        if qv.name == "chosen":
            figures[qv.name]["single_kb_filter"] = kb_filter
        f = figures[qv.name]
        print(
            f"[{variant.name}] {qv.name:18s} shared p@5 {f['shared']['page_hit@5']:.2f} "
            f"d@5 {f['shared']['doc_hit@5']:.2f} mrr {f['shared']['mrr@10']:.2f} | single p@5 "
            f"{f['single']['page_hit@5']:.2f} d@5 {f['single']['doc_hit@5']:.2f} "
            f"mrr {f['single']['mrr@10']:.2f}  ({seconds:.1f}s)",
            flush=True,
        )
    return {
        "variant": asdict(variant),
        "chunks": n_chunks,
        "mean_tokens": float(np.mean(tokens)),
        "chunk_seconds": chunk_seconds,
        "embedded_fresh": fresh,
        "embed_seconds_fresh": fresh_seconds,
        "store_seconds": store_seconds,
        "figures": figures,
    }


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print()
    print(
        "| variant | query | shared p@5 | shared d@5 | shared MRR | single p@5 | single d@5 "
        "| single MRR |"
    )
    print("|---|---|---|---|---|---|---|---|")
    best: tuple[float, str] = (-1.0, "")
    for name, result in results.items():
        for query, f in result["figures"].items():
            sh, si = f["shared"], f["single"]
            print(
                f"| {name} | {query} | {sh['page_hit@5']:.2f} | {sh['doc_hit@5']:.2f} | "
                f"{sh['mrr@10']:.2f} | {si['page_hit@5']:.2f} | {si['doc_hit@5']:.2f} | "
                f"{si['mrr@10']:.2f} |"
            )
            best = max(best, (sh["page_hit@5"] + si["page_hit@5"], f"{name} / {query}"))
    print(f"\nbest (shared + single page_hit@5): {best[1]} ({best[0]:.2f})")
    final = results.get(FINAL_VARIANT, {}).get("figures", {}).get("chosen")
    if final:
        sh, si = final["shared"], final["single"]
        print(
            f"\nfinal configuration: {FINAL_VARIANT} chunks (222 word pieces = MiniLM's 256 less "
            "header room, overlap 32, document header and page heading in the embedded and "
            "BM25 text) + RetrievalSettings() (hybrid RRF, dense x2, one hit per page): "
            f"page_hit@5 {sh['page_hit@5']:.2f} shared / {si['page_hit@5']:.2f} single, "
            f"doc_hit@5 {sh['doc_hit@5']:.2f} / {si['doc_hit@5']:.2f}, "
            f"MRR@10 {sh['mrr@10']:.2f} / {si['mrr@10']:.2f}"
        )
        if "single_kb_filter" in final:
            kb = final["single_kb_filter"]
            print(
                "  single via kb_id filter in one collection (the service's layout): "
                f"page_hit@5 {kb['page_hit@5']:.2f}, doc_hit@5 {kb['doc_hit@5']:.2f}, "
                f"MRR@10 {kb['mrr@10']:.2f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/forgeline-retrieval"))  # noqa: S108
    parser.add_argument("--only", nargs="*", help="index variants to run (default: all)")
    parser.add_argument("--queries", nargs="*", help="query variants to run (default: all)")
    parser.add_argument("--fresh", action="store_true", help="recompute cached results")
    parser.add_argument(
        "--extractor",
        choices=["service", "pdfium"],
        default="service",
        help="page text from services.common.documents (default) or plain pypdfium2",
    )
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results_dir = args.work / ("results" if args.extractor == "pdfium" else "results-service")
    results_dir.mkdir(exist_ok=True)

    import chromadb
    import torch

    from services.common.embedding import Embedder

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    filings = load_filings(args.work, args.extractor)
    questions = load_questions()
    embedder = Embedder()
    cache = EmbeddingCache(args.work / "embeddings.sqlite", embedder)
    client = chromadb.PersistentClient(
        path=str(args.work / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    query_vectors = cache.encode([q["question"] for q in questions], query=True)
    query_variants = [q for q in QUERY_VARIANTS if not args.queries or q.name in args.queries]

    results: dict[str, dict[str, Any]] = {}
    for name in args.only or list(INDEX_VARIANTS):
        path = results_dir / f"{name}.json"
        earlier: dict[str, Any] = {}
        if path.exists() and not args.fresh:
            results[name] = json.loads(path.read_text())
            earlier = results[name]["figures"]
            missing = [q for q in query_variants if q.name not in earlier]
            if not missing:
                continue
        results[name] = run_variant(
            INDEX_VARIANTS[name],
            filings=filings,
            questions=questions,
            embedder=embedder,
            cache=cache,
            client=client,
            query_vectors=query_vectors,
            query_variants=[q for q in query_variants if q.name not in earlier],
            extractor=args.extractor,
        )
        results[name]["figures"] = earlier | results[name]["figures"]
        path.write_text(json.dumps(results[name]))
        r = results[name]
        if r["embedded_fresh"]:
            print(
                f"[{name}] embedded {r['embedded_fresh']} new chunks in "
                f"{r['embed_seconds_fresh']:.0f}s "
                f"({r['embedded_fresh'] / r['embed_seconds_fresh']:.1f}/s); "
                f"Chroma upserts {r['store_seconds']:.1f}s",
                flush=True,
            )
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
