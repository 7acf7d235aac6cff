"""The integration session: the whole platform, started as `make run` starts it, once per
database backend (SQLite, then PostgreSQL), with a real OpenID Provider and a real OTLP
receiver beside it."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import httpx
import pytest

from tests.factories import SignedInUser, login, make_user, random_email
from tests.integration.deployment_helpers import Deployed, bundled_deployment
from tests.integration.job_helpers import TrainedVersions, train_versions
from tests.paths import TEST_MODELS_DIR
from tests.servers import free_port
from tests.servers.gce import FakeGce, run_fake_gce
from tests.servers.moto import run_moto
from tests.servers.oidc import OidcProvider, run_oidc_provider
from tests.servers.otlp import SpanStore, run_otlp_receiver
from tests.servers.platform import Platform, platform_env, run_platform
from tests.servers.postgres import run_postgres

# The bundled model, converted once and kept between runs and clones (deterministic).
MODELS_DIR = TEST_MODELS_DIR
OIDC_PROVIDER_NAME = "testidp"
OIDC_CLIENT_ID = "forgeline-test"
# Access tokens live 15 minutes (the auth service default); the admin signs in again after 10.
ADMIN_TOKEN_REUSE_SECONDS = 600


@dataclass
class Stack:
    platform: Platform
    idp: OidcProvider
    spans: SpanStore
    first_user: SignedInUser  # the administrator, as signed in when the session started
    backend: str
    aws_url: str  # moto: the "AWS account" cloud training jobs run in
    gce: FakeGce  # a fake Compute Engine: the "GCP project" they run in
    # Cloud deployments reach every node at 127.0.0.1 on this port (moto's machines run
    # nothing): a test serves a fake node there.
    cloud_node_port: int = 0

    @property
    def url(self) -> str:
        return self.platform.url

    @property
    def admin(self) -> SignedInUser:
        """The administrator with a live access token. The session outlives the token's
        fifteen minutes (a CI run took forty), so it signs in again when the token is old."""
        if time.monotonic() - self._admin_signed_in_at > ADMIN_TOKEN_REUSE_SECONDS:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                pair = login(client, self.first_user.email, self.first_user.password)
            self.first_user = replace(
                self.first_user,
                access_token=pair["access_token"],
                refresh_token=pair["refresh_token"],
            )
            self._admin_signed_in_at = time.monotonic()
        return self.first_user

    _admin_signed_in_at: float = field(default_factory=time.monotonic)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with run_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[tuple[int, SpanStore]]:
    port = free_port()
    with run_otlp_receiver(port) as store:
        yield port, store


@pytest.fixture(scope="session")
def stack(
    database_url: str | None,
    otlp_receiver: tuple[int, SpanStore],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    backend = "postgresql" if database_url else "sqlite"
    data_dir = tmp_path_factory.mktemp(f"forgeline-{backend}")
    gateway_port = free_port()
    callback = f"http://127.0.0.1:{gateway_port}/api/v1/auth/oauth/{OIDC_PROVIDER_NAME}/callback"
    client_secret = secrets.token_urlsafe(24)
    otlp_port, spans = otlp_receiver
    cloud_node_port = free_port()
    with (
        run_oidc_provider(
            client_id=OIDC_CLIENT_ID, client_secret=client_secret, redirect_uris=[callback]
        ) as idp,
        run_moto(data_dir / "cloud-moto") as aws_url,
        run_fake_gce() as gce,
    ):
        providers = [
            {
                "name": OIDC_PROVIDER_NAME,
                "display_name": "Test IdP",
                "discovery_url": idp.discovery_url,
                "client_id": OIDC_CLIENT_ID,
                "client_secret": client_secret,
            }
        ]
        overrides = {
            "GATEWAY_PORT": str(gateway_port),
            "OAUTH_PROVIDERS": json.dumps(providers),
            "OTEL_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # Attached-bucket tests use a moto server on this machine as a user's S3, and
            # wait for the polling of attached buckets rather than ten minutes.
            "RAG_ALLOW_PRIVATE_BUCKET_ENDPOINTS": "true",
            # The test IdP listens on this machine; model endpoints stay guarded (no
            # RAG_ALLOW_PRIVATE_MODEL_ENDPOINTS), so the SSRF probes see the default.
            "OAUTH_ALLOW_PRIVATE_PROVIDERS": "true",
            "ATTACHED_RECONCILE_INTERVAL_SECONDS": "3",
            # The bundled model, converted once for the whole session (the trainer counts
            # dataset tokens with its tokenizer).
            "TRAINER_MODELS_DIR": str(MODELS_DIR),
            # Cloud training: moto's EC2 stands in for the user's AWS account (any AMI id
            # works there), and the reaper looks every few seconds instead of minutes.
            "TRAINER_AWS_ENDPOINT_URL": aws_url,
            "TRAINER_AWS_IMAGE_ID": "ami-0forgelinetest",
            "TRAINER_GCP_API_ENDPOINT": gce.url,
            "REAPER_INTERVAL_SECONDS": "3",
            # A killed trainer worker's job is taken over after 10 s, not a minute.
            "TRAINER_LEASE_SECONDS": "10",
            # The evaluation path is what is tested, not the score: 2 questions (the jobs'
            # benchmark_sample), 48 tokens each rather than 256 (about 30 s less per job).
            "TRAINER_BENCHMARK_MAX_NEW_TOKENS": "48",
            # Deployments: a dead server is noticed within two seconds, not fifteen.
            "DEPLOYER_HEALTH_INTERVAL_SECONDS": "1",
            "DEPLOYER_HEALTH_FAILURES": "2",
            # Cloud deployments: moto's instances never run vLLM, so a node that must answer
            # is a fake one on this machine; one that never answers is given up in seconds.
            "DEPLOYER_CLOUD_HOST_OVERRIDE": "127.0.0.1",
            "DEPLOYER_CLOUD_PORT": str(cloud_node_port),
            "DEPLOYER_CLOUD_BOOT_TIMEOUT_SECONDS": "20",
            # Every test's accounts come from loopback: far more than a person makes in an
            # hour (test_sign_in_abuse.py checks the limit itself).
            "REGISTRATIONS_PER_ADDRESS": "100000",
            # test_datasets.py's Parquet bomb need not be 2 GiB to pass the limit.
            "INSPECTION_MAX_MEMORY_MB": "1024",
        }
        if database_url:
            overrides["DATABASE_URL"] = database_url
        with run_platform(data_dir, platform_env(data_dir, **overrides)) as platform:
            with httpx.Client(base_url=platform.url, timeout=30) as client:
                # The administrator, from the setup code the console printed (as a new
                # owner would), before any test registers.
                setup_code = platform.setup_code()
                assert f"/signin#setup={setup_code}" in platform.logs()
                admin = make_user(client, email=random_email("admin"), setup_code=setup_code)
            yield Stack(platform, idp, spans, admin, backend, aws_url, gce, cloud_node_port)


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        yield http


@pytest.fixture
def user(client: httpx.Client) -> SignedInUser:
    return make_user(client)


@pytest.fixture(scope="session")
def trained_versions(stack: Stack) -> TrainedVersions:
    """Two LoRA versions trained once per session on the stack (about two minutes): the
    evaluated 8-step run test_jobs.py examines, and a 2-step one. Tests that need trained
    versions (adapters on one server) share them instead of training their own."""
    return train_versions(stack.url)


@pytest.fixture(scope="session")
def deployed(stack: Stack) -> Iterator[Deployed]:
    """The bundled model deployed once per session (vLLM takes about a minute to start here)
    by a user of its own, for every test that needs a model behind the gateway's `/v1` or the
    RAG service but does not kill or stop it: test_deployments.py, test_kb_answers.py,
    test_bundled_model_serving.py. Stopped at the end of the session."""
    with bundled_deployment(stack.url) as deployment:
        yield deployment
