"""Finding a training job's processes the way a person would check: every process on the
machine whose environment carries the job's marker (FORGELINE_JOB_ID), whatever its parent."""

from __future__ import annotations

import psutil


def training_processes(job_id: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("FORGELINE_JOB_ID") == job_id:
                found.append(process)
        except psutil.Error:
            continue
    return found
