"""Bring one object's chunks in the index in line with the bucket.

Events are hints; the bucket is the truth. Whatever event (put, overwrite, delete, a
duplicate, one out of order) made us look at a key, `sync_object` asks the bucket what the
key holds *now* and makes the index hold exactly that version:

- gone from the bucket: every chunk of the key is removed;
- same ETag already indexed, with the knowledge base's current settings: nothing to do
  (duplicates are free);
- otherwise: extract, chunk, embed and upsert under ids derived from knowledge base, bucket,
  key, ETag and chunk number, then remove the chunks of any other ETag of the key. When the
  knowledge base's embedding model or chunking changed, the old chunks go first.

Chunk ids are deterministic, so a worker killed halfway and run again overwrites what it
had written instead of adding to it. A file that cannot be indexed ends as `failed` with a
reason; it is not retried until the object changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from services.common import vectors
from services.common.db import session_scope
from services.common.documents import ExtractionError, extract
from services.common.embedding import Embedder
from services.common.logging import get_logger
from services.common.outbound import OutboundPolicy
from services.common.storage import ACCESS_DENIED_CODES, bucket_client, error_code
from services.indexer.chunking import chunk_pages, document_header
from services.indexer.keys import ObjectRef
from services.indexer.models import DELETED, FAILED, INDEXED, PENDING, Document
from services.indexer.sources import KnowledgeBaseSource

log = get_logger(__name__)


# The failure codes of an attached bucket whose credentials or bucket no longer work;
# retrying will not help, the user must fix the attachment.
ACCESS_FAILURES = frozenset({"bucket_access_denied", "bucket_not_found"})
# A file whose reading stopped this many workers is not read again (until a new version):
# each worker that starts re-queues pending documents, so it would stop every next one too,
# until the supervisor gives up on the platform.
READINGS_ALLOWED = 3


class AttachedBucketError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
        self.reason = (
            "The attached bucket refused our credentials; check the access key."
            if code == "bucket_access_denied"
            else "The attached bucket no longer exists."
        )


def access_failure(error: ClientError) -> str | None:
    code = error_code(error)
    if code in ACCESS_DENIED_CODES:
        return "bucket_access_denied"
    return "bucket_not_found" if code == "NoSuchBucket" else None


@dataclass(frozen=True)
class SyncResult:
    state: str  # indexed | failed | deleted | unchanged
    etag: str = ""
    chunks: int = 0
    # The object changed again while we were indexing it: sync once more.
    changed_meanwhile: bool = False


class Syncer:
    """Holds what a worker process keeps between documents: clients and loaded models."""

    def __init__(
        self,
        *,
        engine: Engine,
        s3: Any,
        chroma: Any,
        max_document_bytes: int,
        bucket_policy: OutboundPolicy,
        embed_batch_size: int = 32,
    ) -> None:
        self.engine = engine
        self.bucket_policy = bucket_policy
        self.s3 = s3
        self.chroma = chroma
        self.max_document_bytes = max_document_bytes
        self.embed_batch_size = embed_batch_size
        self._embedders: dict[str, Embedder] = {}
        self._clients: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def embedder(self, model: str) -> Embedder:
        with self._lock:
            if model not in self._embedders:
                self._embedders[model] = Embedder(model)
            return self._embedders[model]

    # -- the bucket ---------------------------------------------------------------------

    def client_for(self, kb: KnowledgeBaseSource) -> Any:
        """The platform's client, or one for an attached bucket with the user's credentials."""
        access = kb.access
        if access is None:
            return self.s3
        ident = (
            access.endpoint_url or "",
            access.region or "",
            access.access_key_id,
            access.secret_access_key,
        )
        with self._lock:
            if ident not in self._clients:
                self._clients[ident] = bucket_client(
                    # The user's endpoint: checked at every connection, not only when it
                    # was attached (its name may resolve elsewhere since).
                    policy=self.bucket_policy,
                    max_response_bytes=self.max_document_bytes + 1024 * 1024,
                    endpoint_url=access.endpoint_url,
                    region=access.region,
                    access_key_id=access.access_key_id,
                    secret_access_key=access.secret_access_key,
                )
            return self._clients[ident]

    def head(self, ref: ObjectRef, client: Any) -> tuple[str, int] | None:
        """(ETag, size) of what the key holds now, or None when it is gone."""
        try:
            reply = client.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as error:
            if error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return str(reply["ETag"]).strip('"'), int(reply.get("ContentLength", 0))

    # -- the rows -----------------------------------------------------------------------

    def _row(self, ref: ObjectRef) -> Document:
        with session_scope(self.engine) as db:
            row = db.exec(
                select(Document).where(
                    Document.kb_id == ref.kb_id,
                    Document.bucket == ref.bucket,
                    Document.key == ref.key,
                )
            ).first()
            if row is not None:
                return row
        try:
            with session_scope(self.engine) as db:
                row = Document(
                    owner_id=ref.owner_id,
                    kb_id=ref.kb_id,
                    bucket=ref.bucket,
                    key=ref.key,
                    name=ref.name,
                )
                db.add(row)
                return row
        except IntegrityError:  # created by a concurrent sync of the same key
            return self._row(ref)

    def _update(self, row_id: str, **values: Any) -> None:
        with session_scope(self.engine) as db:
            row = db.get(Document, row_id)
            if row is None:
                return
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
            db.add(row)

    # -- the index ----------------------------------------------------------------------

    def remove_chunks(
        self, model: str, kb_id: str, key: str, *, keep_etag: str | None = None
    ) -> None:
        collection = vectors.get_collection(self.chroma, model)
        conditions: list[dict[str, Any]] = [{vectors.KB_ID: kb_id}, {vectors.KEY: key}]
        if keep_etag is not None:
            conditions.append({vectors.ETAG: {"$ne": keep_etag}})
        collection.delete(where={"$and": conditions})

    def remove_chunks_everywhere(self, kb_id: str, key: str) -> None:
        """Every chunk of the key, whichever model embedded it (the model may have changed)."""
        for collection in self.chroma.list_collections():
            if collection.name.startswith(vectors.collection_name("")):
                collection.delete(where={"$and": [{vectors.KB_ID: kb_id}, {vectors.KEY: key}]})

    def mark_pending(self, ref: ObjectRef, *, etag: str, size: int) -> Document:
        """What an event or an upload records before the work is queued."""
        row = self._row(ref)
        if row.state == INDEXED and row.indexed_etag == etag:
            return row
        # A new version starts with no unfinished reads.
        fresh = {"reading_attempts": 0} if row.etag != etag else {}
        self._update(
            row.id,
            etag=etag,
            size=size,
            state=PENDING,
            failure_code=None,
            failure_reason=None,
            **fresh,
        )
        return self._row(ref)

    def mark_deleted(self, ref: ObjectRef) -> None:
        row = self._row(ref)
        self._update(row.id, state=DELETED, etag="", chunks=0)

    def sync_object(self, ref: ObjectRef, kb: KnowledgeBaseSource | None) -> SyncResult:
        row = self._row(ref)
        if kb is None:  # the knowledge base was deleted; DropKnowledgeBase cleans up
            self._update(row.id, state=DELETED, etag="", indexed_etag="", chunks=0)
            return SyncResult("deleted")
        try:
            return self._sync(ref, kb, row)
        except AttachedBucketError as failure:
            self._update(
                row.id, state=FAILED, failure_code=failure.code, failure_reason=failure.reason
            )
            log.info("attached bucket refused", kb_id=kb.id, code=failure.code)
            return SyncResult("failed")

    def _sync(self, ref: ObjectRef, kb: KnowledgeBaseSource, row: Document) -> SyncResult:
        client = self.client_for(kb)
        current = self._head_checked(ref, kb, client)
        if current is None:
            self.remove_chunks_everywhere(ref.kb_id, ref.key)
            self._update(
                row.id, state=DELETED, etag="", indexed_etag="", indexed_signature="", chunks=0
            )
            return SyncResult("deleted")
        etag, size = current
        same_settings = row.indexed_signature == kb.signature
        if row.state == INDEXED and row.indexed_etag == etag and same_settings:
            return SyncResult("unchanged", etag, row.chunks)
        unfinished = row.reading_attempts if row.etag == etag else 0
        if unfinished >= READINGS_ALLOWED:
            return self._give_up(ref, row, etag, unfinished)
        # Counted before the read and cleared with its outcome: only a worker that dies
        # reading this file (out of memory, say) leaves the count up.
        self._update(row.id, etag=etag, size=size, state=PENDING, reading_attempts=unfinished + 1)
        try:
            return self._read_and_index(ref, kb, row, client, etag, size, same_settings)
        except BaseException:
            self._update(row.id, reading_attempts=0)  # a failure, not a death: read it again
            raise

    def _give_up(self, ref: ObjectRef, row: Document, etag: str, unfinished: int) -> SyncResult:
        log.error("a document stopped its workers again and again; not reading it again",
                  kb_id=ref.kb_id, key=ref.key)  # fmt: skip
        # The count stays: the next sync of this version gives up too.
        return self._fail(
            ref,
            row,
            etag,
            "indexing_stopped_worker",
            f"Reading this file stopped the indexing worker {unfinished} times, so it is "
            "not indexed. Upload a new version to try again.",
        )

    def _fail(
        self, ref: ObjectRef, row: Document, etag: str, code: str, reason: str, **values: Any
    ) -> SyncResult:
        """The document ends failed with the reason, and none of its chunks stay."""
        self.remove_chunks_everywhere(ref.kb_id, ref.key)
        self._update(
            row.id,
            state=FAILED,
            indexed_etag="",
            indexed_signature="",
            chunks=0,
            failure_code=code,
            failure_reason=reason,
            **values,
        )
        return SyncResult("failed", etag)

    def _read_and_index(
        self,
        ref: ObjectRef,
        kb: KnowledgeBaseSource,
        row: Document,
        client: Any,
        etag: str,
        size: int,
        same_settings: bool,
    ) -> SyncResult:
        try:
            if size > self.max_document_bytes:
                raise ExtractionError(
                    "file_too_large",
                    f"The file is {size // 1_048_576} MiB; the limit is "
                    f"{self.max_document_bytes // 1_048_576} MiB.",
                )
            body = self._get_checked(ref, kb, client)
            document = extract(ref.name, body, max_bytes=self.max_document_bytes)
        except ExtractionError as failure:
            log.info("document failed", key=ref.key, code=failure.code)
            return self._fail(ref, row, etag, failure.code, failure.reason, reading_attempts=0)
        if row.indexed_signature and not same_settings:
            # Chunks cut or embedded under other settings: none of them may stay.
            self.remove_chunks_everywhere(ref.kb_id, ref.key)
        count = self._index(ref, kb, etag, document)
        self.remove_chunks(kb.embedding_model, ref.kb_id, ref.key, keep_etag=etag)
        self._update(
            row.id,
            state=INDEXED,
            indexed_etag=etag,
            indexed_signature=kb.signature,
            chunks=count,
            pages=len(document.pages),
            failure_code=None,
            failure_reason=None,
            reading_attempts=0,
        )
        after = self._head_checked(ref, kb, client)
        return SyncResult(
            "indexed", etag, count, changed_meanwhile=after is None or after[0] != etag
        )

    def _head_checked(
        self, ref: ObjectRef, kb: KnowledgeBaseSource, client: Any
    ) -> tuple[str, int] | None:
        try:
            return self.head(ref, client)
        except ClientError as error:
            code = access_failure(error)
            if kb.external and code:
                raise AttachedBucketError(code) from error
            raise

    def _get_checked(self, ref: ObjectRef, kb: KnowledgeBaseSource, client: Any) -> bytes:
        try:
            return bytes(client.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read())
        except ClientError as error:
            code = access_failure(error)
            if kb.external and code:
                raise AttachedBucketError(code) from error
            raise

    def _index(self, ref: ObjectRef, kb: KnowledgeBaseSource, etag: str, document: Any) -> int:
        embedder = self.embedder(kb.embedding_model)
        pages = [(page.index, page.text) for page in document.pages]
        header = document_header(
            ref.name, title=document.title or "", first_page=pages[0][1] if pages else ""
        )
        chunks = chunk_pages(
            pages,
            tokenizer=embedder.tokenizer,
            chunk_tokens=kb.chunk_tokens,
            overlap_tokens=kb.overlap_tokens,
            header=header,
            embed_limit=embedder.max_tokens,
        )
        if not chunks:
            return 0
        collection = vectors.get_collection(self.chroma, kb.embedding_model)
        for start in range(0, len(chunks), self.embed_batch_size * 4):
            batch = chunks[start : start + self.embed_batch_size * 4]
            embeddings = embedder.encode(
                [c.embedding_text for c in batch], batch_size=self.embed_batch_size
            )
            collection.upsert(
                **vectors.chunk_records(
                    kb_id=kb.id,
                    bucket=ref.bucket,
                    key=ref.key,
                    etag=etag,
                    chunks=batch,
                    embeddings=embeddings.tolist(),
                    document=ref.name,
                )
            )
        return len(chunks)
