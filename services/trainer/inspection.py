"""Inspect an uploaded dataset: detect its format, check every row, count its tokens with the
base model's tokenizer, and record the split. Queued beside the trainer's gRPC API, one
dataset at a time per worker thread; the work itself (dataset_analysis.py) runs in a child
process whose memory and time are watched: a file that would exhaust them (a small Parquet
file can expand a thousandfold) ends `failed` with the reason, and the trainer lives on.

A dataset changes while it is inspected when the user confirms another format or base model;
each change bumps `revision`, and an inspection that finishes on an older revision throws its
result away (the newer one is already queued).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.engine import Engine
from sqlmodel import select

from services.common.bundled_model import ensure_hf_model
from services.common.db import session_scope
from services.common.errors import ForgelineError
from services.common.logging import get_logger
from services.common.timestamps import utcnow
from services.trainer import catalogue, datasets
from services.trainer.dataset_analysis import AnalysisRequest
from services.trainer.models import FAILED, INSPECTING, Dataset

log = get_logger(__name__)


class Tokenizers:
    """Where each base model's tokenizer is on this machine, if it is (the worker loads it)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir

    def folder(self, model: catalogue.BaseModel) -> Path | None:
        if model.bundled:
            return ensure_hf_model(self.models_dir, progress=lambda line: log.info(line))
        local = self.models_dir / model.id
        if (local / "tokenizer_config.json").exists():
            return local
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(model.hub_id, local_files_only=True))
        except Exception:  # not in the cache: the hub is not reachable from here
            return None


@dataclass(frozen=True)
class InspectionLimits:
    memory_bytes: int
    seconds: float


class InspectionFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class LimitedWorker:
    """One child process that inspects datasets one after the other (its imports and
    tokenizers stay loaded: starting one costs seconds), watched while it works: past the
    memory limit (its resident set, children included) or the time limit it is killed, the
    request fails with the reason, and the next request starts a fresh child."""

    def __init__(self, limits: InspectionLimits) -> None:
        self.limits = limits
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._ensure()

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "services.trainer.inspection_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # killed with whatever it started
            )
        return self._child

    def run(self, request: AnalysisRequest) -> dict[str, Any]:
        with self._lock:
            child = self._ensure()
            assert child.stdin and child.stdout
            exceeded: list[InspectionFailed] = []
            done = threading.Event()
            watcher = threading.Thread(
                target=self._watch, args=(child, exceeded, done), daemon=True
            )
            watcher.start()
            try:
                child.stdin.write(json.dumps(asdict(request)).encode() + b"\n")
                child.stdin.flush()
                line = child.stdout.readline()
            except OSError:
                line = b""
            finally:
                done.set()
                watcher.join()
            if exceeded or not line:
                self._kill(child)
                if exceeded:
                    raise exceeded[0]
                # Killed from outside (the kernel's OOM killer) or crashed: its stderr is in
                # the trainer's log.
                log.warning("inspection worker died", returncode=child.returncode)
                raise (
                    _too_much_memory(self.limits)
                    if (child.returncode or 0) < 0
                    else (
                        InspectionFailed(
                            "inspection_failed",
                            "The dataset could not be inspected; try uploading it again.",
                        )
                    )
                )
        reply = json.loads(line)
        if "error" in reply:
            # The file's own fault (unreadable, damaged), said as the worker said it.
            raise InspectionFailed(reply["error"]["code"], reply["error"]["message"])
        return dict(reply["values"])

    def _watch(
        self,
        child: subprocess.Popen[bytes],
        exceeded: list[InspectionFailed],
        done: threading.Event,
    ) -> None:
        deadline = time.monotonic() + self.limits.seconds
        try:
            watched = psutil.Process(child.pid)
        except psutil.Error:
            return
        while not done.wait(0.05):
            try:
                rss = sum(p.memory_info().rss for p in [watched, *watched.children(True)])
            except psutil.Error:
                continue  # it is exiting
            if rss > self.limits.memory_bytes:
                exceeded.append(_too_much_memory(self.limits))
            elif time.monotonic() > deadline:
                exceeded.append(_too_long(self.limits))
            else:
                continue
            self._kill(child)
            return

    @staticmethod
    def _kill(child: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()

    def stop(self) -> None:
        if self._child is not None and self._child.poll() is None:
            self._kill(self._child)


def _too_much_memory(limits: InspectionLimits) -> InspectionFailed:
    return InspectionFailed(
        "inspection_out_of_memory",
        f"Reading this file needed more than {limits.memory_bytes / 2**30:.1f} GiB of memory, "
        "so it was stopped. Split it into smaller files, or store it with less compression "
        "per row group.",
    )


def _too_long(limits: InspectionLimits) -> InspectionFailed:
    return InspectionFailed(
        "inspection_timed_out",
        f"Reading this file took longer than {limits.seconds / 60:.0f} minutes, so it was "
        "stopped. Split it into smaller files.",
    )


class DatasetFiles:
    """A local copy of each dataset's object, fetched once (inspection and preview read it
    several times)."""

    def __init__(self, s3: Any, cache_dir: Path) -> None:
        self.s3 = s3
        self.cache_dir = cache_dir

    def path(self, dataset: Dataset) -> Path:
        folder = self.cache_dir / dataset.id
        target = folder / dataset.file_name
        if target.exists() and target.stat().st_size == dataset.size:
            return target
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / (dataset.file_name + ".part")
        self.s3.download_file(dataset.bucket, dataset.key, str(partial))
        partial.replace(target)  # a reader never sees half a file
        return target

    def forget(self, dataset_id: str) -> None:
        folder = self.cache_dir / dataset_id
        for child in folder.glob("*"):
            child.unlink(missing_ok=True)
        if folder.exists():
            folder.rmdir()


class Inspector:
    def __init__(
        self,
        engine: Engine,
        files: DatasetFiles,
        tokenizers: Tokenizers,
        *,
        workers: int,
        max_problems: int,
        limits: InspectionLimits,
    ) -> None:
        self.engine = engine
        self.files = files
        self.tokenizers = tokenizers
        self.max_problems = max_problems
        self.limits = limits
        # One watched child process per inspecting thread, each used by its thread only.
        self._workers = threading.local()
        self._all_workers: list[LimitedWorker] = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inspect")

    def submit(self, dataset_id: str) -> None:
        self._pool.submit(self._inspect_logged, dataset_id)

    def resume(self) -> int:
        """Queue every dataset a stopped process left half-inspected."""
        with session_scope(self.engine) as db:
            ids = list(db.exec(select(Dataset.id).where(Dataset.state == INSPECTING)).all())
        for dataset_id in ids:
            self.submit(dataset_id)
        return len(ids)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for worker in self._all_workers:
            worker.stop()

    def _worker(self) -> LimitedWorker:
        worker: LimitedWorker | None = getattr(self._workers, "worker", None)
        if worker is None:
            worker = self._workers.worker = LimitedWorker(self.limits)
            self._all_workers.append(worker)
        return worker

    def _inspect_logged(self, dataset_id: str) -> None:
        try:
            self.inspect(dataset_id)
        except Exception:
            log.exception("dataset inspection crashed", dataset_id=dataset_id)
            self._save(
                dataset_id,
                None,
                state=FAILED,
                failure_code="inspection_failed",
                failure_reason="The dataset could not be inspected; try uploading it again.",
            )

    def inspect(self, dataset_id: str) -> None:
        with session_scope(self.engine) as db:
            dataset = db.get(Dataset, dataset_id)
        if dataset is None:
            return
        revision = dataset.revision
        try:
            path = self.files.path(dataset)
        except (BotoCoreError, ClientError) as error:
            log.warning("dataset object unreadable", dataset_id=dataset_id, error=str(error))
            self._save(
                dataset_id,
                revision,
                state=FAILED,
                failure_code="dataset_unreadable",
                failure_reason="The uploaded file could not be read back from storage.",
            )
            return
        try:
            file_type = datasets.file_type_for(dataset.file_name)
        except ForgelineError as error:
            self._save(
                dataset_id,
                revision,
                state=FAILED,
                failure_code=error.code,
                failure_reason=error.message,
            )
            return

        model = catalogue.get_base_model(dataset.base_model)
        folder = self.tokenizers.folder(model)
        request = AnalysisRequest(
            path=str(path),
            file_type=file_type,
            confirmed_format=dataset.confirmed_format or "",
            sequence_len=dataset.sequence_len,
            eval_fraction=dataset.eval_fraction,
            max_problems=self.max_problems,
            tokenizer_folder=str(folder) if folder else "",
            tokenizer_name=model.hub_id,
            tokenizer_missing_note=(
                f"The tokenizer of {model.display_name} is not on this machine; tokens are "
                "counted on the training machine when the job starts."
            ),
        )
        try:
            values = self._worker().run(request)
        except InspectionFailed as error:
            log.warning("dataset inspection refused", dataset_id=dataset_id, code=error.code)
            self._save(
                dataset_id,
                revision,
                state=FAILED,
                failure_code=error.code,
                failure_reason=error.message,
            )
            return
        self._save(dataset_id, revision, **values)

    def _save(self, dataset_id: str, revision: int | None, **values: Any) -> None:
        with session_scope(self.engine) as db:
            dataset = db.get(Dataset, dataset_id)
            if dataset is None or (revision is not None and dataset.revision != revision):
                return  # deleted, or changed since: a newer inspection is queued
            for name, value in values.items():
                setattr(dataset, name, value)
            dataset.updated_at = utcnow()
            db.add(dataset)
