"""What the job runner needs from wherever a job trains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

# How the node bootstrap script ends: its exit status locally, its last report on a cloud.
EXIT_DONE, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 3
NODE_RESULTS = {"done": EXIT_DONE, "error": EXIT_FAILED, "cancelled": EXIT_CANCELLED}


class ComputeRun(Protocol):
    job_id: str

    @property
    def ref(self) -> str:
        """Stored with the job ("local:<pid>", "aws:<instance id>", "gcp:<name>") so that a
        worker taking over after a crash can stop what the last one started."""


class ComputeProvider(Protocol):
    name: str

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Whatever must exist before a node can start (the local engine, ...)."""

    def start(self, job_id: str, manifest: dict[str, Any]) -> ComputeRun: ...

    def poll(self, run: ComputeRun) -> int | None:
        """None while the node runs; else how it ended (EXIT_*; EXIT_FAILED when a cloud
        machine stopped before its script reported an end)."""

    def stop(self, run: ComputeRun) -> None:
        """Stop the node and release the machine; safe to call more than once."""

    def stop_ref(self, job_id: str, ref: str) -> None:
        """Stop what an earlier worker started for this job, if it still runs."""
