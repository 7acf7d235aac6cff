"""FinanceBench retrieval through the real platform: page hit@k, doc hit@k and MRR.

Starts the platform as `make run` does (its own ports and a temporary data folder), signs a
user in, creates the knowledge base(s) and uploads the filings through the gateway. That
writes them to the bucket; the indexer picks them up from the gateway's `ObjectChanged` call
and the bucket event, extracts, chunks, embeds (all-MiniLM-L6-v2, the default) and writes
Chroma. Once every document is `indexed` (a `failed` one stops the run, with its reason),
every question is asked through `POST /api/v1/kbs/{id}/retrieve` with `k`.

- shared: all filings in one knowledge base;
- single: one knowledge base per filing, each question asked of its own filing's.

Page hit@k: one of the top k chunks comes from an evidence document and spans an evidence
page (`page_index` is 0-based, as pypdf counts). Doc hit@k: one comes from an evidence
document. MRR: mean of 1 / rank of the first page hit in the top k (0 when there is none).

    .venv/bin/python -m bench.rag_financebench [--data ../shared/data/financebench]
        [--mode shared|single] [--k 5] [--limit N] [--only-needed] [--keep-data DIR]

Any folder of the same format works: `pdfs/` (the filings) and `questions.jsonl` (`id`,
`doc_name`, `question`, `evidence: [{doc_name, page_index}]`). `--limit N` asks only the
first N questions; in single mode only their filings get a knowledge base, in shared mode
all filings are still indexed unless `--only-needed` (fewer distractors: easier figures).
`--keep-data DIR` keeps the platform's data folder there: a second run with another k (or
the other mode) finds its knowledge bases indexed already and skips the indexing.

A table per question goes to stderr; the last line on stdout is one JSON object with
`page_hit@<k>`, `doc_hit@<k>`, `mrr`, `questions`, `index_seconds` and `chunks`.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.servers.platform import REPO, Platform, platform_env, run_platform

DEFAULT_DATA = REPO.parent / "shared" / "data" / "financebench"
EMAIL = "bench@example.com"
PASSWORD = "retrieval measured page by page"  # noqa: S105 (a throwaway local account)
START_ATTEMPTS = 3
START_TIMEOUT = 240  # seconds; a normal start takes 15-30 s on a busy 2-core machine


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# --- The data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    id: str
    doc_name: str
    question: str
    evidence: tuple[tuple[str, int], ...]  # (doc_name, 0-based page index)


def load_questions(data: Path) -> list[Question]:
    questions = []
    for line in (data / "questions.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        evidence = tuple(
            (str(e["doc_name"]), int(e["page_index"])) for e in row.get("evidence") or []
        )
        questions.append(
            Question(
                id=str(row["id"]),
                doc_name=str(row.get("doc_name") or (evidence[0][0] if evidence else "")),
                question=str(row["question"]),
                evidence=evidence,
            )
        )
    return questions


def load_filings(data: Path) -> dict[str, Path]:
    """doc_name (file name without extension) -> file, for every file under `pdfs/`."""
    files = sorted(p for p in (data / "pdfs").iterdir() if p.is_file())
    if not files:
        raise SystemExit(f"no filings under {data / 'pdfs'}")
    return {p.stem: p for p in files}


# --- The platform's REST API ---------------------------------------------------------------


class Api:
    """The gateway, as one signed-in user (an API key: access tokens last 15 minutes)."""

    def __init__(self, url: str, *, email: str = EMAIL, password: str = PASSWORD) -> None:
        self.http = httpx.Client(base_url=url, timeout=300)
        registered = self.http.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        if registered.status_code not in (201, 409):  # 409: a kept data folder knows us
            raise RuntimeError(f"register: {registered.status_code} {registered.text}")
        login = self.http.post("/api/v1/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        self.user_id = str(login.json()["user"]["id"])
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        key = self.http.post("/api/v1/api-keys", json={"name": "bench"}, headers=bearer)
        key.raise_for_status()
        self.headers = {"Authorization": f"Bearer {key.json()['key']}"}

    def _check(self, response: httpx.Response, *expected: int) -> Any:
        if response.status_code not in expected:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text[:500]}"
            )
        return response.json() if response.content else None

    def knowledge_bases(self) -> list[dict[str, Any]]:
        reply = self.http.get("/api/v1/kbs", headers=self.headers)
        return list(self._check(reply, 200)["data"])

    def knowledge_base(self, name: str) -> tuple[dict[str, Any], bool]:
        """The knowledge base called `name`, created if needed; True when it was created."""
        reply = self.http.post("/api/v1/kbs", json={"name": name}, headers=self.headers)
        if reply.status_code == 409:
            return next(kb for kb in self.knowledge_bases() if kb["name"] == name), False
        return self._check(reply, 201), True

    def upload(self, kb_id: str, files: Iterable[Path]) -> dict[str, Any]:
        reply = self.http.post(
            f"/api/v1/kbs/{kb_id}/documents",
            files=[("files", (p.name, p.read_bytes())) for p in files],
            headers=self.headers,
        )
        result = self._check(reply, 201)
        refused = [f for f in result["data"] if f.get("error")]
        if refused:
            raise RuntimeError(f"upload refused: {refused}")
        return dict(result)

    def documents(self, kb_id: str) -> list[dict[str, Any]]:
        reply = self.http.get(f"/api/v1/kbs/{kb_id}/documents", headers=self.headers)
        return list(self._check(reply, 200)["data"])

    def retrieve(self, kb_id: str, query: str, k: int) -> tuple[list[dict[str, Any]], float]:
        started = time.perf_counter()
        reply = self.http.post(
            f"/api/v1/kbs/{kb_id}/retrieve", json={"query": query, "k": k}, headers=self.headers
        )
        elapsed = time.perf_counter() - started
        return list(self._check(reply, 200)["data"]), elapsed


def wait_indexed(
    api: Api, expected: dict[str, set[str]], *, timeout: float, interval: float = 1.0
) -> dict[str, dict[str, dict[str, Any]]]:
    """Poll each knowledge base's documents until every expected name is `indexed`.

    `expected`: kb id -> document names. Raises SystemExit naming every `failed` document
    and its reason, or the ones still not indexed at the deadline.
    """
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, dict[str, Any]]] = {}
    last_report = time.monotonic()
    total = sum(len(names) for names in expected.values())
    while True:
        states: dict[str, dict[str, dict[str, Any]]] = dict(done)
        for kb_id, names in expected.items():
            if kb_id in done:
                continue
            by_name = {d["name"]: d for d in api.documents(kb_id)}
            states[kb_id] = by_name
            failed = [by_name[n] for n in names if by_name.get(n, {}).get("state") == "failed"]
            if failed:
                reasons = "; ".join(f"{d['name']}: {d['failure']}" for d in failed)
                raise SystemExit(f"documents failed to index: {reasons}")
            if all(by_name.get(n, {}).get("state") == "indexed" for n in names):
                done[kb_id] = by_name
        if len(done) == len(expected):
            return done
        indexed = sum(
            1
            for kb_id, names in expected.items()
            for n in names
            if states.get(kb_id, {}).get(n, {}).get("state") == "indexed"
        )
        if time.monotonic() > deadline:
            missing = [
                f"{n} ({states.get(kb_id, {}).get(n, {}).get('state', 'absent')})"
                for kb_id, names in expected.items()
                for n in names
                if states.get(kb_id, {}).get(n, {}).get("state") != "indexed"
            ]
            raise SystemExit(f"not indexed after {timeout:.0f}s: {', '.join(missing)}")
        if time.monotonic() - last_report > 30:
            chunks = sum(d.get("chunks", 0) for docs in states.values() for d in docs.values())
            log(f"  ... {indexed}/{total} documents indexed, {chunks} chunks")
            last_report = time.monotonic()
        time.sleep(interval)


class Terminated(Exception):
    """SIGTERM arrived. An Exception, so that `run_platform` stops a platform still starting."""


_terminated: list[int] = []


def _terminate(signum: int, frame: object) -> None:
    _terminated.append(signum)
    raise Terminated(f"signal {signum}")


@contextmanager
def platform(keep_data: str | None, **env: str) -> Iterator[Platform]:
    """The platform, on a temporary data folder or on `keep_data` (kept afterwards).

    SIGTERM ends the benchmark like Ctrl-C does, through the cleanup that stops the
    platform: the supervisor runs in its own session and would otherwise outlive us."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    with ExitStack() as stack:
        stack.callback(signal.signal, signal.SIGTERM, previous)
        if keep_data:
            data_dir = Path(keep_data).resolve()
        else:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fl-bench-")))
            data_dir = data_dir / "data"
        started = time.perf_counter()
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                running = stack.enter_context(
                    run_platform(data_dir, platform_env(data_dir, **env), timeout=START_TIMEOUT)
                )
                break
            except RuntimeError as error:
                if _terminated:
                    raise SystemExit(128 + _terminated[0]) from error
                if attempt == START_ATTEMPTS:
                    raise
                # Seen: the supervisor hanging in fork() (gRPC's atfork handler) while it
                # starts the Celery worker; a fresh start gets past it.
                log(f"platform did not start (attempt {attempt}): {str(error).splitlines()[0]}")
        if _terminated:  # arrived while starting, and swallowed by a readiness check
            raise SystemExit(128 + _terminated[0])
        log(f"platform up in {time.perf_counter() - started:.1f}s at {running.url} ({data_dir})")
        try:
            yield running
        finally:
            problems = [
                line
                for line in running.logs().splitlines()
                if '"level": "error"' in line
                or '"level": "critical"' in line
                or "Traceback" in line
            ]
            if problems:
                log(f"{len(problems)} error lines in the platform's logs; the last ones:")
                for line in problems[-10:]:
                    log("  " + line[:400])


