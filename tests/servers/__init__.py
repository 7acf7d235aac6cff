"""Launchers for the real servers the test session starts and stops.

Each launcher is a context manager: it starts the server on a free port, waits until it
answers, fails fast if the process dies, and kills the whole process tree on exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.1,
) -> None:
    """Poll `check` until it is true; raise early if `alive` says the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what}: the process exited before it was ready")
        try:
            if check():
                return
        except Exception:  # noqa: S110  (not up yet: connection refused, partial reply)
            pass
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


def stop_process_group(process: subprocess.Popen[bytes], *, grace: float = 10) -> None:
    """SIGTERM the server's whole process group, SIGKILL it after `grace` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
