"""vLLM servers on this machine, started from the `vllm` engine environment.

A server stays in the worker's process group (no new session), so whoever stops the
worker's group, as the supervisor does on shutdown, stops every server too. One deployment
is stopped by its process tree: vLLM's API server starts an engine-core process, which
starts a model worker, and these survive their parent being killed (they are reparented,
and setproctitle overwrites their environment, so an environment marker cannot find them).
So the whole tree is recorded, with each process's start time, and killed by that record.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import psutil

from services.common.engines import ENGINES, engine_env, engine_python
from services.common.logging import get_logger

log = get_logger(__name__)
# Every process of a server carries this in its environment (the API server keeps it
# readable, which tests and operators use to find it).
DEPLOYMENT_ENV = "FORGELINE_DEPLOYMENT_ID"
STOP_GRACE_SECONDS = 15


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def healthy(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(f"http://{host}:{port}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def vllm_argv(
    python: Path, model_dir: Path, served_name: str, host: str, port: int, extra: list[str]
) -> list[str]:
    return [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", served_name,
        "--host", host, "--port", str(port),
        *extra,
    ]  # fmt: skip


def snapshot(pid: int) -> list[dict[str, Any]]:
    """The process and everything it started: pid and start time of each."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    found = []
    for process in tree:
        with contextlib.suppress(psutil.Error):
            found.append({"pid": process.pid, "created": process.create_time()})
    return found


def _still_ours(entry: dict[str, Any]) -> psutil.Process | None:
    try:
        process = psutil.Process(int(entry["pid"]))
        # A pid can be reused; the start time tells our process from a newcomer.
        if abs(process.create_time() - float(entry["created"])) > 0.01:
            return None
        return process
    except (psutil.Error, KeyError, ValueError, TypeError):
        return None


class LocalServers:
    """The servers this worker process started, so it can reap them when they exit."""

    def __init__(self, engines_dir: Path | None = None) -> None:
        self.engines_dir = engines_dir
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def spawn(
        self,
        deployment_id: str,
        attempt: int,
        *,
        model_dir: Path,
        served_name: str,
        host: str,
        port: int,
        extra_args: list[str],
        kv_cache_gb: int,
        log_path: Path,
        cache_dir: Path,
        api_key: str,
    ) -> subprocess.Popen[bytes]:
        spec = ENGINES["vllm"]
        env = engine_env(spec)
        env |= {
            DEPLOYMENT_ENV: deployment_id,
            "FORGELINE_DEPLOYMENT_ATTEMPT": str(attempt),
            "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb),
            "VLLM_CACHE_ROOT": str(cache_dir),
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            # vLLM's own variable for --api-key: the environment is readable by the owner
            # only, a command line by every user of the machine.
            "VLLM_API_KEY": api_key,
        }
        cache_dir.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = vllm_argv(
            engine_python("vllm", self.engines_dir), model_dir, served_name, host, port, extra_args
        )
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        with self._lock:
            self._children[f"{deployment_id}:{attempt}"] = process
        log.info("vllm started", deployment_id=deployment_id, attempt=attempt, pid=process.pid)
        return process

    def reap(self) -> None:
        """Collect the exit status of servers that ended, so none lingers as a zombie."""
        with self._lock:
            for key, process in list(self._children.items()):
                if process.poll() is not None:
                    del self._children[key]

    def stop(self, deployment_id: str, recorded: list[dict[str, Any]]) -> int:
        """Stop every process of the deployment: what this worker started for it, their
        children, and whatever the record names that is still ours. Returns how many."""
        with self._lock:
            mine = [p for k, p in self._children.items() if k.split(":")[0] == deployment_id]
        targets: dict[int, psutil.Process] = {}
        for child in mine:
            for entry in snapshot(child.pid):
                process = _still_ours(entry)
                if process is not None:
                    targets[process.pid] = process
        for entry in recorded:
            process = _still_ours(entry)
            if process is not None:
                targets[process.pid] = process
        alive = [p for p in targets.values() if _running(p)]
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, left = psutil.wait_procs(alive, timeout=STOP_GRACE_SECONDS)
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(left, timeout=5)
        for child in mine:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
        self.reap()
        if alive:
            log.info("vllm stopped", deployment_id=deployment_id, processes=len(alive))
        return len(alive)

    def stop_all(self) -> None:
        """On worker shutdown: nothing this worker started outlives it."""
        with self._lock:
            keys = list(self._children)
        for key in keys:
            self.stop(key.split(":")[0], [])


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# vLLM's access log line for the deployer's own health check: left out of what users read,
# or a day of checks every few seconds would be all they see of the log.
_HEALTH_CHECK_LINE = re.compile(r'"GET /health HTTP/[\d.]+" 200')
_LOG_TAIL_BYTES = 4 * 1024 * 1024


def log_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a log, reading only its end, without the health checks."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    text = data.decode(errors="replace").splitlines()
    tail: deque[str] = deque(
        (line for line in text if not _HEALTH_CHECK_LINE.search(line)), maxlen=lines
    )
    return list(tail)
