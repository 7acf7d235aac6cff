"""`make run`: start the embedded stack and every service built so far, print the URL, and
stop everything in reverse order on Ctrl-C.

Order, in three waves, each started together and ready before the next starts:
the embedded servers (Redis-compatible, S3 store, Chroma; unless REDIS_URL, S3_ENDPOINT_URL
and CHROMA_URL point at existing ones) -> the gRPC services, each migrating its own tables
-> the Celery workers and the gateway. Starting a wave together roughly halves the start
(most of it is Python imports, and there are two cores or more). If any child dies,
everything is stopped and the exit status is 1.
"""

from __future__ import annotations

import os

# The supervisor forks children after using gRPC (health checks); gRPC's fork handlers
# can deadlock that fork. It never uses gRPC in a child, so fork support is off. Must be
# set before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from services.auth.settings import SETUP_CODE_FILE
from services.common.crypto import generate_key
from services.common.storage import ensure_bucket, s3_client
from services.supervisor.embedded import (
    chroma_argv,
    s3_credentials,
    valkey_argv,
    valkey_password,
    weed_argv,
)
from services.supervisor.generated_secrets import generated_secret
from services.supervisor.processes import ManagedProcess
from services.supervisor.seaweedfs_notifications import (
    notification_toml,
    with_config_dir,
    write_notification_config,
)
from services.supervisor.seaweedfs_security import write_security_config
from services.supervisor.settings import SupervisorSettings

READY_TIMEOUT = 180.0
# Workers hold no state a restart loses (tasks are acknowledged late and redelivered), so a
# crashed one is started again; a service that keeps dying still stops the platform.
MAX_RESTARTS = 5


def _secret_key(data_dir: Path) -> str:
    """The Fernet key for secrets at rest."""
    return generated_secret(data_dir / "secret.key", generate_key)


def _service_token(data_dir: Path) -> str:
    """The token the services prove to each other (services/common/service_auth.py)."""
    return generated_secret(data_dir / "service.token")


def _grpc_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=1
        )
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=1).status_code == 200


