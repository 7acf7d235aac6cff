"""When the auth service cannot be reached, callers get a 503 sentence, not a stack trace."""

from fastapi.testclient import TestClient

from services.gateway.main import create_app
from services.gateway.settings import GatewaySettings
from tests.servers import free_port


def test_auth_down_gives_503() -> None:
    settings = GatewaySettings(
        auth_grpc_address=f"127.0.0.1:{free_port()}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        grpc_deadline_seconds=1.0,
        service_token="unit-service-token",
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/me", headers={"Authorization": "Bearer flk_abc_def"})
        assert response.status_code == 503
        assert response.json() == {
            "error": {
                "code": "auth_unavailable",
                "message": "The auth service is not reachable right now. Please try again shortly.",
            }
        }
        assert client.get("/healthz").status_code == 200
