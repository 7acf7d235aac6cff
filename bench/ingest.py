"""Ingest throughput and freshness of the knowledge-base indexer, on the real platform.

Starts the platform as `make run` does, creates a knowledge base and uploads `--docs` filings
(the first N FinanceBench PDFs by name) through the gateway, one request per file. Then:

- end to end: chunks per second from the first upload to every document `indexed` (bucket
  write, event, queue, extraction, chunking, embedding, Chroma upsert);
- raw: the same embedding model loaded in this process (`services.common.embedding.
  Embedder`), timed on `encode()` of the very same chunk texts, batched as the indexer
  batches them (per document, 4 x `embed_batch_size` texts per call), once before the
  uploads and once after indexing (the mean counts: load on a shared machine drifts). The
  texts come from the indexer's own extraction and chunking code run here, checked equal to
  the chunk texts in the platform's Chroma afterwards (`texts_match_index`; the index stores
  the text without the header the embedder saw, so they cannot be taken from Chroma alone);
- `ingest_ratio` = end-to-end chunks/s / raw chunks/s (goal >= 0.7);
- freshness: `--puts` small text documents put one at a time straight into the bucket with
  boto3 (no gateway: the bucket event alone must bring them in), each polled through
  `/retrieve` for a word it alone holds; seconds from the put to the first answer that has
  it (the query is the document's text; see `freshness`). Goal: p95 <= 3 s plus the
  embedding time of such a document (`small_doc_embed_ms`).

    .venv/bin/python -m bench.ingest [--docs 3] [--puts 10] [--data ../shared/data/financebench]

The last line printed is one JSON object. With 10 puts, p95 is the slowest put.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import time
from pathlib import Path
from typing import Any

import chromadb

from bench.rag_financebench import (
    DEFAULT_DATA,
    Api,
    load_filings,
    log,
    percentile,
    platform,
    wait_indexed,
)
from services.common import vectors
from services.common.documents import extract
from services.common.embedding import Embedder
from services.indexer.chunking import Chunk, chunk_pages, document_header
from services.indexer.settings import IndexerSettings
from tests.integration.kb_helpers import platform_s3


def chunk_like_the_indexer(
    name: str, data: bytes, embedder: Embedder, kb: dict[str, Any]
) -> list[Chunk]:
    """What `services.indexer.sync.Syncer._index` makes of one file."""
    document = extract(name, data)
    pages = [(page.index, page.text) for page in document.pages]
    header = document_header(
        name, title=document.title or "", first_page=pages[0][1] if pages else ""
    )
    return chunk_pages(
        pages,
        tokenizer=embedder.tokenizer,
        chunk_tokens=int(kb["chunking"]["chunk_tokens"]),
        overlap_tokens=int(kb["chunking"]["overlap_tokens"]),
        header=header,
        embed_limit=embedder.max_tokens,
    )


def indexed_texts(collection: Any, kb_id: str, key: str) -> list[str]:
    """The chunk texts of one document in the platform's Chroma, in chunk order."""
    got = collection.get(
        where={"$and": [{vectors.KB_ID: kb_id}, {vectors.KEY: key}]},
        include=["documents", "metadatas"],
    )
    rows = sorted(
        zip(got["metadatas"], got["documents"], strict=True),
        key=lambda row: int(row[0][vectors.CHUNK_INDEX]),
    )
    return [text for _, text in rows]


def freshness(api: Api, s3: Any, kb: dict[str, Any], puts: int, timeout: float) -> list[float]:
    """Seconds from each put to the first `/retrieve` answer holding its unique word.

    The query is the document's own text, not the word alone: a chunk that only BM25 finds
    ranks below the dense side's top candidates in the fusion (dense counts twice), so a
    lone nonsense word may never reach the top k however fresh the index is. With the text
    as the query both sides put the new document first; k leaves room for the earlier
    probes, which read almost the same.
    """
    seconds: list[float] = []
    k = min(50, puts + 5)
    for i in range(puts):
        word = "".join(random.choice(string.ascii_lowercase) for _ in range(14))
        body = (
            f"Freshness probe {i}.\n\nThe quarterly memo mentions the codeword {word} once, "
            "next to the cafeteria menu and the parking rules."
        )
        key = f"{kb['prefix']}fresh-{i:02d}.txt"
        started = time.perf_counter()
        s3.put_object(Bucket=kb["bucket"], Key=key, Body=body.encode())
        while True:
            hits, _ = api.retrieve(kb["id"], body, k)
            elapsed = time.perf_counter() - started
            if any(word in hit["snippet"] for hit in hits):
                break
            if elapsed > timeout:
                raise SystemExit(f"put {i} ({key}) not retrievable after {timeout:.0f}s")
            time.sleep(0.1)
        seconds.append(elapsed)
        log(f"  put {i}: retrievable after {elapsed:.2f}s")
    return seconds


