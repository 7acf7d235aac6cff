"""The indexer's view of knowledge bases, asked of the RAG service (which owns them)."""

from __future__ import annotations

import threading
import time

import grpc
from forgeline.v1 import rag_pb2, rag_pb2_grpc
from pydantic import SecretStr

from services.common.crypto import SecretBox
from services.common.errors import from_grpc
from services.common.grpc_client import sync_channel
from services.indexer.keys import ObjectRef, parse_key
from services.indexer.sources import BucketAccess, KnowledgeBaseSource

# How long the list of attached buckets is reused to route events; an event for a key no
# listed knowledge base holds refetches it (at most every MIN_REFRESH seconds), so a bucket
# attached a moment ago is routed at once.
ATTACHED_TTL_SECONDS = 10.0
MIN_REFRESH = 1.0


class KnowledgeBaseDirectory:
    """Looks knowledge bases up, decrypting the credentials of attached buckets."""

    def __init__(
        self,
        rag_address: str,
        *,
        deadline_seconds: float,
        secrets: SecretBox,
        platform_bucket: str,
        token: SecretStr | str,
    ) -> None:
        self._stub = rag_pb2_grpc.RagServiceStub(sync_channel(rag_address, token=token))
        self._deadline = deadline_seconds
        self._secrets = secrets
        self.platform_bucket = platform_bucket
        self._attached: tuple[float, list[KnowledgeBaseSource]] | None = None
        self._lock = threading.Lock()

    def _source(self, message: rag_pb2.KnowledgeBaseSource) -> KnowledgeBaseSource:
        kb = message.knowledge_base
        access = None
        if kb.external_bucket:
            access = BucketAccess(
                endpoint_url=message.endpoint_url or None,
                region=message.region or None,
                access_key_id=message.access_key_id,
                secret_access_key=self._secrets.decrypt(message.secret_access_key_encrypted),
            )
        return KnowledgeBaseSource(
            id=kb.id,
            owner_id=kb.owner_id,
            embedding_model=kb.embedding_model,
            chunk_tokens=kb.chunking.chunk_tokens,
            overlap_tokens=kb.chunking.overlap_tokens,
            bucket=kb.bucket,
            prefix=kb.prefix,
            access=access,
        )

    def get(self, kb_id: str) -> KnowledgeBaseSource | None:
        """Fresh on every call: a worker must index with the settings of now, not of a
        minute ago (they change when a user edits the knowledge base)."""
        try:
            reply = self._stub.GetKnowledgeBaseSource(
                rag_pb2.GetKnowledgeBaseSourceRequest(id=kb_id), timeout=self._deadline
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise from_grpc(
                error.code(), error.details(), tuple(error.trailing_metadata() or ()), service="rag"
            ) from None
        return self._source(reply)

    def all(self, *, external_only: bool = False) -> list[KnowledgeBaseSource]:
        try:
            reply = self._stub.ListKnowledgeBaseSources(
                rag_pb2.ListKnowledgeBaseSourcesRequest(external_only=external_only),
                timeout=self._deadline,
            )
        except grpc.RpcError as error:
            raise from_grpc(
                error.code(), error.details(), tuple(error.trailing_metadata() or ()), service="rag"
            ) from None
        return [self._source(s) for s in reply.sources]

    def attached(self, *, fresh: bool = False) -> list[KnowledgeBaseSource]:
        with self._lock:
            now = time.monotonic()
            age = now - self._attached[0] if self._attached is not None else None
            # `fresh` refetches, but at most once a second: events naming buckets nobody
            # attached must not turn into a stream of calls to rag.
            stale = age is None or age > ATTACHED_TTL_SECONDS or (fresh and age > MIN_REFRESH)
            if stale:
                self._attached = (now, self.all(external_only=True))
            assert self._attached is not None
            return self._attached[1]

    def refs_for(self, bucket: str, key: str) -> list[ObjectRef]:
        """Every knowledge base an object of this bucket belongs to: none, one, or several
        (two users may attach the same bucket, each reading it with their own key)."""
        refs = []
        if bucket == self.platform_bucket:
            ref = parse_key(bucket, key)
            if ref is not None:
                refs.append(ref)
        attached = [kb.ref(key) for kb in self.attached() if kb.contains(bucket, key)]
        if not refs and not attached and bucket != self.platform_bucket:
            # Perhaps attached since the list was fetched: an event seconds after the
            # attachment must not wait for the next poll. (The platform bucket's other
            # objects, datasets and job checkpoints, are many and never need this.)
            attached = [kb.ref(key) for kb in self.attached(fresh=True) if kb.contains(bucket, key)]
        return refs + attached
