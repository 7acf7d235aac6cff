"""The `local` provider: runs the node bootstrap script on this machine, from the axolotl
engine's environment.

The script stays in the worker's process group, so whoever stops the worker's group (the
supervisor on Ctrl-C) stops the training too; a cancel stops just its process tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from services.common.engines import ENGINES, engine_env, engine_python, ensure_engine
from services.common.logging import get_logger
from services.trainer.providers.base import ComputeRun

log = get_logger(__name__)
BOOTSTRAP = Path(__file__).resolve().parents[1] / "engine" / "node_bootstrap.py"
STOP_GRACE_SECONDS = 20


@dataclass
class LocalRun:
    job_id: str
    process: subprocess.Popen[bytes]

    @property
    def ref(self) -> str:
        return f"local:{self.process.pid}"


class LocalProvider:
    name = "local"

    def __init__(self, jobs_dir: Path, *, engines_dir: Path | None = None) -> None:
        self.jobs_dir = jobs_dir
        self.engines_dir = engines_dir

    def prepare(self, progress: Callable[[str], None]) -> None:
        """The axolotl engine, built once (minutes, the first time)."""
        ensure_engine(ENGINES["axolotl"], self.engines_dir, progress=progress)

    def start(self, job_id: str, manifest: dict[str, Any]) -> LocalRun:
        folder = self.jobs_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / "manifest.json"
        # The manifest holds the job's callback token and presigned URLs: owner-only.
        fd = os.open(manifest_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(manifest, out)
        env = engine_env(ENGINES["axolotl"])
        env["FORGELINE_JOB_ID"] = job_id  # lets a restarted worker recognise its process
        with (folder / "bootstrap.log").open("ab") as log_file:
            process = subprocess.Popen(
                [
                    str(engine_python("axolotl", self.engines_dir)),
                    str(BOOTSTRAP),
                    str(manifest_path),
                    "--workdir",
                    str(folder / "work"),
                ],
                cwd=folder,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        log.info("local training started", job_id=job_id, pid=process.pid)
        return LocalRun(job_id, process)

    def poll(self, run: ComputeRun) -> int | None:
        assert isinstance(run, LocalRun)
        code = run.process.poll()
        if code is not None:
            # The script has exited (done, failed, or it saw the cancel itself); what it
            # started may outlive it for a while, orphaned: data-loader workers, wandb's
            # monitor. The job is not over until they are gone.
            _stop_processes(_job_processes(run.job_id))
        return code

    def stop(self, run: ComputeRun) -> None:
        assert isinstance(run, LocalRun)
        if run.process.poll() is None:
            _stop_tree(run.process.pid)
        run.process.wait()
        _stop_processes(_job_processes(run.job_id))  # orphans the tree no longer showed

    def stop_ref(self, job_id: str, ref: str) -> None:
        """Stop what an earlier (crashed) worker started for this job, if it still runs."""
        if not ref.startswith("local:"):
            return
        # The marker, not the pid, says what is the job's: a pid can be reused, and the
        # script may be gone while what it started still runs.
        leftovers = _job_processes(job_id)
        if leftovers:
            log.info("stopping an orphaned training run", job_id=job_id, ref=ref)
            _stop_processes(leftovers)


def _stop_tree(pid: int) -> None:
    """SIGTERM the process and everything it started; SIGKILL what is left after a grace."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    _stop_processes(tree)


def _job_processes(job_id: str) -> list[psutil.Process]:
    """Every process of the job, found by the marker each one inherits from the script, so
    also those whose parent has exited (re-parented, they are no longer in its tree)."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get("FORGELINE_JOB_ID") == job_id:
                found.append(process)
    return found


def _stop_processes(processes: list[psutil.Process]) -> None:
    if not processes:
        return
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=STOP_GRACE_SECONDS)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