class Stack:
    def __init__(self, settings: SupervisorSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.logs = self.data_dir / "logs"
        self.processes: list[ManagedProcess] = []
        # Started together, stopped together (in reverse order of the waves).
        self.waves: list[list[ManagedProcess]] = []
        self.env: dict[str, str] = {}
        self._starting_together = False
        # Started with a wave but waited for only once every wave is up (see `_start`).
        self._ready_last: list[ManagedProcess] = []

    def _start(
        self,
        name: str,
        argv: list[str],
        *,
        echo: bool,
        ready: Callable[[], bool] | str,
        env: dict[str, str] | None = None,
        restartable: bool = False,
        needed_by_next_wave: bool = True,
    ) -> None:
        """`needed_by_next_wave=False`: nothing later waits on this process being up, so its
        (slow) start overlaps the next waves' and the stack waits for it at the end."""
        process = ManagedProcess(
            name,
            argv,
            env={**os.environ, **self.env, **(env or {})},
            log_file=self.logs / f"{name}.log",
            echo=echo,
            ready=ready,
            restartable=restartable,
        )
        self.processes.append(process)
        if not needed_by_next_wave:
            self._ready_last.append(process)
        if self._starting_together:
            self.waves[-1].append(process)
        else:
            self.waves.append([process])
        print(f"  starting {name} ...", flush=True)
        process.start()
        if not self._starting_together and needed_by_next_wave:
            process.wait_ready(READY_TIMEOUT)

    @contextmanager
    def _together(self) -> Iterator[None]:
        """Start what `_start` is given in this block at once, then wait until all are ready
        (the next wave may depend on any of them)."""
        first = len(self.processes)
        self.waves.append([])
        self._starting_together = True
        try:
            yield
        finally:
            self._starting_together = False
        for process in self.processes[first:]:
            if process not in self._ready_last:
                process.wait_ready(READY_TIMEOUT)

    def start(self) -> None:
        s = self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Keys, databases, the object store's files: for the owner's eyes only.
        self.data_dir.chmod(0o700)
        self.env = {
            "FORGELINE_DATA_DIR": str(self.data_dir),
            "FORGELINE_SECRET_KEY": s.secret_key.get_secret_value() or _secret_key(self.data_dir),
            "FORGELINE_SERVICE_TOKEN": s.service_token.get_secret_value()
            or _service_token(self.data_dir),
            "AUTH_GRPC_ADDRESS": f"127.0.0.1:{s.auth_grpc_port}",
            "AUTH_GRPC_BIND": f"127.0.0.1:{s.auth_grpc_port}",
            "RAG_GRPC_ADDRESS": f"127.0.0.1:{s.rag_grpc_port}",
            "RAG_GRPC_BIND": f"127.0.0.1:{s.rag_grpc_port}",
            "INDEXER_GRPC_ADDRESS": f"127.0.0.1:{s.indexer_grpc_port}",
            "INDEXER_GRPC_BIND": f"127.0.0.1:{s.indexer_grpc_port}",
            "INDEXER_WEBHOOK_PORT": str(s.indexer_webhook_port),
            "TRAINER_GRPC_ADDRESS": f"127.0.0.1:{s.trainer_grpc_port}",
            "TRAINER_GRPC_BIND": f"127.0.0.1:{s.trainer_grpc_port}",
            "DEPLOYER_GRPC_ADDRESS": f"127.0.0.1:{s.deployer_grpc_port}",
            "DEPLOYER_GRPC_BIND": f"127.0.0.1:{s.deployer_grpc_port}",
            "GATEWAY_HOST": s.gateway_host,
            "GATEWAY_PORT": str(s.gateway_port),
            "PUBLIC_URL": self.public_url,
            "PYTHONUNBUFFERED": "1",
        }
        with self._together():
            if "redis_url" in s.model_fields_set:
                self.env["REDIS_URL"] = s.redis_url
            else:
                password = valkey_password(self.data_dir)
                url = f"redis://:{password}@127.0.0.1:{s.embedded_redis_port}/0"
                self.env["REDIS_URL"] = url
                self._start(
                    "redis",
                    valkey_argv(
                        self.data_dir, s.embedded_redis_port, password, s.embedded_redis_maxmemory
                    ),
                    echo=False,
                    ready=lambda: redis.Redis.from_url(url, socket_timeout=1).ping(),
                )
            if "s3_endpoint_url" not in s.model_fields_set:
                creds = s3_credentials(self.data_dir)
                self.env |= {
                    "S3_ENDPOINT_URL": f"http://127.0.0.1:{s.embedded_s3_port}",
                    "S3_ACCESS_KEY_ID": creds.access_key_id,
                    "S3_SECRET_ACCESS_KEY": creds.secret_access_key,
                }
                client = s3_client(
                    s.model_copy(
                        update={
                            "s3_endpoint_url": self.env["S3_ENDPOINT_URL"],
                            "s3_access_key_id": creds.access_key_id,
                            "s3_secret_access_key": SecretStr(creds.secret_access_key),
                        }
                    )
                )
                # SeaweedFS posts every bucket change to the indexer's webhook, with a token
                # the indexer checks (a forged event would make it drop a document).
                webhook_token = generated_secret(self.data_dir / "indexer-webhook.token")
                self.env["INDEXER_WEBHOOK_TOKEN"] = webhook_token
                config_dir = write_notification_config(
                    self.data_dir / "seaweedfs",
                    notification_toml(
                        endpoint=f"http://127.0.0.1:{s.indexer_webhook_port}/events/seaweedfs",
                        bearer_token=webhook_token,
                    ),
                ).parent
                write_security_config(config_dir, self.data_dir / "seaweedfs-secrets")
                self._start(
                    "s3",
                    with_config_dir(weed_argv(self.data_dir, s.embedded_s3_port), config_dir),
                    echo=False,
                    # weed mini reads its admin identity from the standard AWS variables.
                    env={
                        "AWS_ACCESS_KEY_ID": creds.access_key_id,
                        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
                    },
                    ready=lambda: client.list_buckets() is not None,
                )
            if "chroma_url" in s.model_fields_set:
                self.env["CHROMA_URL"] = str(s.chroma_url)
            else:
                # A private Chroma server: the indexer writes and the RAG service reads the same
                # index, and Chroma's on-disk client is only safe within one process.
                chroma_url = f"http://127.0.0.1:{s.embedded_chroma_port}"
                self.env["CHROMA_URL"] = chroma_url
                self._start(
                    "chroma",
                    chroma_argv(self.data_dir, s.embedded_chroma_port),
                    echo=False,
                    ready=lambda: _http_ok(f"{chroma_url}/api/v2/heartbeat"),
                )
        if "s3_endpoint_url" not in s.model_fields_set:
            ensure_bucket(client, s.s3_bucket)
        python = sys.executable
        with self._together():
            self._start_services(python)
        with self._together():
            self._start_workers_and_gateway(python)
        for process in self._ready_last:
            process.wait_ready(READY_TIMEOUT)

    def _start_services(self, python: str) -> None:
        """The gRPC services: each migrates its own tables (SQLite waits on its lock)."""
        self._start(
            "auth",
            [python, "-m", "services.auth"],
            echo=True,
            ready=lambda: _grpc_serving(self.env["AUTH_GRPC_ADDRESS"]),
        )
        self._start(
            "indexer",
            [python, "-m", "services.indexer"],
            echo=True,
            ready=lambda: (
                _grpc_serving(self.env["INDEXER_GRPC_ADDRESS"])
                and _http_ok(f"http://127.0.0.1:{self.settings.indexer_webhook_port}/healthz")
            ),
        )
        # Loading its embedding model (importing sentence-transformers alone takes about ten
        # seconds of CPU here) is the slowest start of all, and only the gateway's requests
        # need it: the workers and the gateway start meanwhile.
        self._start(
            "rag",
            [python, "-m", "services.rag"],
            echo=True,
            ready=lambda: _grpc_serving(self.env["RAG_GRPC_ADDRESS"]),
            needed_by_next_wave=False,
        )
        self._start(
            "trainer",
            [python, "-m", "services.trainer"],
            echo=True,
            ready=lambda: _grpc_serving(self.env["TRAINER_GRPC_ADDRESS"]),
        )
        self._start(
            "deployer",
            [python, "-m", "services.deployer"],
            echo=True,
            ready=lambda: _grpc_serving(self.env["DEPLOYER_GRPC_ADDRESS"]),
        )

    def _start_workers_and_gateway(self, python: str) -> None:
        """After the services: a worker's first task may need their tables."""
        s = self.settings
        self._start(
            "worker",
            [
                python, "-m", "celery", "-A", "services.indexer.tasks", "worker",
                "--queues", "indexing", "--concurrency", "1", "--hostname", "indexer@%h",
                "--loglevel", "INFO",
            ],
            echo=True,
            ready="ready.",  # Celery prints "celery@host ready." once it consumes
            restartable=True,
        )  # fmt: skip
        self._start(
            "trainer-worker",
            [
                python, "-m", "celery", "-A", "services.trainer.tasks", "worker",
                "--queues", "training", "--concurrency", "1", "--hostname", "trainer@%h",
                "--loglevel", "INFO",
            ],
            echo=True,
            ready="ready.",
            restartable=True,
        )  # fmt: skip
        # Threads: a start waits minutes for a server and a stop must not queue behind it.
        # The vLLM servers are the worker's children, in its process group.
        self._start(
            "deployer-worker",
            [
                python, "-m", "celery", "-A", "services.deployer.tasks", "worker",
                "--queues", "deploy", "--pool", "threads", "--concurrency", "4",
                "--hostname", "deployer@%h", "--loglevel", "INFO",
            ],
            echo=True,
            ready="ready.",
            restartable=True,
        )  # fmt: skip
        self._start(
            "gateway",
            [python, "-m", "services.gateway"],
            echo=True,
            ready=lambda: _http_ok(f"http://127.0.0.1:{s.gateway_port}/healthz"),
        )

    @property
    def public_url(self) -> str:
        s = self.settings
        return s.public_url or f"http://{s.gateway_host}:{s.gateway_port}"

    def first_dead(self) -> ManagedProcess | None:
        """A dead process that may not simply be started again; restartable ones are."""
        for process in self.processes:
            if process.alive():
                continue
            if process.restartable and process.restarts < MAX_RESTARTS:
                process.restarts += 1
                # What the dead worker started (training, vLLM servers) is in its process
                # group; it goes too, so no orphan holds memory or a port. The work is
                # redelivered or restarted by its service.
                process.stop(grace=0)
                print(f"\n{process.name} stopped unexpectedly; restarting it", flush=True)
                process.start()
                continue
            return process
        return None

    def stop(self) -> None:
        # A wave at once: each process's stop is mostly waiting for it to exit.
        for wave in reversed(self.waves):
            started = [p for p in reversed(wave) if p.process is not None]
            for process in started:
                print(f"  stopping {process.name} ...", flush=True)
            with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
                list(pool.map(lambda process: process.stop(), started))


def _banner(url: str, setup_code: str | None) -> str:
    if setup_code:
        first = f"""  First start: create the administrator account (the setup code works once):
    {url}/signin#setup={setup_code}
  or: curl -s -X POST {url}/api/v1/auth/register -H 'content-type: application/json' \\
      -d '{{"email": "you@example.com", "password": "a long passphrase",
           "setup_code": "{setup_code}"}}'
"""
    else:
        first = "  Sign in, or create an account where the registration policy allows.\n"
    return f"""
Forgeline is running at {url}
  API reference: {url}/docs
{first}  Then follow the README's quick start. Press Ctrl-C to stop.
"""


def _setup_code(data_dir: Path) -> str | None:
    """The first administrator's one-time code, while the auth service keeps one."""
    try:
        return (data_dir / SETUP_CODE_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def main() -> int:
    settings = SupervisorSettings()
    stack = Stack(settings)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    status = 0
    print(f"Starting Forgeline (data in {stack.data_dir})", flush=True)
    try:
        stack.start()
        print(_banner(stack.public_url, _setup_code(stack.data_dir)), flush=True)
        while not stopping.wait(0.5):
            dead = stack.first_dead()
            if dead is not None:
                print(f"\n{dead.name} stopped unexpectedly; last lines:\n" + "\n".join(dead.tail))
                status = 1
                break
    except (RuntimeError, KeyboardInterrupt) as error:
        print(f"\nStart-up failed: {error}", file=sys.stderr)
        status = 1
    finally:
        print("Shutting down ...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
