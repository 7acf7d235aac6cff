"""Knowledge bases: create, list, get, update, delete, always filtered by owner."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.common.crypto import SecretBox
from services.common.db import get_owned, list_owned, session_scope
from services.common.embedding import DEFAULT_MODEL, MODELS, available_models
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.storage import attached_bucket_policy
from services.rag import attached_buckets
from services.rag.models import KnowledgeBase
from services.rag.settings import RagSettings

MAX_NAME = 100
# S3's bucket naming rules (3-63 lowercase letters, digits, dots and hyphens).
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class ExternalBucketInput:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class NewKnowledgeBase:
    name: str
    embedding_model: str
    chunk_tokens: int
    overlap_tokens: int
    external: ExternalBucketInput | None


@dataclass(frozen=True)
class KnowledgeBaseChanges:
    name: str | None = None
    embedding_model: str | None = None
    chunk_tokens: int | None = None
    overlap_tokens: int | None = None


def _valid_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(
            "invalid_name", f"Give the knowledge base a name of 1 to {MAX_NAME} characters."
        )
    return name


def _valid_model(raw: str) -> str:
    model = raw or DEFAULT_MODEL
    if model not in MODELS:
        raise InvalidInput(
            "unknown_embedding_model",
            f"'{model}' is not an embedding model we know. Choose one of: {', '.join(MODELS)}.",
        )
    present = [name for name, here in available_models().items() if here]
    if model not in present:
        raise InvalidInput(
            "embedding_model_unavailable",
            f"The weights of '{model}' are not on this machine; you can use: {', '.join(present)}.",
        )
    return model


def _valid_chunking(model: str, chunk_tokens: int, overlap_tokens: int) -> tuple[int, int]:
    chunk = chunk_tokens or MODELS[model].default_chunk_tokens
    if not 32 <= chunk <= 2048:
        raise InvalidInput("invalid_chunking", "Chunks must be between 32 and 2048 tokens long.")
    if not 0 <= overlap_tokens < chunk // 2:
        raise InvalidInput("invalid_chunking", "The overlap must be less than half a chunk.")
    return chunk, overlap_tokens


def _attach(
    kb: KnowledgeBase, ext: ExternalBucketInput, settings: RagSettings, secrets: SecretBox
) -> None:
    if not ext.bucket or not ext.access_key_id or not ext.secret_access_key:
        raise InvalidInput(
            "invalid_bucket", "An attached bucket needs its name, an access key and its secret."
        )
    if not _BUCKET_NAME.match(ext.bucket):
        raise InvalidInput("invalid_bucket", f"'{ext.bucket}' is not a valid bucket name.")
    prefix = ext.prefix.strip("/") + "/" if ext.prefix.strip("/") else ""
    endpoint = ext.endpoint_url or None
    attached_buckets.check_endpoint(
        endpoint, settings=settings, allow_private=settings.rag_allow_private_bucket_endpoints
    )
    if endpoint is None and not settings.s3_endpoint_url and ext.bucket == settings.s3_bucket:
        raise InvalidInput("endpoint_not_allowed", "That bucket is Forgeline's own object store.")
    attached_buckets.dry_run(
        policy=attached_bucket_policy(settings),
        bucket=ext.bucket,
        prefix=prefix,
        endpoint_url=endpoint,
        region=ext.region or None,
        access_key_id=ext.access_key_id,
        secret_access_key=ext.secret_access_key,
    )
    kb.external = True
    kb.bucket = ext.bucket
    kb.prefix = prefix
    kb.external_endpoint_url = endpoint
    kb.external_region = ext.region or None
    kb.external_access_key_id = ext.access_key_id
    kb.external_secret_encrypted = secrets.encrypt(ext.secret_access_key)


def create(
    engine: Engine,
    settings: RagSettings,
    secrets: SecretBox,
    *,
    owner_id: str,
    new: NewKnowledgeBase,
) -> KnowledgeBase:
    name = _valid_name(new.name)
    model = _valid_model(new.embedding_model)
    chunk, overlap = _valid_chunking(model, new.chunk_tokens, new.overlap_tokens)
    kb = KnowledgeBase(
        owner_id=owner_id,
        name=name,
        embedding_model=model,
        chunk_tokens=chunk,
        overlap_tokens=overlap,
        bucket=settings.s3_bucket,
        prefix="",
    )
    if new.external is not None:
        _attach(kb, new.external, settings, secrets)
    else:
        # Every object key starts with its owner: <owner>/kbs/<kb id>/<file name>.
        kb.prefix = f"{owner_id}/kbs/{kb.id}/"
    try:
        with session_scope(engine) as db:
            db.add(kb)
    except IntegrityError as exc:
        raise Conflict(
            "kb_name_taken", "You already have a knowledge base with this name."
        ) from exc
    return kb


def update(
    engine: Engine, *, owner_id: str, kb_id: str, changes: KnowledgeBaseChanges
) -> tuple[KnowledgeBase, bool]:
    """The updated knowledge base, and whether its documents must be indexed again."""
    try:
        with session_scope(engine) as db:
            kb = get_owned(db, KnowledgeBase, owner_id, kb_id)
            if kb is None:
                raise NotFound("kb_not_found", "No such knowledge base.")
            before = (kb.embedding_model, kb.chunk_tokens, kb.overlap_tokens)
            if changes.name is not None:
                kb.name = _valid_name(changes.name)
            model = kb.embedding_model
            if changes.embedding_model is not None:
                model = _valid_model(changes.embedding_model)
            chunk_tokens = kb.chunk_tokens
            if changes.chunk_tokens is not None:
                # 0 means "the model's default", as at creation.
                chunk_tokens = changes.chunk_tokens
            elif model != kb.embedding_model:
                chunk_tokens = 0  # a size chosen for the old model may not fit the new one
            overlap = (
                kb.overlap_tokens if changes.overlap_tokens is None else changes.overlap_tokens
            )
            kb.chunk_tokens, kb.overlap_tokens = _valid_chunking(model, chunk_tokens, overlap)
            kb.embedding_model = model
            db.add(kb)
            db.flush()
            reindex = before != (kb.embedding_model, kb.chunk_tokens, kb.overlap_tokens)
    except IntegrityError as exc:
        raise Conflict(
            "kb_name_taken", "You already have a knowledge base with this name."
        ) from exc
    return kb, reindex


def list_sources(engine: Engine, *, external_only: bool) -> list[KnowledgeBase]:
    """Every owner's knowledge bases, for the indexer (an internal caller)."""
    with session_scope(engine) as db:
        statement = select(KnowledgeBase)
        if external_only:
            statement = statement.where(col(KnowledgeBase.external).is_(True))
        return list(db.exec(statement.order_by(col(KnowledgeBase.created_at))).all())


def list_for(engine: Engine, *, owner_id: str) -> list[KnowledgeBase]:
    with session_scope(engine) as db:
        return list_owned(db, KnowledgeBase, owner_id, newest_first=False)


def get(engine: Engine, *, owner_id: str, kb_id: str) -> KnowledgeBase:
    with session_scope(engine) as db:
        kb = get_owned(db, KnowledgeBase, owner_id, kb_id)
    if kb is None:  # another user's knowledge base looks exactly like a missing one
        raise NotFound("kb_not_found", "No such knowledge base.")
    return kb


def get_by_id(engine: Engine, *, kb_id: str) -> KnowledgeBase | None:
    """For internal callers (the indexer) that know a knowledge base only by its id."""
    with session_scope(engine) as db:
        return db.get(KnowledgeBase, kb_id)


def delete(engine: Engine, *, owner_id: str, kb_id: str) -> KnowledgeBase:
    with session_scope(engine) as db:
        kb = get_owned(db, KnowledgeBase, owner_id, kb_id)
        if kb is None:
            raise NotFound("kb_not_found", "No such knowledge base.")
        db.delete(kb)
    return kb
