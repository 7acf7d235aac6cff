"""A file whose reading kills the indexing worker (out of memory, say) is not read again and
again: each worker that starts re-queues pending documents, so without a limit the file
would stop every next worker, until the supervisor gives up on the platform. After
READINGS_ALLOWED dead workers it fails with a reason; a new version is read again."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, select

from services.common.db import create_db_engine
from services.indexer.models import Document
from services.indexer.settings import IndexerSettings
from services.indexer.sync import READINGS_ALLOWED
from tests.integration.conftest import Stack
from tests.integration.kb_helpers import platform_s3
from tests.paths import REPO_ROOT

# One indexing worker's life: it syncs the document; with "die", reading the file kills the
# process outright, as the kernel's OOM killer would (no exception, no cleanup).
WORKER = """
import json, os, signal, sys
from services.common.db import create_db_engine, run_migrations
from services.common.embedding import DEFAULT_MODEL
from services.common.storage import attached_bucket_policy, s3_client
from services.common.vectors import chroma_client
from services.indexer import sync
from services.indexer.keys import ObjectRef
from services.indexer.server import MIGRATIONS, VERSION_TABLE
from services.indexer.settings import IndexerSettings
from services.indexer.sources import KnowledgeBaseSource

settings = IndexerSettings()
engine = create_db_engine(settings)
run_migrations(engine, MIGRATIONS, VERSION_TABLE)
syncer = sync.Syncer(engine=engine, s3=s3_client(settings), chroma=chroma_client(settings),
                     max_document_bytes=settings.max_document_bytes,
                     bucket_policy=attached_bucket_policy(settings))
if sys.argv[1] == "die":
    sync.extract = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
bucket, key = sys.argv[2], sys.argv[3]
kb = KnowledgeBaseSource(id="kb1", owner_id="u1", embedding_model=DEFAULT_MODEL,
                         chunk_tokens=200, overlap_tokens=20, bucket=bucket, prefix="")
print(json.dumps(syncer.sync_object(ObjectRef(bucket, key, "u1", "kb1"), kb).state))
"""


def _worker(
    stack: Stack, data_dir: Path, mode: str, bucket: str, key: str
) -> subprocess.CompletedProcess[str]:
    s3 = platform_s3(stack.platform)  # the stack's object store, with its keys
    credentials = s3._request_signer._credentials
    env = {
        **os.environ,
        "FORGELINE_DATA_DIR": str(data_dir),  # its own SQLite database and Chroma folder
        "S3_ENDPOINT_URL": s3.meta.endpoint_url,
        "S3_ACCESS_KEY_ID": credentials.access_key,
        "S3_SECRET_ACCESS_KEY": credentials.secret_key,
        "HF_HUB_OFFLINE": "1",
    }
    for name in ("DATABASE_URL", "CHROMA_URL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", WORKER, mode, bucket, key],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _row(data_dir: Path) -> Document:
    engine = create_db_engine(IndexerSettings(data_dir=data_dir))
    with Session(engine) as db:
        [row] = db.exec(select(Document)).all()
    engine.dispose()
    return row


def test_a_file_that_kills_its_workers_fails_instead_of_looping(
    stack: Stack, tmp_path: Path
) -> None:
    s3 = platform_s3(stack.platform)
    bucket = stack.platform.env.get("S3_BUCKET", "forgeline")
    key = f"crash-probe-{secrets.token_hex(4)}/poison.txt"  # outside any knowledge base
    s3.put_object(Bucket=bucket, Key=key, Body=b"Reading this kills the worker.")

    for death in range(1, READINGS_ALLOWED + 1):
        died = _worker(stack, tmp_path, "die", bucket, key)
        assert died.returncode == -9, died.stderr[-2000:]
        assert _row(tmp_path).reading_attempts == death
    # The next worker does not read it again: the file fails, saying why.
    given_up = _worker(stack, tmp_path, "die", bucket, key)
    assert given_up.returncode == 0, given_up.stderr[-2000:]
    assert given_up.stdout.splitlines()[-1] == '"failed"'  # the last line: logs come first
    row = _row(tmp_path)
    assert row.state == "failed" and row.failure_code == "indexing_stopped_worker"
    assert f"stopped the indexing worker {READINGS_ALLOWED} times" in (row.failure_reason or "")

    # A new version is read again, by a worker that survives it.
    s3.put_object(Bucket=bucket, Key=key, Body=b"A harmless second version.")
    indexed = _worker(stack, tmp_path, "live", bucket, key)
    assert indexed.stdout.splitlines()[-1] == '"indexed"', indexed.stderr[-2000:]
    row = _row(tmp_path)
    assert row.state == "indexed" and row.reading_attempts == 0 and row.chunks >= 1
