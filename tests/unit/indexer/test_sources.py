"""Which keys belong to a knowledge base, and when its documents must be indexed again."""

from __future__ import annotations

from services.indexer.sources import BucketAccess, KnowledgeBaseSource

ATTACHED = KnowledgeBaseSource(
    id="k" * 32,
    owner_id="o" * 32,
    embedding_model="all-MiniLM-L6-v2",
    chunk_tokens=222,
    overlap_tokens=0,
    bucket="acme",
    prefix="manuals/",
    access=BucketAccess(None, None, "AKIA", "very-secret"),
)


def test_only_documents_under_the_prefix_of_that_bucket_belong() -> None:
    assert ATTACHED.contains("acme", "manuals/pump.pdf")
    assert ATTACHED.contains("acme", "manuals/2024/pump.pdf")
    assert not ATTACHED.contains("acme", "manuals/")  # the prefix itself
    assert not ATTACHED.contains("acme", "manuals/2024/")  # a console "folder"
    assert not ATTACHED.contains("acme", "other/pump.pdf")
    assert not ATTACHED.contains("other-bucket", "manuals/pump.pdf")


def test_the_signature_changes_with_model_and_chunking_only() -> None:
    same = KnowledgeBaseSource(**{**ATTACHED.__dict__, "prefix": "elsewhere/"})
    rechunked = KnowledgeBaseSource(**{**ATTACHED.__dict__, "chunk_tokens": 128})
    assert same.signature == ATTACHED.signature
    assert rechunked.signature != ATTACHED.signature


def test_the_secret_never_prints() -> None:
    assert "very-secret" not in repr(ATTACHED)
    assert ATTACHED.external
    ref = ATTACHED.ref("manuals/pump.pdf")
    assert (ref.kb_id, ref.owner_id, ref.name) == (ATTACHED.id, ATTACHED.owner_id, "pump.pdf")
