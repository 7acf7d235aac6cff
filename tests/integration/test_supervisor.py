"""`make run`'s supervisor: starts the stack, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import boto3
import httpx
import psutil
import pytest
import redis

from tests.servers.platform import platform_env, run_platform, stop_platform

# Trains, serves or starts platforms: runs after the rest of the folder (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_platform_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("supervised")


def test_ctrl_c_stops_everything(own_platform_dir: Path) -> None:
    env = platform_env(own_platform_dir)
    with run_platform(own_platform_dir, env) as platform:
        output = platform.log_path.read_text()
        assert f"Forgeline is running at {platform.url}" in output
        assert "/api/v1/auth/register" in output  # the first-login hint

        children = psutil.Process(platform.process.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for part in ("valkey-server", "weed", "services.auth", "services.gateway"):
            assert part in names

        # The embedded servers are real: Redis answers, S3 holds the platform's bucket.
        assert redis.Redis(port=int(env["EMBEDDED_REDIS_PORT"])).ping()
        creds = json.loads((own_platform_dir / "s3-credentials.json").read_text())
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{env['EMBEDDED_S3_PORT']}",
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            region_name="us-east-1",
        )
        assert "forgeline" in {b["Name"] for b in s3.list_buckets()["Buckets"]}

        assert stop_platform(platform) == 0  # SIGINT, as Ctrl-C sends
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"orphans left: {[p.cmdline() for p in alive]}"
        assert "Stopped." in platform.log_path.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{platform.url}/healthz", timeout=2)


def test_data_survives_a_restart_and_external_redis_is_used(own_platform_dir: Path) -> None:
    """A second start on the same folder keeps accounts, and honours REDIS_URL."""
    first = platform_env(own_platform_dir)
    with run_platform(own_platform_dir, first) as platform:
        email, password = "keeper@example.com", "a long passphrase kept"
        httpx.post(
            f"{platform.url}/api/v1/auth/register", json={"email": email, "password": password}
        ).raise_for_status()
        redis_port = first["EMBEDDED_REDIS_PORT"]
        # Now point a second platform at this one's Redis: it must not start its own.
        second_dir = own_platform_dir.parent / (own_platform_dir.name + "-second")
        second = platform_env(second_dir, REDIS_URL=f"redis://127.0.0.1:{redis_port}/5")
        with run_platform(second_dir, second) as other:
            children = psutil.Process(other.process.pid).children(recursive=True)
            assert not any("valkey-server" in " ".join(c.cmdline()) for c in children)
            assert httpx.get(f"{other.url}/healthz").status_code == 200
    restarted = platform_env(own_platform_dir)
    with run_platform(own_platform_dir, restarted) as platform:
        login = httpx.post(
            f"{platform.url}/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert login.status_code == 200


def test_a_dying_service_stops_the_stack(tmp_path: Path) -> None:
    env = platform_env(tmp_path)
    with run_platform(tmp_path, env) as platform:
        auth = next(
            c
            for c in psutil.Process(platform.process.pid).children(recursive=True)
            if "services.auth" in " ".join(c.cmdline())
        )
        auth.send_signal(signal.SIGKILL)
        assert platform.process.wait(60) == 1
        assert "auth stopped unexpectedly" in platform.log_path.read_text()
