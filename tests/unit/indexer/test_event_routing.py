"""Which knowledge bases a bucket event is routed to, as attachments come and go."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.common.crypto import SecretBox
from services.common.settings import BaseServiceSettings
from services.indexer import knowledge_bases
from services.indexer.knowledge_bases import KnowledgeBaseDirectory
from services.indexer.sources import BucketAccess, KnowledgeBaseSource

OWNER, KB = "a" * 32, "b" * 32


def attached(kb_id: str, prefix: str = "docs/") -> KnowledgeBaseSource:
    return KnowledgeBaseSource(
        id=kb_id,
        owner_id=OWNER,
        embedding_model="all-MiniLM-L6-v2",
        chunk_tokens=222,
        overlap_tokens=0,
        bucket="acme",
        prefix=prefix,
        access=BucketAccess(None, None, "AKIA", "secret"),
    )


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> tuple[KnowledgeBaseDirectory, list[int]]:
    settings = BaseServiceSettings(secret_key=SecretStr(Fernet.generate_key().decode()))
    found = KnowledgeBaseDirectory(
        "127.0.0.1:1",
        deadline_seconds=1,
        secrets=SecretBox(settings),
        platform_bucket="forgeline",
        token="unit-service-token",
    )
    calls: list[int] = []
    current: list[KnowledgeBaseSource] = []

    def fake_all(*, external_only: bool = False) -> list[KnowledgeBaseSource]:
        calls.append(1)
        return list(current)

    monkeypatch.setattr(found, "all", fake_all)
    found.current = current  # type: ignore[attr-defined]
    return found, calls


def test_platform_keys_route_by_their_key(
    directory: tuple[KnowledgeBaseDirectory, list[int]],
) -> None:
    found, _ = directory
    [ref] = found.refs_for("forgeline", f"{OWNER}/kbs/{KB}/report.pdf")
    assert (ref.owner_id, ref.kb_id) == (OWNER, KB)
    assert found.refs_for("forgeline", f"{OWNER}/datasets/x/train.jsonl") == []


def test_a_bucket_attached_a_moment_ago_is_routed_at_once(
    directory: tuple[KnowledgeBaseDirectory, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    found, _ = directory
    assert found.refs_for("acme", "docs/a.pdf") == []  # nothing attached yet
    time.sleep(knowledge_bases.MIN_REFRESH + 0.05)
    found.current.append(attached("c" * 32))  # type: ignore[attr-defined]
    refs = found.refs_for("acme", "docs/a.pdf")
    assert [r.kb_id for r in refs] == ["c" * 32]
    # Two users attached the same bucket: both knowledge bases get the event.
    found.current.append(attached("d" * 32))  # type: ignore[attr-defined]
    monkeypatch.setattr(knowledge_bases, "ATTACHED_TTL_SECONDS", 0.0)
    assert {r.kb_id for r in found.refs_for("acme", "docs/a.pdf")} == {"c" * 32, "d" * 32}


def test_events_for_buckets_nobody_attached_do_not_flood_rag(
    directory: tuple[KnowledgeBaseDirectory, list[int]],
) -> None:
    found, calls = directory
    for _ in range(50):
        assert found.refs_for("stranger", "x/y.pdf") == []
    assert len(calls) <= 2  # one fetch, at most one refresh within the second
