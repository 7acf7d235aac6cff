import grpc
import pytest
from pydantic import ValidationError

from services.common.errors import (
    NotFound,
    RateLimited,
    Unavailable,
    from_grpc,
    grpc_trailers,
)
from services.common.settings import BaseServiceSettings


def test_errors_survive_the_grpc_round_trip() -> None:
    original = RateLimited("account_locked", "Try again in 30 seconds.", retry_after=30)
    back = from_grpc(
        original.grpc_status, original.message, grpc_trailers(original), service="auth"
    )
    assert isinstance(back, RateLimited)
    assert (back.code, back.message, back.retry_after) == ("account_locked", original.message, 30)
    assert back.http_status == 429

    missing = NotFound("api_key_not_found", "No such API key.")
    assert (
        from_grpc(
            missing.grpc_status, missing.message, grpc_trailers(missing), service="auth"
        ).http_status
        == 404
    )


def test_transport_failures_become_unavailable() -> None:
    error = from_grpc(grpc.StatusCode.UNAVAILABLE, "connection refused", (), service="auth")
    assert isinstance(error, Unavailable)
    assert error.code == "auth_unavailable"
    assert "connection refused" not in error.message


def test_database_url_defaults_and_normalisation(tmp_path: object) -> None:
    settings = BaseServiceSettings(data_dir=tmp_path)
    assert settings.sqlalchemy_url.startswith("sqlite:///") and settings.sqlalchemy_url.endswith(
        "forgeline.db"
    )
    pg = BaseServiceSettings(database_url="postgres://u:p@db:5432/x")
    assert pg.sqlalchemy_url == "postgresql+psycopg://u:p@db:5432/x"


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError, match="FORGELINE_SECRET_KEY"):
        BaseServiceSettings(environment="production", secret_key="changeme", database_url="x")
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        BaseServiceSettings(environment="production", secret_key="a-real-looking-key")
    with pytest.raises(ValidationError, match="FORGELINE_SERVICE_TOKEN"):
        BaseServiceSettings(
            environment="production", secret_key="a-real-looking-key", database_url="x"
        )
    BaseServiceSettings(
        environment="production",
        secret_key="a-real-looking-key",
        database_url="x",
        service_token="a-random-token",
    )
