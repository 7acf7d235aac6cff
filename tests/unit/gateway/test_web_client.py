"""The gateway serves the web client: its files, its index.html for the client's own pages
(so they can be reloaded), JSON 404s for the API; a browser finishing a provider sign-in is
sent on to the client's page."""

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway import web
from services.gateway.errors import install_error_handlers
from services.gateway.main import create_app
from services.gateway.settings import GatewaySettings
from tests.servers import free_port

INDEX = "<!doctype html><title>Forgeline</title>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    return tmp_path


def test_pages_fall_back_to_index_and_api_paths_do_not(dist: Path) -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.mount("/", web.WebClient(dist), name="web")
    with TestClient(app) as client:
        assert client.get("/").text == INDEX
        assert client.get("/assets/app.js").text == "console.log(1)"
        for page in ("/settings", "/chat", "/deployments/abc"):
            response = client.get(page)
            assert response.status_code == 200, page
            assert response.text == INDEX
        for missing in ("/assets/gone.js", "/api/v1/nothing", "/v1/nothing", "/favicon.ico"):
            response = client.get(missing)
            assert response.status_code == 404, missing
            assert response.json()["error"]["code"] == "not_found"
        assert client.post("/settings").status_code in (404, 405)


def test_the_client_runs_only_its_own_scripts_and_cannot_be_framed(dist: Path) -> None:
    app = FastAPI()
    app.mount("/", web.WebClient(dist), name="web")
    with TestClient(app) as client:
        for path in ("/", "/chat", "/assets/app.js"):
            headers = client.get(path).headers
            policy = dict(
                directive.strip().split(" ", 1)
                for directive in headers["content-security-policy"].split(";")
            )
            assert policy["script-src"] == "'self'", path
            assert policy["connect-src"] == "'self'", path
            assert policy["frame-ancestors"] == "'none'", path
            assert headers["x-content-type-options"] == "nosniff", path


def test_browser_oauth_callback_goes_to_the_client(
    dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "WEB_DIST", dist)
    settings = GatewaySettings(
        auth_grpc_address=f"127.0.0.1:{free_port()}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        grpc_deadline_seconds=1.0,
        service_token="unit-service-token",
    )
    callback = "/api/v1/auth/oauth/google/callback?error=access_denied"
    with TestClient(create_app(settings), follow_redirects=False) as client:
        # A program still gets the JSON error.
        response = client.get(callback)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "oauth_denied"
        # A browser is sent to the client's page, with the sentence in the fragment.
        response = client.get(callback, headers={"Accept": "text/html,application/xhtml+xml"})
        assert response.status_code == 303
        target = urlparse(response.headers["location"])
        assert target.path == web.OAUTH_PAGE
        assert parse_qs(target.fragment)["error"] == ["Sign-in was cancelled at the provider."]
