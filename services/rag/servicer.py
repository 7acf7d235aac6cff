"""RagService over gRPC: proto <-> domain only."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from forgeline.v1 import indexer_pb2, indexer_pb2_grpc, rag_pb2, rag_pb2_grpc
from sqlalchemy.engine import Engine

from services.common.crypto import SecretBox
from services.common.errors import InvalidInput, NotFound
from services.common.timestamps import to_timestamp
from services.rag import knowledge_bases
from services.rag.answering import Answerer
from services.rag.models import KnowledgeBase
from services.rag.search import Searcher
from services.rag.settings import RagSettings


def kb_to_proto(kb: KnowledgeBase) -> rag_pb2.KnowledgeBase:
    return rag_pb2.KnowledgeBase(
        id=kb.id,
        owner_id=kb.owner_id,
        name=kb.name,
        embedding_model=kb.embedding_model,
        chunking=rag_pb2.ChunkingSettings(
            chunk_tokens=kb.chunk_tokens, overlap_tokens=kb.overlap_tokens
        ),
        bucket=kb.bucket,
        prefix=kb.prefix,
        external_bucket=kb.external,
        created_at=to_timestamp(kb.created_at),
    )


def source_to_proto(kb: KnowledgeBase) -> rag_pb2.KnowledgeBaseSource:
    return rag_pb2.KnowledgeBaseSource(
        knowledge_base=kb_to_proto(kb),
        endpoint_url=kb.external_endpoint_url or "",
        region=kb.external_region or "",
        access_key_id=kb.external_access_key_id or "",
        secret_access_key_encrypted=kb.external_secret_encrypted or "",
    )


def hit_to_proto(hit: object) -> rag_pb2.Hit:
    return rag_pb2.Hit(
        kb_id=hit.kb_id,  # type: ignore[attr-defined]
        document=hit.document,  # type: ignore[attr-defined]
        key=hit.key,  # type: ignore[attr-defined]
        page_start=hit.page_start,  # type: ignore[attr-defined]
        page_end=hit.page_end,  # type: ignore[attr-defined]
        text=hit.text,  # type: ignore[attr-defined]
        score=hit.score,  # type: ignore[attr-defined]
        chunk_index=hit.chunk_index,  # type: ignore[attr-defined]
    )


class RagServicer(rag_pb2_grpc.RagServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        engine: Engine,
        settings: RagSettings,
        secrets: SecretBox,
        searcher: Searcher,
        answerer: Answerer,
        indexer: indexer_pb2_grpc.IndexerServiceStub,
        max_k: int,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.secrets = secrets
        self.searcher = searcher
        self.answerer = answerer
        self.indexer = indexer
        self.max_k = max_k

    def CreateKnowledgeBase(
        self, request: rag_pb2.CreateKnowledgeBaseRequest, context: grpc.ServicerContext
    ) -> rag_pb2.KnowledgeBase:
        external = None
        if request.HasField("external_bucket"):
            ext = request.external_bucket
            external = knowledge_bases.ExternalBucketInput(
                bucket=ext.bucket,
                prefix=ext.prefix,
                endpoint_url=ext.endpoint_url or None,
                region=ext.region or None,
                access_key_id=ext.access_key_id,
                secret_access_key=ext.secret_access_key,
            )
        kb = knowledge_bases.create(
            self.engine,
            self.settings,
            self.secrets,
            owner_id=request.owner_id,
            new=knowledge_bases.NewKnowledgeBase(
                name=request.name,
                embedding_model=request.embedding_model,
                chunk_tokens=request.chunking.chunk_tokens,
                overlap_tokens=request.chunking.overlap_tokens,
                external=external,
            ),
        )
        return kb_to_proto(kb)

    def ListKnowledgeBases(
        self, request: rag_pb2.ListKnowledgeBasesRequest, context: grpc.ServicerContext
    ) -> rag_pb2.ListKnowledgeBasesResponse:
        kbs = knowledge_bases.list_for(self.engine, owner_id=request.owner_id)
        return rag_pb2.ListKnowledgeBasesResponse(knowledge_bases=[kb_to_proto(kb) for kb in kbs])

    def GetKnowledgeBase(
        self, request: rag_pb2.GetKnowledgeBaseRequest, context: grpc.ServicerContext
    ) -> rag_pb2.KnowledgeBase:
        return kb_to_proto(
            knowledge_bases.get(self.engine, owner_id=request.owner_id, kb_id=request.id)
        )

    def UpdateKnowledgeBase(
        self, request: rag_pb2.UpdateKnowledgeBaseRequest, context: grpc.ServicerContext
    ) -> rag_pb2.KnowledgeBase:
        chunking = request.chunking if request.HasField("chunking") else None
        kb, reindex = knowledge_bases.update(
            self.engine,
            owner_id=request.owner_id,
            kb_id=request.id,
            changes=knowledge_bases.KnowledgeBaseChanges(
                name=request.name if request.HasField("name") else None,
                embedding_model=(
                    request.embedding_model if request.HasField("embedding_model") else None
                ),
                chunk_tokens=chunking.chunk_tokens if chunking else None,
                overlap_tokens=chunking.overlap_tokens if chunking else None,
            ),
        )
        if reindex:
            # The indexer sees every document indexed under other settings and queues it.
            self.searcher.forget(kb.id)
            self.indexer.Reconcile(
                indexer_pb2.ReconcileRequest(owner_id=kb.owner_id, kb_id=kb.id),
                timeout=self.settings.grpc_deadline_seconds,
            )
        return kb_to_proto(kb)

    def GetKnowledgeBaseSource(
        self, request: rag_pb2.GetKnowledgeBaseSourceRequest, context: grpc.ServicerContext
    ) -> rag_pb2.KnowledgeBaseSource:
        kb = knowledge_bases.get_by_id(self.engine, kb_id=request.id)
        if kb is None:
            raise NotFound("kb_not_found", "No such knowledge base.")
        return source_to_proto(kb)

    def ListKnowledgeBaseSources(
        self, request: rag_pb2.ListKnowledgeBaseSourcesRequest, context: grpc.ServicerContext
    ) -> rag_pb2.ListKnowledgeBaseSourcesResponse:
        kbs = knowledge_bases.list_sources(self.engine, external_only=request.external_only)
        return rag_pb2.ListKnowledgeBaseSourcesResponse(sources=[source_to_proto(k) for k in kbs])

    def DeleteKnowledgeBase(
        self, request: rag_pb2.DeleteKnowledgeBaseRequest, context: grpc.ServicerContext
    ) -> rag_pb2.DeleteKnowledgeBaseResponse:
        kb = knowledge_bases.get(self.engine, owner_id=request.owner_id, kb_id=request.id)
        # Documents and chunks first: a knowledge base is only gone once nothing is left.
        self.indexer.DropKnowledgeBase(
            indexer_pb2.DropKnowledgeBaseRequest(owner_id=kb.owner_id, kb_id=kb.id),
            timeout=self.settings.grpc_deadline_seconds,
        )
        knowledge_bases.delete(self.engine, owner_id=request.owner_id, kb_id=request.id)
        self.searcher.forget(kb.id)
        return rag_pb2.DeleteKnowledgeBaseResponse()

    def _kbs(self, owner_id: str, kb_ids: list[str]) -> list[KnowledgeBase]:
        if not kb_ids:
            raise InvalidInput("kb_required", "Choose at least one knowledge base.")
        return [knowledge_bases.get(self.engine, owner_id=owner_id, kb_id=i) for i in kb_ids]

    def _k(self, k: int) -> int:
        if not 1 <= (k or 5) <= self.max_k:
            raise InvalidInput("invalid_k", f"k must be between 1 and {self.max_k}.")
        return k or 5

    def Retrieve(
        self, request: rag_pb2.RetrieveRequest, context: grpc.ServicerContext
    ) -> rag_pb2.RetrieveResponse:
        kbs = self._kbs(request.owner_id, list(request.kb_ids))
        hits = self.searcher.search(
            kbs,
            request.query,
            k=self._k(request.k),
            documents=[f.value for f in request.filters if f.key == "document"],
        )
        return rag_pb2.RetrieveResponse(hits=[hit_to_proto(h) for h in hits])

    def Answer(
        self, request: rag_pb2.AnswerRequest, context: grpc.ServicerContext
    ) -> Iterator[rag_pb2.AnswerEvent]:
        kbs = self._kbs(request.owner_id, list(request.kb_ids))
        hits = self.searcher.search(
            kbs,
            request.question,
            k=self._k(request.k),
            documents=[f.value for f in request.filters if f.key == "document"],
        )
        for token in self.answerer.stream(request, hits):
            if not context.is_active():  # the caller went away: stop generating
                return
            yield rag_pb2.AnswerEvent(token=token)
        for number, hit in enumerate(hits, 1):
            yield rag_pb2.AnswerEvent(
                citation=rag_pb2.Citation(number=number, hit=hit_to_proto(hit))
            )
        yield rag_pb2.AnswerEvent(done=True)
