"""IndexerService over gRPC: proto <-> domain only."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from forgeline.v1 import indexer_pb2, indexer_pb2_grpc
from sqlmodel import col, delete, select

from services.common import vectors
from services.common.db import session_scope
from services.common.errors import InvalidInput
from services.common.timestamps import to_timestamp
from services.indexer.keys import ObjectRef, kb_prefix
from services.indexer.models import DELETED, FAILED, INDEXED, PENDING, Document
from services.indexer.reconcile import Enqueue
from services.indexer.sync import Syncer

_STATES = {
    PENDING: indexer_pb2.DOCUMENT_STATE_PENDING,
    INDEXED: indexer_pb2.DOCUMENT_STATE_INDEXED,
    FAILED: indexer_pb2.DOCUMENT_STATE_FAILED,
    DELETED: indexer_pb2.DOCUMENT_STATE_DELETED,
}


def document_to_proto(row: Document) -> indexer_pb2.Document:
    return indexer_pb2.Document(
        id=row.id,
        kb_id=row.kb_id,
        name=row.name,
        key=row.key,
        etag=row.etag,
        state=_STATES[row.state],
        failure_code=row.failure_code or "",
        failure_reason=row.failure_reason or "",
        chunks=row.chunks,
        pages=row.pages,
        size=row.size,
        updated_at=to_timestamp(row.updated_at),
    )


class IndexerServicer(indexer_pb2_grpc.IndexerServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        syncer: Syncer,
        *,
        enqueue: Enqueue,
        reconcile: Callable[[str, str], dict[str, int]],
    ) -> None:
        self.syncer = syncer
        self.enqueue = enqueue
        self.reconcile_kb = reconcile

    def ListDocuments(
        self, request: indexer_pb2.ListDocumentsRequest, context: grpc.ServicerContext
    ) -> indexer_pb2.ListDocumentsResponse:
        with session_scope(self.syncer.engine) as db:
            rows = db.exec(
                select(Document)
                .where(
                    Document.owner_id == request.owner_id,
                    Document.kb_id == request.kb_id,
                    Document.state != DELETED,
                )
                .order_by(col(Document.name))
            ).all()
        return indexer_pb2.ListDocumentsResponse(documents=[document_to_proto(r) for r in rows])

    def ObjectChanged(
        self, request: indexer_pb2.ObjectChangedRequest, context: grpc.ServicerContext
    ) -> indexer_pb2.Document:
        if not request.key.startswith(kb_prefix(request.owner_id, request.kb_id)):
            raise InvalidInput("key_outside_kb", "That object is not in this knowledge base.")
        ref = ObjectRef(
            bucket=request.bucket, key=request.key, owner_id=request.owner_id, kb_id=request.kb_id
        )
        if not request.deleted:
            self.syncer.mark_pending(ref, etag=request.etag, size=request.size)
        self.enqueue(ref.bucket, ref.key, ref.kb_id)
        with session_scope(self.syncer.engine) as db:
            row = db.exec(
                select(Document).where(
                    Document.kb_id == request.kb_id,
                    Document.bucket == request.bucket,
                    Document.key == request.key,
                )
            ).first()
        return document_to_proto(row) if row else indexer_pb2.Document(key=request.key)

    def Reconcile(
        self, request: indexer_pb2.ReconcileRequest, context: grpc.ServicerContext
    ) -> indexer_pb2.ReconcileResponse:
        report = self.reconcile_kb(request.owner_id, request.kb_id)
        return indexer_pb2.ReconcileResponse(**report)

    def DropKnowledgeBase(
        self, request: indexer_pb2.DropKnowledgeBaseRequest, context: grpc.ServicerContext
    ) -> indexer_pb2.DropKnowledgeBaseResponse:
        with session_scope(self.syncer.engine) as db:
            db.exec(
                delete(Document).where(
                    col(Document.owner_id) == request.owner_id, col(Document.kb_id) == request.kb_id
                )
            )
        for collection in self.syncer.chroma.list_collections():
            if collection.name.startswith(vectors.collection_name("")):
                collection.delete(where={vectors.KB_ID: request.kb_id})
        return indexer_pb2.DropKnowledgeBaseResponse()