def raw_encode(embedder: Embedder, texts: list[list[str]], batch: int) -> float:
    """Seconds to encode every document's texts as the indexer does: per document,
    4 x `batch` texts per `encode()` call."""
    began = time.perf_counter()
    for doc_texts in texts:
        for start in range(0, len(doc_texts), batch * 4):
            embedder.encode(doc_texts[start : start + batch * 4], batch_size=batch)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=3, help="filings to upload (first N by name)")
    parser.add_argument("--puts", type=int, default=10, help="small documents for freshness")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for indexing")
    args = parser.parse_args()
    files = list(load_filings(args.data.resolve()).values())[: args.docs]
    batch = IndexerSettings().embed_batch_size

    with platform(None) as running:
        api = Api(running.url)
        kb, _ = api.knowledge_base("ingest")
        embedder = Embedder(kb["embedding_model"])
        embedder.encode(["warm-up", "the model is loaded before timing"], batch_size=batch)
        began = time.perf_counter()
        own = {p.name: chunk_like_the_indexer(p.name, p.read_bytes(), embedder, kb) for p in files}
        chunk_seconds = time.perf_counter() - began
        texts = [[c.embedding_text for c in chunks] for chunks in own.values()]
        raw_chunks = sum(len(t) for t in texts)
        # Raw encode before and after the end-to-end run, so that a shared machine's load
        # drifting during the run weighs on both sides alike.
        raw_before = raw_encode(embedder, texts, batch)
        log(f"raw encode (before): {raw_chunks} chunks in {raw_before:.1f}s")

        started = time.perf_counter()
        for path in files:
            api.upload(kb["id"], [path])
        names = {p.name for p in files}
        docs = wait_indexed(api, {kb["id"]: names}, timeout=args.timeout, interval=0.25)[kb["id"]]
        e2e_seconds = time.perf_counter() - started
        chunks = sum(d["chunks"] for d in docs.values())
        pages = sum(d["pages"] for d in docs.values())
        log(f"{len(files)} documents, {pages} pages, {chunks} chunks in {e2e_seconds:.1f}s")

        raw_after = raw_encode(embedder, texts, batch)
        log(f"raw encode (after): {raw_chunks} chunks in {raw_after:.1f}s")
        chroma = chromadb.HttpClient(
            host="127.0.0.1", port=int(running.env["EMBEDDED_CHROMA_PORT"])
        )
        collection = chroma.get_collection(vectors.collection_name(kb["embedding_model"]))
        match = True
        for name, mine in own.items():
            stored = indexed_texts(collection, kb["id"], docs[name]["key"])
            if [c.text for c in mine] != stored:
                match = False
                log(f"  {name}: chunks here differ from the index ({len(mine)}/{len(stored)})")

        log(f"freshness: {args.puts} puts straight into the bucket")
        fresh = freshness(api, platform_s3(running), kb, args.puts, timeout=120)
        probe = chunk_pages(
            [(0, "Freshness probe 0.\n\nThe quarterly memo mentions the codeword x once.")],
            tokenizer=embedder.tokenizer,
            chunk_tokens=int(kb["chunking"]["chunk_tokens"]),
            header=document_header("fresh-00.txt"),
            embed_limit=embedder.max_tokens,
        )
        embed_ms = []
        for _ in range(5):
            began = time.perf_counter()
            embedder.encode([c.embedding_text for c in probe], batch_size=batch)
            embed_ms.append((time.perf_counter() - began) * 1000)

    e2e_rate = chunks / e2e_seconds
    raw_seconds = (raw_before + raw_after) / 2
    raw_rate = raw_chunks / raw_seconds
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "embedding_model": kb["embedding_model"],
                "documents": [p.name for p in files],
                "pages": pages,
                "chunks": chunks,
                "e2e_seconds": round(e2e_seconds, 1),
                "e2e_chunks_per_s": round(e2e_rate, 2),
                "raw_encode_seconds": round(raw_seconds, 1),
                "raw_encode_seconds_before_after": [round(raw_before, 1), round(raw_after, 1)],
                "raw_chunks_per_s": round(raw_rate, 2),
                "ingest_ratio": round(e2e_rate / raw_rate, 3),
                "extract_chunk_seconds": round(chunk_seconds, 1),
                "texts_match_index": match,
                "freshness_puts": len(fresh),
                "freshness_p50_s": round(statistics.median(fresh), 2),
                "freshness_p95_s": round(percentile(fresh, 0.95), 2),
                "freshness_max_s": round(max(fresh), 2),
                "small_doc_embed_ms": round(statistics.median(embed_ms), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
