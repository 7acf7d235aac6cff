"""Knowledge bases: create, list, get, delete, always filtered by owner."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.common.crypto import SecretBox
from services.common.db import owned, session_scope
from services.common.embedding import DEFAULT_MODEL, MODELS, available_models
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.settings import BaseServiceSettings
from services.rag.models import KnowledgeBase

MAX_NAME = 100


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


def _validate(new: NewKnowledgeBase) -> tuple[str, int, int]:
    name = new.name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(
            "invalid_name", f"Give the knowledge base a name of 1 to {MAX_NAME} characters."
        )
    model = new.embedding_model or DEFAULT_MODEL
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
    spec = MODELS[model]
    chunk = new.chunk_tokens or spec.default_chunk_tokens
    if not 32 <= chunk <= 2048:
        raise InvalidInput("invalid_chunking", "Chunks must be between 32 and 2048 tokens long.")
    if not 0 <= new.overlap_tokens < chunk // 2:
        raise InvalidInput("invalid_chunking", "The overlap must be less than half a chunk.")
    return model, chunk, new.overlap_tokens


def create(
    engine: Engine,
    settings: BaseServiceSettings,
    secrets: SecretBox,
    *,
    owner_id: str,
    new: NewKnowledgeBase,
) -> KnowledgeBase:
    model, chunk, overlap = _validate(new)
    kb = KnowledgeBase(
        owner_id=owner_id,
        name=new.name.strip(),
        embedding_model=model,
        chunk_tokens=chunk,
        overlap_tokens=overlap,
        bucket=settings.s3_bucket,
        prefix="",
    )
    if new.external is not None:
        ext = new.external
        if not ext.bucket or not ext.access_key_id or not ext.secret_access_key:
            raise InvalidInput(
                "invalid_bucket", "An attached bucket needs its name, an access key and its secret."
            )
        kb.external = True
        kb.bucket = ext.bucket
        kb.prefix = ext.prefix.strip("/") + "/" if ext.prefix.strip("/") else ""
        kb.external_endpoint_url = ext.endpoint_url or None
        kb.external_region = ext.region or None
        kb.external_access_key_id = ext.access_key_id
        kb.external_secret_encrypted = secrets.encrypt(ext.secret_access_key)
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


def list_for(engine: Engine, *, owner_id: str) -> list[KnowledgeBase]:
    with session_scope(engine) as db:
        statement = owned(select(KnowledgeBase), KnowledgeBase, owner_id)
        return list(db.exec(statement.order_by(col(KnowledgeBase.created_at))).all())


def get(engine: Engine, *, owner_id: str, kb_id: str) -> KnowledgeBase:
    with session_scope(engine) as db:
        kb = db.exec(
            owned(select(KnowledgeBase), KnowledgeBase, owner_id).where(KnowledgeBase.id == kb_id)
        ).first()
    if kb is None:  # another user's knowledge base looks exactly like a missing one
        raise NotFound("kb_not_found", "No such knowledge base.")
    return kb


def get_by_id(engine: Engine, *, kb_id: str) -> KnowledgeBase | None:
    """For internal callers (the indexer) that know a knowledge base only by its id."""
    with session_scope(engine) as db:
        return db.get(KnowledgeBase, kb_id)


def delete(engine: Engine, *, owner_id: str, kb_id: str) -> KnowledgeBase:
    with session_scope(engine) as db:
        kb = db.exec(
            owned(select(KnowledgeBase), KnowledgeBase, owner_id).where(KnowledgeBase.id == kb_id)
        ).first()
        if kb is None:
            raise NotFound("kb_not_found", "No such knowledge base.")
        db.delete(kb)
    return kb
