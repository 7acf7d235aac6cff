"""Inspect an uploaded dataset: detect its format, check every row, count its tokens with the
base model's tokenizer, and record the split. Runs beside the trainer's gRPC API, one
dataset at a time per worker thread.

A dataset changes while it is inspected when the user confirms another format or base model;
each change bumps `revision`, and an inspection that finishes on an older revision throws its
result away (the newer one is already queued).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.engine import Engine
from sqlmodel import select

from services.common.bundled_model import ensure_hf_model
from services.common.db import session_scope
from services.common.errors import ForgelineError
from services.common.logging import get_logger
from services.common.timestamps import utcnow
from services.trainer import catalogue, datasets
from services.trainer.models import FAILED, INSPECTING, INVALID, READY, Dataset

log = get_logger(__name__)


class Tokenizers:
    """Base model id -> its tokenizer, when its files are on this machine (loaded once)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

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

    def get(self, model: catalogue.BaseModel) -> Any | None:
        with self._lock:
            if model.id not in self._loaded:
                folder = self.folder(model)
                if folder is None:
                    return None
                from transformers import AutoTokenizer

                self._loaded[model.id] = AutoTokenizer.from_pretrained(
                    str(folder), local_files_only=True
                )
            return self._loaded[model.id]


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
    ) -> None:
        self.engine = engine
        self.files = files
        self.tokenizers = tokenizers
        self.max_problems = max_problems
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

        def rows() -> Iterator[datasets.Row]:
            return iter(datasets.read_rows(path, file_type))

        detection = datasets.detect_format(rows())
        fmt = cast(datasets.Format | None, dataset.confirmed_format or detection.format)
        found: dict[str, Any] = {
            "file_type": file_type,
            "detected_format": detection.format or "",
            "detection_reason": detection.reason,
            "columns": list(detection.columns),
        }
        if fmt is None:
            self._save(
                dataset_id,
                revision,
                state=INVALID,
                rows=0,
                valid_rows=0,
                problem_count=1,
                problems=[
                    {
                        "line": 0,
                        "unit": "file",
                        "field": None,
                        "message": detection.reason,
                        "fix": "Rename the columns to one of the formats above, or choose "
                        "the format yourself.",
                    }
                ],
                token_stats=None,
                **found,
            )
            return
        report = datasets.validate(
            rows(),
            fmt,
            max_problems=self.max_problems,
        )
        stats, note = self._token_stats(dataset, fmt, rows)
        train, held_out = datasets.split_counts(report.valid_rows, dataset.eval_fraction)
        self._save(
            dataset_id,
            revision,
            state=READY if report.valid_rows > 0 else INVALID,
            rows=report.rows,
            valid_rows=report.valid_rows,
            problem_count=report.problem_count,
            problems=[asdict(p) for p in report.problems],
            token_stats=stats,
            token_stats_note=note,
            train_rows=train,
            eval_rows=held_out,
            failure_code="",
            failure_reason="",
            **found,
        )

    def _token_stats(
        self, dataset: Dataset, fmt: datasets.Format, rows: Callable[[], Iterator[datasets.Row]]
    ) -> tuple[dict[str, Any] | None, str]:
        model = catalogue.get_base_model(dataset.base_model)
        tokenizer = self.tokenizers.get(model)
        if tokenizer is None:
            return None, (
                f"The tokenizer of {model.display_name} is not on this machine; tokens are "
                "counted on the training machine when the job starts."
            )
        stats = datasets.token_stats(
            datasets.training_rows(rows(), fmt),
            fmt,
            tokenizer,
            sequence_len=dataset.sequence_len,
        )
        return {**asdict(stats), "tokenizer": model.hub_id}, ""

    def _save(self, dataset_id: str, revision: int | None, **values: Any) -> None:
        with session_scope(self.engine) as db:
            dataset = db.get(Dataset, dataset_id)
            if dataset is None or (revision is not None and dataset.revision != revision):
                return  # deleted, or changed since: a newer inspection is queued
            for name, value in values.items():
                setattr(dataset, name, value)
            dataset.updated_at = utcnow()
            db.add(dataset)
