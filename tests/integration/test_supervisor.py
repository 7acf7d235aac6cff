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
from tests.servers.valkey import run_valkey

# Trains, serves or starts platforms: runs after the rest of the folder (tests/conftest.py).
pytestmark = pytest.mark.slow


def test_ctrl_c_stops_everything_and_a_restart_keeps_the_data(tmp_path: Path) -> None:
    """Ctrl-C leaves no process behind; a second start on the same folder keeps the accounts,
    and with REDIS_URL set it uses that Redis instead of starting its own; a service that dies
    there stops the whole stack. (One test: each platform start costs about fifteen seconds
    here, and the restart needs the first run.)"""
    data_dir = tmp_path / "supervised"
    env = platform_env(data_dir)
    email, password = "keeper@example.com", "a long passphrase kept"
    with run_platform(data_dir, env) as platform:
        output = platform.log_path.read_text()
        assert f"Forgeline is running at {platform.url}" in output
        # The first-login hint: a link with the one-time code that makes the administrator.
        setup_code = platform.setup_code()
        assert f"{platform.url}/signin#setup={setup_code}" in output
        assert (data_dir / "auth" / "setup-code").stat().st_mode & 0o777 == 0o600

        children = psutil.Process(platform.process.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for part in ("valkey-server", "weed", "services.auth", "services.gateway"):
            assert part in names

        # The embedded servers are real: Redis answers, S3 holds the platform's bucket. Each
        # asks for the secret the supervisor generated into the data folder (owner-only).
        assert data_dir.stat().st_mode & 0o777 == 0o700
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=int(env["EMBEDDED_REDIS_PORT"])).ping()
        assert "requirepass" not in " ".join(" ".join(c.cmdline()) for c in children)
        embedded_redis = redis.Redis.from_url(platform.redis_url())
        assert embedded_redis.ping()
        # Bounded memory, and nothing queued is ever evicted to make room.
        memory = embedded_redis.config_get("maxmemory*")
        assert (memory["maxmemory"], memory["maxmemory-policy"]) == (str(1024**3), "noeviction")
        creds = json.loads((data_dir / "s3-credentials.json").read_text())
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{env['EMBEDDED_S3_PORT']}",
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            region_name="us-east-1",
        )
        assert "forgeline" in {b["Name"] for b in s3.list_buckets()["Buckets"]}
        httpx.post(
            f"{platform.url}/api/v1/auth/register", json={"email": email, "password": password}
        ).raise_for_status()

        assert stop_platform(platform) == 0  # SIGINT, as Ctrl-C sends
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"orphans left: {[p.cmdline() for p in alive]}"
        assert "Stopped." in platform.log_path.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{platform.url}/healthz", timeout=2)

    (tmp_path / "external").mkdir()
    with run_valkey(tmp_path / "external") as redis_url:
        restarted = platform_env(data_dir, REDIS_URL=redis_url.removesuffix("/0") + "/5")
        with run_platform(data_dir, restarted) as platform:
            children = psutil.Process(platform.process.pid).children(recursive=True)
            assert not any("valkey-server" in " ".join(c.cmdline()) for c in children)
            assert httpx.get(f"{platform.url}/healthz").status_code == 200
            login = httpx.post(
                f"{platform.url}/api/v1/auth/login", json={"email": email, "password": password}
            )
            assert login.status_code == 200
            # Nobody used the setup code yet: the same one is offered again.
            assert platform.setup_code() == setup_code
            assert f"/signin#setup={setup_code}" in platform.log_path.read_text()
            # The platform's own queues and events now live in the external Redis.
            assert redis.Redis.from_url(redis_url.removesuffix("/0") + "/5").dbsize() > 0

            # A service that may not simply be restarted dies: the whole stack stops, says
            # which one, and leaves nothing running.
            auth = next(c for c in children if "services.auth" in " ".join(c.cmdline()))
            auth.send_signal(signal.SIGKILL)
            assert platform.process.wait(60) == 1
            assert "auth stopped unexpectedly" in platform.log_path.read_text()
            _gone, alive = psutil.wait_procs(children, timeout=10)
            assert alive == [], f"orphans left: {[p.cmdline() for p in alive]}"
