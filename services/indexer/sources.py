"""Where a knowledge base's documents come from: a prefix of the platform's bucket, or a
bucket the user attached, reached with their credentials."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.indexer.keys import ObjectRef


@dataclass(frozen=True)
class BucketAccess:
    """How to reach an attached bucket; None on a source means the platform's own store."""

    endpoint_url: str | None
    region: str | None
    access_key_id: str
    secret_access_key: str = field(repr=False)  # decrypted only in memory, never printed


@dataclass(frozen=True)
class KnowledgeBaseSource:
    id: str
    owner_id: str
    embedding_model: str
    chunk_tokens: int
    overlap_tokens: int
    bucket: str
    prefix: str
    access: BucketAccess | None = None

    @property
    def external(self) -> bool:
        return self.access is not None

    @property
    def signature(self) -> str:
        """The settings an index was built with; a document indexed under another signature
        is indexed again."""
        return f"{self.embedding_model}|{self.chunk_tokens}|{self.overlap_tokens}"

    def contains(self, bucket: str, key: str) -> bool:
        # "folder" placeholders (keys ending in "/") are not documents
        return (
            bucket == self.bucket
            and key.startswith(self.prefix)
            and len(key) > len(self.prefix)
            and not key.endswith("/")
        )

    def ref(self, key: str) -> ObjectRef:
        return ObjectRef(bucket=self.bucket, key=key, owner_id=self.owner_id, kb_id=self.id)
