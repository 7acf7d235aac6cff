"""REST model families. Hashes and secrets never appear here, except a key shown once."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from forgeline.v1 import auth_pb2, indexer_pb2, rag_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field, SecretStr
from pydantic.config import JsonDict


class ErrorInfo(BaseModel):
    code: str = Field(examples=["invalid_credentials"])
    message: str = Field(examples=["The email or password is not correct."])


class ErrorResponse(BaseModel):
    error: ErrorInfo


class Credentials(BaseModel):
    # Lengths are checked here too, so an oversized body never reaches the hash function.
    email: str = Field(min_length=3, max_length=254, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=128, examples=["a long passphrase"])


class Registration(Credentials):
    # The one-time code `make run` printed: this account becomes the first administrator.
    setup_code: str = Field("", max_length=128)


class RefreshRequest(BaseModel):
    # Left out by the web client, whose refresh token is in a cookie
    # (services/gateway/refresh_cookie.py).
    refresh_token: str | None = Field(None, min_length=1, max_length=128)


def _dt(stamp: Timestamp, present: bool = True) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


class UserPublic(BaseModel):
    id: str
    email: str
    role: Literal["admin", "member"]
    disabled: bool
    created_at: datetime | None

    @classmethod
    def from_proto(cls, user: auth_pb2.User) -> UserPublic:
        return cls(
            id=user.id,
            email=user.email,
            role="admin" if user.role == auth_pb2.ROLE_ADMIN else "member",
            disabled=user.disabled,
            created_at=_dt(user.created_at, user.HasField("created_at")),
        )


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class UserUpdate(BaseModel):
    disabled: bool


class TokenPairPublic(BaseModel):
    access_token: str
    # null where it was set as the web client's HttpOnly cookie instead
    refresh_token: str | None
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (a scheme name, not a secret)
    expires_in: int
    user: UserPublic

    @classmethod
    def from_proto(cls, pair: auth_pb2.TokenPair) -> TokenPairPublic:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            expires_in=pair.expires_in,
            user=UserPublic.from_proto(pair.user),
        )


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["ci pipeline"])
    scopes: list[Literal["user", "admin"]] = Field(default_factory=list, max_length=4)
    requests_per_minute: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="This key's limit of requests a minute on the OpenAI-compatible API "
        "(/v1); unset: the platform's default. At most the platform's default, if it has one.",
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="This key's limit of tokens (prompt + completion) a minute on /v1; "
        "unset: the platform's default.",
    )


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    requests_per_minute: int | None = Field(
        None, description="The key's own request limit a minute; null: the platform's default."
    )
    tokens_per_minute: int | None = Field(
        None, description="The key's own token limit a minute; null: the platform's default."
    )

    @classmethod
    def from_proto(cls, key: auth_pb2.ApiKey) -> ApiKeyPublic:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            created_at=_dt(key.created_at, key.HasField("created_at")),
            last_used_at=_dt(key.last_used_at, key.HasField("last_used_at")),
            revoked_at=_dt(key.revoked_at, key.HasField("revoked_at")),
            requests_per_minute=key.requests_per_minute or None,
            tokens_per_minute=key.tokens_per_minute or None,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The whole key. It is shown only this once: store it now.")


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]
    count: int


class OAuthProviderPublic(BaseModel):
    name: str
    display_name: str
    start_url: str


class OAuthProvidersPublic(BaseModel):
    data: list[OAuthProviderPublic]
    count: int


# --- knowledge bases ---------------------------------------------------------------------

# Write-only: accepted in a request, never serialised (exclude) nor printed (SecretStr).
_WRITE_ONLY: JsonDict = {"writeOnly": True}
_HTTP_URL = r"^https?://\S+$"
SNIPPET_CHARS = 400
_SPACES = re.compile(r"\s+")


class ChunkingSettings(BaseModel):
    chunk_tokens: int = Field(
        0, ge=0, le=8192, description="Tokens per chunk; 0: the embedding model's default."
    )
    overlap_tokens: int = Field(0, ge=0, le=4096)


class ExternalBucketCreate(BaseModel):
    """The user's own S3-compatible bucket. Forgeline only reads it (see the upload route)."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    prefix: str = Field("", max_length=512)
    endpoint_url: str | None = Field(
        None, max_length=2048, pattern=_HTTP_URL, description="Omitted: AWS S3 itself."
    )
    region: str | None = Field(None, max_length=64)
    access_key_id: str = Field(min_length=1, max_length=128)
    secret_access_key: SecretStr = Field(
        min_length=1, max_length=256, exclude=True, json_schema_extra=_WRITE_ONLY
    )

    def to_proto(self) -> rag_pb2.ExternalBucket:
        return rag_pb2.ExternalBucket(
            bucket=self.bucket,
            prefix=self.prefix,
            endpoint_url=self.endpoint_url or "",
            region=self.region or "",
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key.get_secret_value(),
        )


class KnowledgeBaseCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["Product manuals"])
    embedding_model: str = Field(
        "", max_length=200, description="Empty: the default model (all-MiniLM-L6-v2)."
    )
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    external_bucket: ExternalBucketCreate | None = None

    def to_proto(self, owner_id: str) -> rag_pb2.CreateKnowledgeBaseRequest:
        request = rag_pb2.CreateKnowledgeBaseRequest(
            owner_id=owner_id,
            name=self.name,
            embedding_model=self.embedding_model,
            chunking=rag_pb2.ChunkingSettings(
                chunk_tokens=self.chunking.chunk_tokens,
                overlap_tokens=self.chunking.overlap_tokens,
            ),
        )
        if self.external_bucket is not None:
            request.external_bucket.CopyFrom(self.external_bucket.to_proto())
        return request


class KnowledgeBaseUpdate(BaseModel):
    """Only the fields given change. A new embedding model or new chunking re-indexes every
    document (each stays searchable under its old settings until its turn comes)."""

    name: str | None = Field(None, min_length=1, max_length=100)
    embedding_model: str | None = Field(None, max_length=200)
    chunking: ChunkingSettings | None = None

    def to_proto(self, owner_id: str, kb_id: str) -> rag_pb2.UpdateKnowledgeBaseRequest:
        request = rag_pb2.UpdateKnowledgeBaseRequest(owner_id=owner_id, id=kb_id)
        if self.name is not None:
            request.name = self.name
        if self.embedding_model is not None:
            request.embedding_model = self.embedding_model
        if self.chunking is not None:
            request.chunking.CopyFrom(
                rag_pb2.ChunkingSettings(
                    chunk_tokens=self.chunking.chunk_tokens,
                    overlap_tokens=self.chunking.overlap_tokens,
                )
            )
        return request


class KnowledgeBasePublic(BaseModel):
    id: str
    name: str
    embedding_model: str
    chunking: ChunkingSettings
    bucket: str
    prefix: str
    external: bool = Field(description="True when the documents live in the user's own bucket.")
    created_at: datetime | None

    @classmethod
    def from_proto(cls, kb: rag_pb2.KnowledgeBase) -> KnowledgeBasePublic:
        return cls(
            id=kb.id,
            name=kb.name,
            embedding_model=kb.embedding_model,
            chunking=ChunkingSettings(
                chunk_tokens=kb.chunking.chunk_tokens, overlap_tokens=kb.chunking.overlap_tokens
            ),
            bucket=kb.bucket,
            prefix=kb.prefix,
            external=kb.external_bucket,
            created_at=_dt(kb.created_at, kb.HasField("created_at")),
        )


class KnowledgeBasesPublic(BaseModel):
    data: list[KnowledgeBasePublic]
    count: int


DocumentState = Literal["pending", "indexed", "failed", "deleted"]
_DOCUMENT_STATES: dict[int, DocumentState] = {
    indexer_pb2.DOCUMENT_STATE_PENDING: "pending",
    indexer_pb2.DOCUMENT_STATE_INDEXED: "indexed",
    indexer_pb2.DOCUMENT_STATE_FAILED: "failed",
    indexer_pb2.DOCUMENT_STATE_DELETED: "deleted",
}


def document_state(state: int) -> DocumentState:
    return _DOCUMENT_STATES.get(state, "pending")


class DocumentFailure(BaseModel):
    code: str = Field(examples=["extract_failed"])
    reason: str


class DocumentPublic(BaseModel):
    id: str
    kb_id: str
    name: str
    key: str
    etag: str
    state: DocumentState
    failure: DocumentFailure | None = Field(None, description="Set when `state` is `failed`.")
    chunks: int
    pages: int
    size: int
    updated_at: datetime | None

    @classmethod
    def from_proto(cls, doc: indexer_pb2.Document) -> DocumentPublic:
        state = document_state(doc.state)
        failure = (
            DocumentFailure(code=doc.failure_code or "index_failed", reason=doc.failure_reason)
            if state == "failed"
            else None
        )
        return cls(
            id=doc.id,
            kb_id=doc.kb_id,
            name=doc.name,
            key=doc.key,
            etag=doc.etag,
            state=state,
            failure=failure,
            chunks=doc.chunks,
            pages=doc.pages,
            size=doc.size,
            updated_at=_dt(doc.updated_at, doc.HasField("updated_at")),
        )


class DocumentsPublic(BaseModel):
    data: list[DocumentPublic]
    count: int