# --- The benchmark --------------------------------------------------------------------------


def index_filings(
    api: Api, plan: dict[str, list[Path]], *, timeout: float
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]], float, bool]:
    """Create the knowledge bases of `plan` (name -> files), upload what they do not hold
    yet, wait until all is indexed. Returns the knowledge bases by name, their documents,
    the seconds from the first upload to all indexed, and whether anything was uploaded."""
    kbs: dict[str, dict[str, Any]] = {}
    uploads: list[tuple[str, list[Path]]] = []
    for name, files in plan.items():
        kb, created = api.knowledge_base(name)
        kbs[name] = kb
        present = set() if created else {d["name"] for d in api.documents(kb["id"])}
        missing = [p for p in files if p.name not in present]
        if missing:
            uploads.append((kb["id"], missing))
    started = time.perf_counter()
    for kb_id, files in uploads:
        for path in files:  # one request per file, as a person dropping files would
            api.upload(kb_id, [path])
    uploaded_in = time.perf_counter() - started
    expected = {kbs[name]["id"]: {p.name for p in files} for name, files in plan.items()}
    docs = wait_indexed(api, expected, timeout=timeout)
    seconds = time.perf_counter() - started
    if uploads:
        count = sum(len(files) for _, files in uploads)
        log(f"uploaded {count} files in {uploaded_in:.1f}s; all indexed after {seconds:.1f}s")
    else:
        log(f"nothing to upload (kept data folder); all indexed after {seconds:.1f}s")
    return kbs, docs, seconds, bool(uploads)


