"""RAG service entry point: settings -> logging -> telemetry -> migrate -> serve."""

from __future__ import annotations

from pathlib import Path

from forgeline.v1 import indexer_pb2_grpc, rag_pb2_grpc

from services.common.crypto import SecretBox
from services.common.db import create_db_engine, run_migrations
from services.common.embedding import DEFAULT_MODEL
from services.common.grpc_client import sync_channel
from services.common.grpc_server import build_server, serve_until_signalled
from services.common.logging import get_logger, setup_logging
from services.common.outbound import policy_for
from services.common.telemetry import setup_telemetry, shutdown_telemetry
from services.common.vectors import chroma_client
from services.rag.answering import Answerer
from services.rag.reranking import CrossEncoderReranker
from services.rag.search import Searcher
from services.rag.servicer import RagServicer
from services.rag.settings import RagSettings

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_rag"


def main() -> None:
    settings = RagSettings()
    setup_logging("rag", settings.log_level)
    setup_telemetry("rag", settings)
    engine = create_db_engine(settings)
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    reranker = None
    if settings.rag_reranker_model:
        reranker = CrossEncoderReranker(settings.rag_reranker_model)
    searcher = Searcher(chroma_client(settings), reranker=reranker)
    searcher.warm_up(DEFAULT_MODEL)
    servicer = RagServicer(
        engine=engine,
        settings=settings,
        secrets=SecretBox(settings),
        searcher=searcher,
        answerer=Answerer(
            timeout_seconds=settings.answer_timeout_seconds,
            policy=policy_for(
                settings,
                purpose="model endpoint",
                allow_private=settings.rag_allow_private_model_endpoints,
                trusted_urls=[settings.public_url],
            ),
        ),
        indexer=indexer_pb2_grpc.IndexerServiceStub(
            sync_channel(settings.indexer_grpc_address, token=settings.service_token)
        ),
        max_k=settings.retrieve_max_k,
    )
    server, health, port = build_server(
        [lambda s: rag_pb2_grpc.add_RagServiceServicer_to_server(servicer, s)],
        settings.rag_grpc_bind,
        service_token=settings.service_token,
    )
    get_logger(__name__).info("rag service listening", port=port)
    serve_until_signalled(server, health, on_stop=shutdown_telemetry)
