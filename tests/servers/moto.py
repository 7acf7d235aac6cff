"""moto in server mode: a real HTTP endpoint for S3, SQS and EC2 whose S3 publishes real
S3 event notification JSON to its SQS queues."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.servers import free_port, stop_process_group, wait_until


@contextmanager
def run_moto(work_dir: Path) -> Iterator[str]:
    """Yields the endpoint URL. State lives in memory and ends with the process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work_dir.mkdir(parents=True, exist_ok=True)
    with (work_dir / "moto.log").open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            cwd=work_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: httpx.get(f"{url}/moto-api/", timeout=2).status_code == 200,
            timeout=30,
            what="moto server",
            alive=lambda: process.poll() is None,
        )
        yield url
    finally:
        stop_process_group(process)
