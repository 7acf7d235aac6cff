"""Auth service entry point: settings -> logging -> telemetry -> migrate -> serve."""

from __future__ import annotations

from pathlib import Path

from forgeline.v1 import auth_pb2_grpc

from services.auth.context import AuthContext, RevocationPublisher
from services.auth.servicer import AuthServicer
from services.auth.settings import AuthSettings
from services.auth.setup_codes import ensure_setup_code
from services.auth.tokens import TokenIssuer
from services.common.crypto import SecretBox
from services.common.db import create_db_engine, run_migrations
from services.common.grpc_server import build_server, serve_until_signalled
from services.common.logging import get_logger, setup_logging
from services.common.telemetry import setup_telemetry, shutdown_telemetry

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_auth"


def build_context(settings: AuthSettings) -> AuthContext:
    engine = create_db_engine(settings)
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    return AuthContext(
        settings=settings,
        engine=engine,
        issuer=TokenIssuer(settings),
        revocations=RevocationPublisher(settings.redis_url),
        secrets=SecretBox(settings),
    )


def main() -> None:
    settings = AuthSettings()
    setup_logging("auth", settings.log_level)
    setup_telemetry("auth", settings)
    ctx = build_context(settings)
    # While there is no administrator, a one-time code makes one (`make run` prints it).
    ensure_setup_code(ctx.engine, settings.setup_code_file)
    servicer = AuthServicer(ctx)
    server, health, port = build_server(
        [lambda s: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, s)],
        settings.auth_grpc_bind,
        service_token=settings.service_token,
    )
    get_logger(__name__).info("auth service listening", port=port)
    serve_until_signalled(server, health, on_stop=shutdown_telemetry)
