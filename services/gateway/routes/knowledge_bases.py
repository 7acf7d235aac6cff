"""Knowledge bases: create, list, update, delete; upload and delete documents; retrieve; ask.

Documents of a knowledge base are objects under its prefix. The gateway writes uploads to the
platform bucket and tells the indexer at once (`ObjectChanged`), so a document is listed as
`pending` before the bucket event arrives; the bucket event and the indexer's reconcile pass
keep the index right even if that call is lost.

A knowledge base attached to the user's own bucket is read-only here in this first version:
uploads and document deletes answer 422 `external_bucket_read_only`; the user puts and deletes
objects in their bucket themselves and the indexer follows. Deleting such a knowledge base
never touches the user's objects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Response, UploadFile, status
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import StreamingResponse
from forgeline.v1 import indexer_pb2, rag_pb2

from services.common.errors import (
    ForgelineError,
    InvalidInput,
    NotFound,
)
from services.common.logging import get_logger
from services.gateway.clients import IndexerClient
from services.gateway.deps import CurrentPrincipal, IndexerDep, RagDep, SettingsDep, StorageDep
from services.gateway.openapi import ERRORS
from services.gateway.schemas import (
    CitationPublic,
    DocumentPublic,
    DocumentsPublic,
    ErrorInfo,
    HitPublic,
    HitsPublic,
    KnowledgeBaseCreate,
    KnowledgeBasePublic,
    KnowledgeBasesPublic,
    KnowledgeBaseUpdate,
    QueryRequest,
    QueryResponse,
    ReconcilePublic,
    RetrieveRequest,
    UploadedFile,
    UploadResult,
    document_state,
)
from services.gateway.settings import GatewaySettings
from services.gateway.uploads import (
    StoredObject,
    UploadQuota,
    delete_object,
    delete_prefix,
    open_object,
    store_upload,
)

log = get_logger(__name__)
router = APIRouter(prefix="/kbs", tags=["knowledge-bases"])

# The upload route, relative to the API prefix: the body-size middleware lets it through
# (its files are limited one by one here, by `max_upload_bytes`).
UPLOAD_PATH_PATTERN = r"/kbs/[^/]+/documents"

# Document types that open in the browser's own viewer, with nothing in them to run.
INLINE_TYPES = frozenset(
    {"application/pdf", "text/plain", "text/csv", "image/png", "image/jpeg", "image/gif",
     "image/webp"}
)  # fmt: skip

KbId = Annotated[str, Path(max_length=64)]
DocumentId = Annotated[str, Path(max_length=64)]


# --- knowledge bases -------------------------------------------------------------------------


@router.post(
    "",
    response_model=KnowledgeBasePublic,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 409, 422, 503),
)
async def create_knowledge_base(
    body: KnowledgeBaseCreate, principal: CurrentPrincipal, rag: RagDep
) -> KnowledgeBasePublic:
    """Create a knowledge base, in the platform's bucket or attached to your own bucket
    (`external_bucket`, read by Forgeline only). The secret key is stored encrypted and never
    shown again."""
    kb = await rag.create_knowledge_base(body.to_proto(principal.user.id))
    return KnowledgeBasePublic.from_proto(kb)


@router.get("", response_model=KnowledgeBasesPublic, responses=ERRORS(401, 503))
async def list_knowledge_bases(principal: CurrentPrincipal, rag: RagDep) -> KnowledgeBasesPublic:
    listed = (await rag.list_knowledge_bases(principal.user.id)).knowledge_bases
    data = [KnowledgeBasePublic.from_proto(kb) for kb in listed]
    return KnowledgeBasesPublic(data=data, count=len(data))


@router.get("/{kb_id}", response_model=KnowledgeBasePublic, responses=ERRORS(401, 404, 422, 503))
async def get_knowledge_base(
    kb_id: KbId, principal: CurrentPrincipal, rag: RagDep
) -> KnowledgeBasePublic:
    return KnowledgeBasePublic.from_proto(await rag.get_knowledge_base(principal.user.id, kb_id))


@router.patch(
    "/{kb_id}", response_model=KnowledgeBasePublic, responses=ERRORS(401, 404, 409, 422, 503)
)
async def update_knowledge_base(
    kb_id: KbId, body: KnowledgeBaseUpdate, principal: CurrentPrincipal, rag: RagDep
) -> KnowledgeBasePublic:
    """Rename a knowledge base, or change its embedding model or chunking. A change of model
    or chunking re-indexes every document in the background; the document list shows each
    one `pending` until it is done."""
    kb = await rag.update_knowledge_base(body.to_proto(principal.user.id, kb_id))
    return KnowledgeBasePublic.from_proto(kb)


@router.delete(
    "/{kb_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS(401, 404, 422, 503)
)
async def delete_knowledge_base(
    kb_id: KbId,
    principal: CurrentPrincipal,
    rag: RagDep,
    indexer: IndexerDep,
    s3: StorageDep,
    settings: SettingsDep,
) -> Response:
    """Delete a knowledge base, its index, and the documents stored in the platform's bucket.
    Documents in your own bucket are yours and stay where they are."""
    owner_id = principal.user.id
    kb = await rag.get_knowledge_base(owner_id, kb_id)
    await rag.delete_knowledge_base(owner_id, kb_id)
    # From here on the knowledge base is gone for the user; what fails is logged, not
    # answered, since a retry would only find nothing. Deleting the objects also sends
    # bucket events, which clear the index if the drop did not get through.
    try:
        await indexer.drop_knowledge_base(owner_id, kb_id)
    except ForgelineError as error:
        log.warning("indexer did not drop deleted kb", kb_id=kb_id, code=error.code)
    if not kb.external_bucket:
        try:
            prefix = _platform_prefix(kb, owner_id, settings)
            await run_in_threadpool(delete_prefix, s3, kb.bucket, prefix)
        except (ForgelineError, RuntimeError):
            log.error("objects of deleted kb left in bucket", kb_id=kb_id, prefix=kb.prefix)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- documents -------------------------------------------------------------------------------


@router.post(
    "/{kb_id}/documents",
    response_model=UploadResult,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 404, 413, 422, 503),
)
async def upload_documents(
    kb_id: KbId,
    files: list[UploadFile],
    principal: CurrentPrincipal,
    rag: RagDep,
    indexer: IndexerDep,
    s3: StorageDep,
    settings: SettingsDep,
) -> UploadResult:
    """Upload one or more documents (multipart field `files`, repeated). A `.zip` is unpacked
    and each file in it becomes its own document, keeping its folders in the name.

    Each file may be up to `max_upload_bytes` (200 MiB by default). Files are judged one by
    one: the answer lists, per document, its key and state or the error that kept that file
    out, and a refused file leaves nothing behind. Only when no file at all could be stored
    is the request itself refused, with the first file's error.

    Knowledge bases attached to your own bucket are read-only here (422
    `external_bucket_read_only`): put documents into your bucket directly.
    """
    owner_id = principal.user.id
    kb = await rag.get_knowledge_base(owner_id, kb_id)
    if kb.external_bucket:
        raise _read_only()
    if len(files) > settings.max_files_per_upload:
        raise InvalidInput(
            "too_many_files",
            f"One upload takes at most {settings.max_files_per_upload} files (a .zip counts "
            "as one); send the rest in another request.",
        )
    prefix = _platform_prefix(kb, owner_id, settings)
    quota = UploadQuota(owner_id, settings.upload_quota_bytes)
    results: list[UploadedFile] = []
    failures: list[ForgelineError] = []
    for upload in files:
        source = upload.filename or ""
        try:
            stored = await store_upload(
                upload,
                prefix=prefix,
                bucket=kb.bucket,
                s3=s3,
                max_bytes=settings.max_upload_bytes,
                expand_zip=True,
                quota=quota,
            )
        except ForgelineError as error:
            failures.append(error)
            results.append(
                UploadedFile(
                    name=source,
                    source=source,
                    error=ErrorInfo(code=error.code, message=error.message),
                )
            )
            continue
        for obj in stored:
            results.append(await _report_put(indexer, owner_id=owner_id, kb=kb, obj=obj))
    if failures and len(failures) == len(results):  # nothing was stored: refuse the request
        first = failures[0]
        if len(failures) == 1:
            raise first
        raise type(first)(
            first.code, f"None of the {len(failures)} files was stored. First: {first.message}"
        )
    return UploadResult(
        data=results, count=len(results), stored=len(results) - len(failures), failed=len(failures)
    )


@router.get(
    "/{kb_id}/documents", response_model=DocumentsPublic, responses=ERRORS(401, 404, 422, 503)
)
async def list_documents(
    kb_id: KbId, principal: CurrentPrincipal, rag: RagDep, indexer: IndexerDep
) -> DocumentsPublic:
    """Every document of the knowledge base and where it stands: `pending`, `indexed`,
    `failed` (with the reason) or `deleted`."""
    await rag.get_knowledge_base(principal.user.id, kb_id)  # someone else's: 404
    documents = (await indexer.list_documents(principal.user.id, kb_id)).documents
    data = [DocumentPublic.from_proto(doc) for doc in documents]
    return DocumentsPublic(data=data, count=len(data))


@router.delete(
    "/{kb_id}/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS(401, 404, 422, 503),
)
async def delete_document(
    kb_id: KbId,
    document_id: DocumentId,
    principal: CurrentPrincipal,
    rag: RagDep,
    indexer: IndexerDep,
    s3: StorageDep,
    settings: SettingsDep,
) -> Response:
    """Delete a document from the bucket and the index."""
    owner_id = principal.user.id
    kb = await rag.get_knowledge_base(owner_id, kb_id)
    if kb.external_bucket:
        raise _read_only()
    document = await _platform_document(indexer, owner_id, kb, document_id, settings)
    await run_in_threadpool(delete_object, s3, kb.bucket, document.key)
    try:
        await indexer.object_changed(
            owner_id=owner_id, kb_id=kb_id, bucket=kb.bucket, key=document.key, deleted=True
        )
    except ForgelineError as error:  # the bucket event removes it from the index anyway
        log.warning("indexer not told of a delete", kb_id=kb_id, code=error.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{kb_id}/documents/{document_id}/file",
    response_class=StreamingResponse,
    responses={**ERRORS(401, 404, 422, 503), 200: {"content": {"application/octet-stream": {}}}},
)
async def open_document(
    kb_id: KbId,
    document_id: DocumentId,
    principal: CurrentPrincipal,
    rag: RagDep,
    indexer: IndexerDep,
    s3: StorageDep,
    settings: SettingsDep,
) -> StreamingResponse:
    """The document as it was uploaded (the sources of an answer open from here)."""
    owner_id = principal.user.id
    kb = await rag.get_knowledge_base(owner_id, kb_id)
    if kb.external_bucket:
        raise InvalidInput(
            "external_bucket_document", "This document is in your own bucket: open it there."
        )
    document = await _platform_document(indexer, owner_id, kb, document_id, settings)
    body, content_type, size = await run_in_threadpool(open_object, s3, kb.bucket, document.key)
    name = document.name.rsplit("/", 1)[-1]
    # Only types a browser shows without running anything open in the page; the rest (HTML,
    # SVG, XML, scripts, ...) download, and a sandbox CSP covers a browser that renders anyway.
    disposition = "inline" if content_type.split(";")[0].strip() in INLINE_TYPES else "attachment"
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; "
        "style-src 'unsafe-inline'",
    }
    if size:
        headers["Content-Length"] = str(size)
    return StreamingResponse(
        iterate_in_threadpool(body.iter_chunks(64 * 1024)), media_type=content_type, headers=headers
    )


@router.post(
    "/{kb_id}/reconcile", response_model=ReconcilePublic, responses=ERRORS(401, 404, 422, 503)
)
async def reconcile(
    kb_id: KbId, principal: CurrentPrincipal, rag: RagDep, indexer: IndexerDep
) -> ReconcilePublic:
    """Compare the bucket with the index now and repair any difference."""
    await rag.get_knowledge_base(principal.user.id, kb_id)
    return ReconcilePublic.from_proto(await indexer.reconcile(principal.user.id, kb_id))


# --- retrieval and answers -------------------------------------------------------------------


@router.post("/{kb_id}/retrieve", response_model=HitsPublic, responses=ERRORS(401, 404, 422, 503))
async def retrieve(
    kb_id: KbId, body: RetrieveRequest, principal: CurrentPrincipal, rag: RagDep
) -> HitsPublic:
    """The passages that best match a query, best first."""
    found = await rag.retrieve(body.to_proto(principal.user.id, kb_id))
    data = [HitPublic.from_proto(hit) for hit in found.hits]
    return HitsPublic(data=data, count=len(data))


_SSE_DOC = (
    'With `stream: true`, server-sent events: `token` (`{"text"}`) for each piece of the '
    "answer, then one `citation` per source, then `done` (data `[DONE]`). If the answer fails "
    'after it has started, an `error` event (`{"error": {"code", "message"}}`) comes '
    "before `done`."
)


@router.post(
    "/{kb_id}/query",
    response_model=QueryResponse,
    responses={
        **ERRORS(401, 404, 422, 503),
        200: {
            "description": "The answer with its citations; " + _SSE_DOC,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def query(
    kb_id: KbId, body: QueryRequest, principal: CurrentPrincipal, rag: RagDep
) -> QueryResponse | StreamingResponse:
    """Answer a question from the knowledge base's documents, citing them as `[n]`."""
    # Raises before anything is sent if the answer cannot start (unknown knowledge base,
    # service down), so those failures are plain HTTP errors, streamed or not.
    events = await rag.answer(body.to_proto(principal.user.id, kb_id))
    if body.stream:
        return StreamingResponse(
            answer_as_sse(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await gather_answer(events)


async def gather_answer(events: AsyncGenerator[rag_pb2.AnswerEvent, None]) -> QueryResponse:
    tokens: list[str] = []
    citations: list[CitationPublic] = []
    try:
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "token":
                tokens.append(event.token)
            elif kind == "citation":
                citations.append(CitationPublic.from_proto(event.citation))
            elif kind == "done":
                break
    finally:
        await events.aclose()
    return QueryResponse(answer="".join(tokens), citations=citations)


def sse_event(event: str, data: object) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n"


SSE_DONE = sse_event("done", "[DONE]")


async def answer_as_sse(events: AsyncGenerator[rag_pb2.AnswerEvent, None]) -> AsyncIterator[str]:
    """AnswerEvents as server-sent events, always ending with `done`.

    When the client goes away, the server cancels the task reading this generator; the
    cancellation reaches the gRPC read inside `events`, whose `finally` cancels the call.
    `aclose` below covers the other ending (this generator closed while suspended).
    """
    try:
        try:
            async for event in events:
                kind = event.WhichOneof("event")
                if kind == "token":
                    yield sse_event("token", {"text": event.token})
                elif kind == "citation":
                    citation = CitationPublic.from_proto(event.citation)
                    yield sse_event("citation", citation.model_dump())
                elif kind == "done":
                    break
        except ForgelineError as error:
            yield sse_event("error", error.to_body())
        except Exception:
            log.exception("answer stream failed")
            body = {
                "error": {"code": "internal_error", "message": "Something went wrong on our side."}
            }
            yield sse_event("error", body)
        yield SSE_DONE
    finally:
        await events.aclose()


# --- helpers ---------------------------------------------------------------------------------


async def _report_put(
    indexer: IndexerClient, *, owner_id: str, kb: rag_pb2.KnowledgeBase, obj: StoredObject
) -> UploadedFile:
    result = UploadedFile(name=obj.name, source=obj.source, key=obj.key, state="pending")
    try:
        document = await indexer.object_changed(
            owner_id=owner_id,
            kb_id=kb.id,
            bucket=kb.bucket,
            key=obj.key,
            etag=obj.etag,
            deleted=False,
            size=obj.size,
        )
    except ForgelineError as error:
        # The object is stored; its bucket event (or the next reconcile) gets it indexed.
        log.warning("indexer not told of an upload", kb_id=kb.id, code=error.code)
        return result
    result.document_id = document.id or None
    result.state = document_state(document.state)
    return result


def _platform_prefix(kb: rag_pb2.KnowledgeBase, owner_id: str, settings: GatewaySettings) -> str:
    """The knowledge base's prefix in the platform bucket, checked to be the owner's own."""
    if kb.bucket != settings.s3_bucket or not kb.prefix.startswith(f"{owner_id}/"):
        raise RuntimeError(f"knowledge base {kb.id} is not under its owner's prefix")
    prefix = str(kb.prefix)
    return prefix if prefix.endswith("/") else prefix + "/"


async def _platform_document(
    indexer: IndexerClient,
    owner_id: str,
    kb: rag_pb2.KnowledgeBase,
    document_id: str,
    settings: GatewaySettings,
) -> indexer_pb2.Document:
    """A live document of a platform-bucket knowledge base, under its owner's prefix."""
    prefix = _platform_prefix(kb, owner_id, settings)
    documents = (await indexer.list_documents(owner_id, kb.id)).documents
    document = next(
        (
            doc
            for doc in documents
            if doc.id == document_id
            and doc.state != indexer_pb2.DOCUMENT_STATE_DELETED
            and doc.key.startswith(prefix)
        ),
        None,
    )
    if document is None:
        raise NotFound("document_not_found", "No such document.")
    return document


def _read_only() -> InvalidInput:
    return InvalidInput(
        "external_bucket_read_only",
        "This knowledge base reads your own bucket; put and delete documents there directly, "
        "and they are picked up by themselves.",
    )
