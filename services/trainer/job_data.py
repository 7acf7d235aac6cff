"""A dataset turned into the two files a job trains and evaluates on, in the shape its stage
needs (see `axolotl_config.py`):

- sft: `{"messages": [...]}` (every SFT format becomes OpenAI messages, rendered by the
  model's own chat template);
- pretrain: `{"text": ...}`;
- dpo: `{"messages": [prompt turns], "chosen": str, "rejected": str}`;
- orpo: `{"prompt": str, "chosen": [user, assistant], "rejected": [user, assistant]}`.

Rows are split with `datasets.is_eval_row`, exactly as the dataset page showed them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.errors import InvalidInput
from services.trainer import datasets
from services.trainer.axolotl_config import STAGE_FORMATS, Stage


@dataclass(frozen=True)
class PreparedData:
    train: Path
    eval: Path
    train_rows: int
    eval_rows: int


def check_stage(stage: Stage, fmt: str) -> None:
    if fmt not in STAGE_FORMATS[stage]:
        wanted = " or ".join(STAGE_FORMATS[stage])
        raise InvalidInput(
            "dataset_does_not_fit_stage",
            f"This goal needs a dataset in {wanted} format; this one is {fmt}.",
        )


def training_record(data: dict[str, Any], fmt: datasets.Format, stage: Stage) -> dict[str, Any]:
    if stage == "pretrain":
        return {"text": datasets.to_text(data, fmt)}
    if stage == "sft":
        return {"messages": datasets.to_messages(data, fmt)}
    chosen, rejected = datasets.preference_pair(data)
    prompt = [m for m in chosen[:-1]]
    if stage == "dpo":
        return {
            "messages": prompt,
            "chosen": chosen[-1]["content"],
            "rejected": rejected[-1]["content"],
        }
    user = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
    return {
        "prompt": user,
        "chosen": [{"role": "user", "content": user}, chosen[-1]],
        "rejected": [{"role": "user", "content": user}, rejected[-1]],
    }


def prepare(
    source: Path,
    file_type: datasets.FileType,
    fmt: datasets.Format,
    stage: Stage,
    *,
    eval_fraction: float,
    seed: str,
    valid_rows: int,
    out_dir: Path,
) -> PreparedData:
    check_stage(stage, fmt)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_path, eval_path = out_dir / "train.jsonl", out_dir / "eval.jsonl"
    counts = [0, 0]
    with train_path.open("w") as train, eval_path.open("w") as held_out:
        rows = datasets.training_rows(datasets.read_rows(source, file_type), fmt)
        for n, row in enumerate(rows):
            held = datasets.is_eval_row(n, eval_fraction, seed, rows=valid_rows)
            record = training_record(row.data, fmt, stage)
            (held_out if held else train).write(json.dumps(record, ensure_ascii=False) + "\n")
            counts[held] += 1
    if counts[0] == 0:
        raise InvalidInput("dataset_empty", "The dataset has no valid rows left to train on.")
    return PreparedData(train_path, eval_path, counts[0], counts[1])
