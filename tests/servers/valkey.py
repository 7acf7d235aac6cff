"""A Valkey server of its own (the binary the supervisor embeds), on a free port: the
"external Redis" a deployment points REDIS_URL at."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from services.supervisor.embedded import valkey_argv
from tests.servers import free_port, stop_process_group, wait_until


@contextmanager
def run_valkey(work: Path) -> Iterator[str]:
    """Yields the server's URL (database 0), with a password, as a deployment's would be."""
    port = free_port()
    password = secrets.token_urlsafe(16)
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    with (work / "valkey.log").open("wb") as log:
        process = subprocess.Popen(
            valkey_argv(work, port, password),
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: bool(redis.Redis.from_url(url, socket_timeout=1).ping()),
            timeout=20,
            what="valkey",
            alive=lambda: process.poll() is None,
        )
        yield url
    finally:
        stop_process_group(process)
