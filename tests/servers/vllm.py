"""vLLM (CPU) serving a model folder, started from the platform's vLLM engine environment,
as the deployer will start it: an OpenAI-compatible server on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.common.engines import ENGINES, engine_env, ensure_engine
from tests.servers import free_port, stop_process_group, wait_until


@dataclass(frozen=True)
class VllmServer:
    base_url: str  # ends in /v1, as the openai client wants it
    model: str


@contextmanager
def run_vllm(model_dir: Path, *, served_name: str, cache_dir: Path) -> Iterator[VllmServer]:
    python = ensure_engine(ENGINES["vllm"])
    port = free_port()
    cache_dir.mkdir(parents=True, exist_ok=True)
    env = engine_env(ENGINES["vllm"], dict(os.environ))
    env |= {
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_CACHE_ROOT": str(cache_dir),
        "HF_HUB_OFFLINE": "1",
    }
    log_path = cache_dir / f"vllm-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(python), "-m", "vllm.entrypoints.openai.api_server",
                "--model", str(model_dir),
                "--served-model-name", served_name,
                "--host", "127.0.0.1", "--port", str(port),
                "--max-model-len", "2048",
                # This CPU has no native bf16: float32 is 3-5x faster. Eager mode skips a
                # 3-minute torch.compile at start-up.
                "--dtype", "float32",
                "--enforce-eager",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200,
            timeout=300,
            what="vLLM server",
            alive=lambda: process.poll() is None,
            interval=1,
        )
    except Exception as error:
        os.killpg(process.pid, signal.SIGKILL)
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{error}\n--- vLLM log ---\n{tail}") from error
    try:
        yield VllmServer(f"http://127.0.0.1:{port}/v1", served_name)
    finally:
        stop_process_group(process, grace=20)