class UploadedFile(BaseModel):
    """One stored object, or one file that was refused (then `error` is set)."""

    name: str = Field(description="The document's name; for a zip member, its path inside.")
    source: str = Field(description="The file as sent (for a zip member: the archive).")
    key: str | None = None
    document_id: str | None = None
    state: DocumentState | None = None
    error: ErrorInfo | None = None


class UploadResult(BaseModel):
    data: list[UploadedFile]
    count: int
    stored: int
    failed: int


class ReconcilePublic(BaseModel):
    queued_for_indexing: int
    removed: int
    unchanged: int

    @classmethod
    def from_proto(cls, result: indexer_pb2.ReconcileResponse) -> ReconcilePublic:
        return cls(
            queued_for_indexing=result.queued_for_indexing,
            removed=result.removed,
            unchanged=result.unchanged,
        )


class RetrieveFilters(BaseModel):
    document: str | None = Field(
        None, min_length=1, max_length=255, description="Only this document (its file name)."
    )

    def to_proto(self) -> list[rag_pb2.MetadataFilter]:
        if self.document is None:
            return []
        return [rag_pb2.MetadataFilter(key="document", value=self.document)]


class RetrieveRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=50)
    filters: RetrieveFilters = Field(default_factory=RetrieveFilters)

    def to_proto(self, owner_id: str, kb_id: str) -> rag_pb2.RetrieveRequest:
        return rag_pb2.RetrieveRequest(
            owner_id=owner_id,
            kb_ids=[kb_id],
            query=self.query,
            k=self.k,
            filters=self.filters.to_proto(),
        )


def pages_label(start: int, end: int) -> str:
    """0-based page indexes as people say them: `p. 54`, `pp. 54-56`."""
    first, last = start + 1, max(start, end) + 1
    return f"p. {first}" if first == last else f"pp. {first}-{last}"


def snippet(text: str) -> str:
    flat = _SPACES.sub(" ", text).strip()
    if len(flat) <= SNIPPET_CHARS:
        return flat
    cut = flat[:SNIPPET_CHARS].rsplit(" ", 1)[0] or flat[:SNIPPET_CHARS]
    return cut + "…"


class HitPublic(BaseModel):
    document: str = Field(description="The document's file name.")
    key: str
    page_index_start: int = Field(description="0-based, inclusive.")
    page_index_end: int = Field(description="0-based, inclusive.")
    pages: str = Field(description="The pages for people, 1-based.", examples=["p. 54"])
    snippet: str
    score: float

    @classmethod
    def from_proto(cls, hit: rag_pb2.Hit) -> HitPublic:
        return cls(
            document=hit.document,
            key=hit.key,
            page_index_start=hit.page_start,
            page_index_end=hit.page_end,
            pages=pages_label(hit.page_start, hit.page_end),
            snippet=snippet(hit.text),
            score=hit.score,
        )


class HitsPublic(BaseModel):
    data: list[HitPublic]
    count: int


class ModelEndpoint(BaseModel):
    """The OpenAI-compatible API that writes the answer: a deployment or any external one."""

    base_url: str = Field(max_length=2048, pattern=_HTTP_URL, examples=["http://127.0.0.1:8001/v1"])
    api_key: SecretStr = Field(
        SecretStr(""), max_length=4096, exclude=True, json_schema_extra=_WRITE_ONLY
    )
    model: str = Field(min_length=1, max_length=200, examples=["smollm2-135m-instruct"])


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    k: int = Field(5, ge=1, le=50)
    filters: RetrieveFilters = Field(default_factory=RetrieveFilters)
    stream: bool = Field(False, description="True: answer as server-sent events.")
    model: ModelEndpoint
    max_tokens: int = Field(512, ge=1, le=32768)
    temperature: float = Field(0.2, ge=0.0, le=2.0)

    def to_proto(self, owner_id: str, kb_id: str) -> rag_pb2.AnswerRequest:
        return rag_pb2.AnswerRequest(
            owner_id=owner_id,
            kb_ids=[kb_id],
            question=self.question,
            k=self.k,
            filters=self.filters.to_proto(),
            base_url=self.model.base_url,
            api_key=self.model.api_key.get_secret_value(),
            model=self.model.model,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )


class CitationPublic(BaseModel):
    number: int = Field(description="The `[n]` in the answer.")
    document: str
    key: str
    pages: str = Field(examples=["pp. 54-55"])
    page_index_start: int
    page_index_end: int
    snippet: str

    @classmethod
    def from_proto(cls, citation: rag_pb2.Citation) -> CitationPublic:
        hit = citation.hit
        return cls(
            number=citation.number,
            document=hit.document,
            key=hit.key,
            pages=pages_label(hit.page_start, hit.page_end),
            page_index_start=hit.page_start,
            page_index_end=hit.page_end,
            snippet=snippet(hit.text),
        )


class QueryResponse(BaseModel):
    answer: str
    citations: list[CitationPublic]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
