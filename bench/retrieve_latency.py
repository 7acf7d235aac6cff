"""Retrieve latency at 20k chunks, through the real gateway and RAG service.

Indexing 20,000 chunks of real PDFs takes far too long on a small machine, so this writes
them straight into the platform's Chroma collection, with the metadata contract the indexer
writes (`services.common.vectors` keys, ids from `vectors.chunk_id`) under a knowledge base
created through the API first, so ids, owner and key prefix are real:

- chunk texts are FinanceBench pages cut by the indexer's own extraction and chunking code,
  with the document header the indexer puts in front; records are made by
  `vectors.chunk_records`, the one writer the indexer uses too;
- `--embedded` of them (spread evenly over all filings) are embedded here for real, with the
  knowledge base's model; to reach `--chunks`, the rest are copies of those: each copy is
  its own document (`<filing>-copyNN.pdf`), same text, the vector nudged by small Gaussian
  noise and normalised again (cosine ~0.99 to its original), so that HNSW never sees
  exact duplicates. The JSON says how many chunks are real and how many are copies.

Then `/api/v1/kbs/{id}/retrieve` is timed for `--queries` FinanceBench questions (cycled),
one at a time. The first query is reported on its own: it builds the knowledge base's BM25
index from all its chunks (cold), which later queries reuse. `id_listing_ms` is what the
BM25 freshness check costs each query: listing the ids of all the knowledge base's chunks
in Chroma, timed here directly.

    .venv/bin/python -m bench.retrieve_latency [--chunks 20000] [--embedded 2000]
        [--queries 100] [--k 5]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

import chromadb
import numpy as np

from bench.ingest import chunk_like_the_indexer
from bench.rag_financebench import (
    DEFAULT_DATA,
    Api,
    load_filings,
    load_questions,
    log,
    percentile,
    platform,
)
from services.common import vectors
from services.common.embedding import Embedder
from services.indexer.chunking import Chunk
from services.indexer.settings import IndexerSettings

NOISE = 0.005  # per dimension; for 384 dimensions a nudge of norm ~0.1


def real_chunks(
    files: list[Path], embedder: Embedder, kb: dict[str, Any]
) -> list[tuple[str, Chunk]]:
    out: list[tuple[str, Chunk]] = []
    for path in files:
        out += [
            (path.name, c)
            for c in chunk_like_the_indexer(path.name, path.read_bytes(), embedder, kb)
        ]
    return out


def write_chunks(
    collection: Any,
    kb: dict[str, Any],
    base: list[tuple[str, Chunk]],
    embeddings: np.ndarray,
    total: int,
    *,
    seed: int = 0,
) -> int:
    """Upsert `total` chunks: `base` as they are, then noisy copies of them, each copy its
    own document. Records are made by `vectors.chunk_records`, as the indexer makes them.
    Returns how many are copies."""
    rng = np.random.default_rng(seed)
    documents: dict[str, tuple[list[Chunk], list[np.ndarray]]] = {}
    written = copies = 0
    round_ = 0
    while written < total:
        for (name, chunk), vector in zip(base, embeddings, strict=True):
            if written == total:
                break
            if round_:
                stem, dot, ext = name.rpartition(".")
                name = f"{stem}-copy{round_:02d}{dot}{ext}"
                noisy = vector + rng.normal(0.0, NOISE, vector.shape).astype(np.float32)
                vector = noisy / np.linalg.norm(noisy)
                copies += 1
            chunks, rows = documents.setdefault(name, ([], []))
            chunks.append(chunk)
            rows.append(vector)
            written += 1
        round_ += 1
    for name, (chunks, rows) in documents.items():
        key = kb["prefix"] + name
        etag = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
        for start in range(0, len(chunks), 1000):
            collection.upsert(
                **vectors.chunk_records(
                    kb_id=kb["id"],
                    bucket=kb["bucket"],
                    key=key,
                    etag=etag,
                    chunks=chunks[start : start + 1000],
                    embeddings=np.stack(rows[start : start + 1000]).tolist(),
                    document=name,
                )
            )
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--embedded", type=int, default=2000, help="chunks embedded for real")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    data = args.data.resolve()
    files = list(load_filings(data).values())
    questions = [q.question for q in load_questions(data)]
    batch = IndexerSettings().embed_batch_size

    with platform(None) as running:
        api = Api(running.url)
        kb, _ = api.knowledge_base("latency")
        embedder = Embedder(kb["embedding_model"])

        began = time.perf_counter()
        chunks = real_chunks(files, embedder, kb)
        seconds = time.perf_counter() - began
        log(f"{len(chunks)} real chunks from {len(files)} filings in {seconds:.1f}s")
        wanted = min(args.embedded, len(chunks), args.chunks)
        picks = np.linspace(0, len(chunks) - 1, wanted).round().astype(int)
        base = [chunks[i] for i in dict.fromkeys(picks.tolist())]
        began = time.perf_counter()
        embeddings = embedder.encode([c.embedding_text for _, c in base], batch_size=batch)
        embed_seconds = time.perf_counter() - began
        log(f"embedded {len(base)} chunks in {embed_seconds:.1f}s")

        chroma = chromadb.HttpClient(
            host="127.0.0.1", port=int(running.env["EMBEDDED_CHROMA_PORT"])
        )
        collection = vectors.get_collection(chroma, kb["embedding_model"])
        began = time.perf_counter()
        copies = write_chunks(collection, kb, base, embeddings, args.chunks)
        write_seconds = time.perf_counter() - began
        stored = len(collection.get(where={vectors.KB_ID: kb["id"]}, include=[])["ids"])
        log(f"wrote {stored} chunks ({copies} copies) to Chroma in {write_seconds:.1f}s")
        if stored != args.chunks:
            raise SystemExit(
                f"Chroma holds {stored} chunks of the knowledge base, not {args.chunks}"
            )

        # What every Retrieve pays before searching: the BM25 freshness check lists the ids
        # of all the knowledge base's chunks (`fingerprint_version`).
        listing = []
        for _ in range(5):
            began = time.perf_counter()
            collection.get(where={vectors.KB_ID: kb["id"]}, include=[])
            listing.append((time.perf_counter() - began) * 1000)

        errors: list[str] = []

        def timed(query: str) -> float | None:
            try:
                hits, seconds = api.retrieve(kb["id"], query, args.k)
            except RuntimeError as error:
                errors.append(str(error)[:200])
                log(f"  error: {str(error)[:200]}")
                return None
            if not hits:
                errors.append(f"no hits for {query[:60]!r}")
            return seconds

        cold = timed(questions[0])
        log(f"first (cold) query: {cold}")
        latencies = [
            s
            for i in range(1, args.queries + 1)
            if (s := timed(questions[i % len(questions)])) is not None
        ]

    ms = [s * 1000 for s in latencies]
    print(
        json.dumps(
            {
                "benchmark": "retrieve_latency",
                "embedding_model": kb["embedding_model"],
                "chunks": stored,
                "embedded_chunks": len(base),
                "replicated_chunks": copies,
                "replication": f"copies of the embedded chunks, vectors + N(0, {NOISE}) noise",
                "k": args.k,
                "queries": len(ms),
                "cold_first_ms": round(cold * 1000, 1) if cold is not None else None,
                "p50_ms": round(statistics.median(ms), 1) if ms else None,
                "p95_ms": round(percentile(ms, 0.95), 1) if ms else None,
                "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
                "max_ms": round(max(ms), 1) if ms else None,
                "errors": len(errors),
                "embed_chunks_per_s": round(len(base) / embed_seconds, 1),
                "write_seconds": round(write_seconds, 1),
                "id_listing_ms": round(statistics.median(listing), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
