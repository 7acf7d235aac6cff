"""The platform itself, started exactly as `make run` starts it: the supervisor process."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.auth.settings import SETUP_CODE_FILE
from services.supervisor.embedded import WEED_PORT_SPAN
from tests.servers import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Platform:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(repr=False)
    log_path: Path

    def redis_url(self, db: int = 0) -> str:
        """The embedded Valkey, with the password the supervisor generated."""
        password = (self.data_dir / "redis.password").read_text().strip()
        return f"redis://:{password}@127.0.0.1:{self.env['EMBEDDED_REDIS_PORT']}/{db}"

    def setup_code(self) -> str:
        """The one-time code that makes the first administrator, as `make run` printed it."""
        return (self.data_dir / SETUP_CODE_FILE).read_text().strip()

    def webhook_headers(self) -> dict[str, str]:
        """What a configured bucket-event sender puts on its posts to the indexer webhook."""
        token = (self.data_dir / "indexer-webhook.token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def logs(self) -> str:
        """Everything the stack wrote: the supervisor's console and each service's log."""
        parts = [self.log_path.read_text(errors="replace")]
        parts += [
            p.read_text(errors="replace") for p in sorted((self.data_dir / "logs").glob("*.log"))
        ]
        return "\n".join(parts)


# Below Linux's ephemeral range (32768-60999): `weed mini` binds its servers one after the
# other over a minute or two, and a block taken from the ephemeral range can meanwhile be
# handed to some client connection as its source port (seen once: the admin server could not
# bind, and SeaweedFS stopped the whole stack).
_BLOCK_RANGE = (20000, 32000)


def free_port_block(span: int) -> int:
    """A start port with `span` free ports above it (SeaweedFS needs a block)."""
    for _ in range(50):
        base = random.randrange(_BLOCK_RANGE[0], _BLOCK_RANGE[1] - span)
        socks = []
        try:
            for offset in range(span):
                sock = socket.socket()
                sock.bind(("127.0.0.1", base + offset))
                socks.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of free ports")


def platform_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    gateway_port = free_port()
    env = {
        **os.environ,
        "FORGELINE_DATA_DIR": str(data_dir),
        "GATEWAY_PORT": str(gateway_port),
        "AUTH_GRPC_PORT": str(free_port()),
        "RAG_GRPC_PORT": str(free_port()),
        "INDEXER_GRPC_PORT": str(free_port()),
        "TRAINER_GRPC_PORT": str(free_port()),
        "DEPLOYER_GRPC_PORT": str(free_port()),
        "INDEXER_WEBHOOK_PORT": str(free_port()),
        "EMBEDDED_CHROMA_PORT": str(free_port()),
        "EMBEDDED_REDIS_PORT": str(free_port()),
        "EMBEDDED_S3_PORT": str(free_port_block(WEED_PORT_SPAN)),
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


@contextmanager
def run_platform(
    data_dir: Path, env: dict[str, str], *, timeout: float = 600
) -> Iterator[Platform]:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "supervisor.out"
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.supervisor"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    platform = Platform(url=url, data_dir=data_dir, process=process, env=env, log_path=log_path)
    try:
        wait_until(
            lambda: (
                "Forgeline is running" in log_path.read_text(errors="replace")
                and httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            ),
            timeout=timeout,
            what="forgeline supervisor",
            alive=lambda: process.poll() is None,
        )
    except Exception as error:
        stop_platform(platform)
        raise RuntimeError(
            f"{error}\n--- supervisor output ---\n{platform.logs()[-4000:]}"
        ) from error
    try:
        yield platform
    finally:
        stop_platform(platform)


def stop_platform(platform: Platform) -> int:
    if platform.process.poll() is None:
        platform.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            return platform.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(platform.process.pid, signal.SIGKILL)
    return platform.process.wait()
