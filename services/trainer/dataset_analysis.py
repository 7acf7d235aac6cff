"""What inspecting a dataset finds: its format, every row checked, its tokens counted, its
split. Pure work on a local file, run in a limited child process
(`inspection_worker.py`): a small compressed file (Parquet above all) can expand into more
memory than the trainer has, and that must cost the one inspection, not the trainer's API.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from services.trainer import datasets
from services.trainer.models import INVALID, READY


@dataclass(frozen=True)
class AnalysisRequest:
    path: str
    file_type: str
    confirmed_format: str  # "": detect it
    sequence_len: int
    eval_fraction: float
    max_problems: int
    tokenizer_folder: str  # "": not on this machine (tokens are counted at training)
    tokenizer_name: str  # the hub id recorded beside the counts
    tokenizer_missing_note: str


@functools.cache
def _tokenizer(folder: str) -> Any:
    """Loaded once per worker process: the worker inspects one dataset after another."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def analyse(request: AnalysisRequest) -> dict[str, Any]:
    """The dataset's fields to save."""
    path = Path(request.path)
    file_type = cast(datasets.FileType, request.file_type)

    def rows() -> Iterator[datasets.Row]:
        return iter(datasets.read_rows(path, file_type))

    detection = datasets.detect_format(rows())
    fmt = cast(datasets.Format | None, request.confirmed_format or detection.format)
    found: dict[str, Any] = {
        "file_type": file_type,
        "detected_format": detection.format or "",
        "detection_reason": detection.reason,
        "columns": list(detection.columns),
    }
    if fmt is None:
        return {
            "state": INVALID,
            "rows": 0,
            "valid_rows": 0,
            "problem_count": 1,
            "problems": [
                {
                    "line": 0,
                    "unit": "file",
                    "field": None,
                    "message": detection.reason,
                    "fix": "Rename the columns to one of the formats above, or choose "
                    "the format yourself.",
                }
            ],
            "token_stats": None,
            **found,
        }
    report = datasets.validate(rows(), fmt, max_problems=request.max_problems)
    stats: dict[str, Any] | None = None
    note = request.tokenizer_missing_note
    if request.tokenizer_folder:
        tokenizer = _tokenizer(request.tokenizer_folder)
        counted = datasets.token_stats(
            datasets.training_rows(rows(), fmt), fmt, tokenizer, sequence_len=request.sequence_len
        )
        stats, note = {**asdict(counted), "tokenizer": request.tokenizer_name}, ""
    train, held_out = datasets.split_counts(report.valid_rows, request.eval_fraction)
    return {
        "state": READY if report.valid_rows > 0 else INVALID,
        "rows": report.rows,
        "valid_rows": report.valid_rows,
        "problem_count": report.problem_count,
        "problems": [asdict(p) for p in report.problems],
        "token_stats": stats,
        "token_stats_note": note,
        "train_rows": train,
        "eval_rows": held_out,
        "failure_code": "",
        "failure_reason": "",
        **found,
    }