def score(question: Question, hits: list[dict[str, Any]]) -> tuple[int | None, bool]:
    """(1-based rank of the first page hit or None, whether any hit is an evidence doc)."""
    evidence_docs = {doc for doc, _ in question.evidence}
    first: int | None = None
    for rank, hit in enumerate(hits, 1):
        doc = Path(hit["document"]).stem
        start, end = int(hit["page_index_start"]), int(hit["page_index_end"])
        if any(doc == d and start <= page <= end for d, page in question.evidence):
            first = rank
            break
    doc_hit = any(Path(hit["document"]).stem in evidence_docs for hit in hits)
    return first, doc_hit


def _shown(question: Question, hit: dict[str, Any]) -> str:
    doc = Path(hit["document"]).stem
    start, end = hit["page_index_start"], hit["page_index_end"]
    pages = f"{start}" if start == end else f"{start}-{end}"
    return pages if doc == question.doc_name else f"{doc[:14]}:{pages}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--mode", choices=("shared", "single"), default="shared")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N questions")
    parser.add_argument(
        "--only-needed", action="store_true", help="shared mode: index only the asked filings"
    )
    parser.add_argument("--keep-data", metavar="DIR", help="keep (and reuse) the data folder")
    parser.add_argument(
        "--index-timeout", type=float, default=3600, help="seconds to wait for indexing"
    )
    args = parser.parse_args()

    data = args.data.resolve()
    filings = load_filings(data)
    questions = load_questions(data)[: args.limit]
    unknown = {d for q in questions for d, _ in q.evidence if d not in filings}
    unknown |= {q.doc_name for q in questions if q.doc_name not in filings}
    if unknown:
        raise SystemExit(f"questions name filings missing from {data / 'pdfs'}: {sorted(unknown)}")
    needed = sorted({q.doc_name for q in questions} | {d for q in questions for d, _ in q.evidence})
    wall = time.perf_counter()

    def kb_name(doc_name: str) -> str:
        """The knowledge base a question about `doc_name` is asked of."""
        return f"{data.name}-shared" if args.mode == "shared" else f"{data.name}-{doc_name}"[:100]

    if args.mode == "shared":
        files = [filings[d] for d in needed] if args.only_needed else list(filings.values())
        plan = {kb_name(""): files}
    else:
        plan = {kb_name(d): [filings[d]] for d in needed}

    with platform(args.keep_data) as running:
        api = Api(running.url)
        kbs, docs, index_seconds, fresh = index_filings(api, plan, timeout=args.index_timeout)
        chunks = sum(d["chunks"] for by_name in docs.values() for d in by_name.values())
        pages = sum(d["pages"] for by_name in docs.values() for d in by_name.values())
        log(f"{len(kbs)} knowledge base(s), {pages} pages, {chunks} chunks")

        ranks: list[int | None] = []
        doc_hits: list[bool] = []
        latencies: list[float] = []
        log(f"{'question':<22} {'filing':<34} {'evidence':<9} {'rank':>4}  top {args.k}")
        for question in questions:
            hits, seconds = api.retrieve(
                kbs[kb_name(question.doc_name)]["id"], question.question, args.k
            )
            rank, doc_hit = score(question, hits)
            ranks.append(rank)
            doc_hits.append(doc_hit)
            latencies.append(seconds)
            evidence = ",".join(str(p) for d, p in question.evidence if d == question.doc_name)
            log(
                f"{question.id:<22} {question.doc_name[:34]:<34} {evidence:<9} "
                f"{rank or '-':>4}  {' '.join(_shown(question, h) for h in hits)}"
            )

    n = len(questions)
    result = {
        "benchmark": "rag_financebench",
        "data": str(data),
        "mode": args.mode,
        "k": args.k,
        "embedding_model": kbs[next(iter(kbs))]["embedding_model"],
        f"page_hit@{args.k}": round(sum(r is not None for r in ranks) / n, 4) if n else 0.0,
        f"doc_hit@{args.k}": round(sum(doc_hits) / n, 4) if n else 0.0,
        "mrr": round(sum(1 / r for r in ranks if r) / n, 4) if n else 0.0,
        "questions": n,
        "filings": sum(len(files) for files in plan.values()),
        "knowledge_bases": len(kbs),
        "index_seconds": round(index_seconds, 1) if fresh else None,
        "indexed_now": fresh,
        "chunks": chunks,
        "pages": pages,
        "retrieve_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "retrieve_p95_ms": round(percentile(latencies, 0.95) * 1000, 1) if latencies else None,
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
