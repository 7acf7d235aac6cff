"""A local training run is over only when everything it started is gone, including what
outlived the script (re-parented orphans, such as data-loader workers or wandb's monitor)."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

from services.trainer.providers.local import LocalProvider, LocalRun
from tests.processes import training_processes


def _script_leaving_an_orphan(job_id: str, *, exit_at_once: bool) -> subprocess.Popen[bytes]:
    # `sleep 300 &` outlives the shell: its parent becomes init, out of the shell's tree.
    command = "sleep 300 & " + ("exit 0" if exit_at_once else "wait")
    env = {**os.environ, "FORGELINE_JOB_ID": job_id}
    process = subprocess.Popen(["sh", "-c", command], env=env)
    deadline = time.monotonic() + 10
    expected = 1 if exit_at_once else 2  # the orphan (and the shell, while it waits)
    while time.monotonic() < deadline and len(training_processes(job_id)) < expected:
        time.sleep(0.05)
    return process


def test_a_finished_script_leaves_no_orphan(tmp_path: Path) -> None:
    job_id = f"job-{secrets.token_hex(4)}"
    process = _script_leaving_an_orphan(job_id, exit_at_once=True)
    process.wait()
    assert training_processes(job_id), "the orphan should be running before the poll"
    assert LocalProvider(tmp_path).poll(LocalRun(job_id, process)) == 0
    assert not [p for p in training_processes(job_id) if p.is_running()]


def test_stopping_a_run_stops_its_tree_and_its_orphans(tmp_path: Path) -> None:
    job_id = f"job-{secrets.token_hex(4)}"
    process = _script_leaving_an_orphan(job_id, exit_at_once=False)
    LocalProvider(tmp_path).stop(LocalRun(job_id, process))
    assert process.returncode is not None
    assert not [p for p in training_processes(job_id) if p.is_running()]


def test_a_crashed_workers_run_is_found_by_its_marker(tmp_path: Path) -> None:
    job_id = f"job-{secrets.token_hex(4)}"
    process = _script_leaving_an_orphan(job_id, exit_at_once=True)
    process.wait()
    LocalProvider(tmp_path).stop_ref(job_id, f"local:{process.pid}")
    assert not [p for p in training_processes(job_id) if p.is_running()]
