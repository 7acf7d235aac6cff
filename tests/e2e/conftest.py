"""The browser session: the platform started once (SQLite), as `make run` starts it, serving
the built web client (`make web` builds `web/dist`), with the test OpenID Provider as its
sign-in provider, and Debian's Chromium driven by Playwright. Screenshots of each step go to
tests/e2e/artifacts/ (git-ignored)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.paths import TEST_MODELS_DIR
from tests.servers import free_port
from tests.servers.oidc import OidcProvider, run_oidc_provider
from tests.servers.platform import REPO, Platform, platform_env, run_platform

# The machine may be busy (the whole suite runs beside): wait up to 30 s for what the page
# should show, not Playwright's 5.
expect.set_options(timeout=30_000)
CHROMIUM = os.environ.get("FORGELINE_E2E_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WEB_INDEX = REPO / "web" / "dist" / "index.html"
# The bundled model as the integration session converts it (the trainer reads its tokenizer).
MODELS_DIR = TEST_MODELS_DIR


OIDC_PROVIDER_NAME = "testidp"
OIDC_DISPLAY_NAME = "Test IdP"


# The stack's administrator, made with its setup code before any test registers.
ADMIN_EMAIL = "owner@e2e.example.com"
ADMIN_PASSWORD = "a long passphrase that runs the place"


@dataclass
class WebStack:
    platform: Platform
    idp: OidcProvider

    @property
    def url(self) -> str:
        return self.platform.url


@pytest.fixture(scope="package")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """The platform with the test OpenID Provider as its one sign-in provider; stopped once
    the browser tests are done (package scope), before the integration suite starts its own."""
    if not WEB_INDEX.is_file():
        pytest.fail("The web client is not built: run `make web` (make test does) first.")
    data_dir = tmp_path_factory.mktemp("forgeline-e2e")
    gateway_port = free_port()
    callback = f"http://127.0.0.1:{gateway_port}/api/v1/auth/oauth/{OIDC_PROVIDER_NAME}/callback"
    client_id, client_secret = "forgeline-e2e", secrets.token_urlsafe(24)
    with run_oidc_provider(
        client_id=client_id, client_secret=client_secret, redirect_uris=[callback]
    ) as idp:
        provider = {
            "name": OIDC_PROVIDER_NAME,
            "display_name": OIDC_DISPLAY_NAME,
            "discovery_url": idp.discovery_url,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        env = platform_env(
            data_dir,
            GATEWAY_PORT=str(gateway_port),
            OAUTH_PROVIDERS=json.dumps([provider]),
            TRAINER_MODELS_DIR=str(MODELS_DIR),
            # test_bucket_sync.py: a moto server on this machine plays the user's own bucket
            # (a loopback endpoint, refused by default), and attached buckets are listed
            # every few seconds rather than every minute.
            RAG_ALLOW_PRIVATE_BUCKET_ENDPOINTS="true",
            # The test IdP listens on this machine (services/auth/oauth.py: the guard).
            OAUTH_ALLOW_PRIVATE_PROVIDERS="true",
            ATTACHED_RECONCILE_INTERVAL_SECONDS="5",
            # The journey checks that an evaluation is shown, not its score: short answers.
            TRAINER_BENCHMARK_MAX_NEW_TOKENS="48",
            # Every browser test registers from loopback.
            REGISTRATIONS_PER_ADDRESS="100000",
        )
        with run_platform(data_dir, env) as platform:
            admin = httpx.post(
                f"{platform.url}/api/v1/auth/register",
                json={
                    "email": ADMIN_EMAIL,
                    "password": ADMIN_PASSWORD,
                    "setup_code": platform.setup_code(),
                },
                timeout=60,
            )
            assert admin.status_code == 201, admin.text
            assert admin.json()["role"] == "admin", admin.text
            yield WebStack(platform, idp)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class ConsoleLog:
    """Errors the page reported: console.error, uncaught exceptions, failed requests."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def open_page(
    browser: Browser, *, width: int = 1280, height: int = 900
) -> tuple[BrowserContext, Page, ConsoleLog]:
    """A fresh browser context (no session) of this size, with one page whose console is
    watched and whose waits allow for a busy machine (30 s)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    console = watch_console(page)
    page.set_default_timeout(30_000)
    return context, page, console


def watch_console(page: Page) -> ConsoleLog:
    log = ConsoleLog()
    page.on(
        "console",
        lambda message: (
            log.errors.append(f"console.{message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: log.errors.append(f"uncaught: {error}"))
    return log
