"""Axolotl plugin that reports training progress as one JSON line per event on stdout.

This file runs inside the axolotl engine's own environment (locally under `.engines/axolotl`,
or on a cloud node), not in the platform's: it imports nothing of ours. Whoever runs
`axolotl train` (the local provider, or the node bootstrap script) puts this folder on
PYTHONPATH, adds `plugins: [forgeline_events.ForgelineEventsPlugin]` to the config, and
reads lines that start with `FORGELINE_EVENT ` from the process output.

Events: {"type": "progress", "step", "max_steps", "epoch", "loss", "learning_rate",
"tokens_per_second"}, {"type": "eval", "step", "eval_loss"}, {"type": "checkpoint", "step",
"path"}, {"type": "train_end", "step"}; then, from post_training.py beside it, {"type": "state",
"state": "evaluating"} and {"type": "evaluation", ...}.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import post_training
from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

PREFIX = "FORGELINE_EVENT "


def emit(event: dict[str, Any]) -> None:
    # One write and a flush: lines of other threads must not interleave with ours. The
    # leading newline ends whatever a progress bar left on the line.
    sys.stdout.write("\n" + PREFIX + json.dumps(event) + "\n")
    sys.stdout.flush()


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class ForgelineEventsCallback(TrainerCallback):
    def __init__(self) -> None:
        self._last_time: float | None = None
        self._last_tokens: float | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
        logs = logs or {}
        if "eval_loss" in logs:
            emit(
                {"type": "eval", "step": state.global_step, "eval_loss": _number(logs["eval_loss"])}
            )
            return
        if "loss" not in logs:
            return
        # tokens per second from the cumulative token count axolotl logs, over wall time
        now, tokens = time.monotonic(), _number(logs.get("tokens/total"))
        rate = None
        if tokens is not None and self._last_time is not None and self._last_tokens is not None:
            elapsed = now - self._last_time
            if elapsed > 0 and tokens >= self._last_tokens:
                rate = (tokens - self._last_tokens) / elapsed
        self._last_time, self._last_tokens = now, tokens
        emit(
            {
                "type": "progress",
                "step": state.global_step,
                "max_steps": state.max_steps,
                "epoch": _number(logs.get("epoch")),
                "loss": _number(logs["loss"]),
                "learning_rate": _number(logs.get("learning_rate")),
                "tokens_per_second": rate,
            }
        )

    def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        emit({"type": "checkpoint", "step": state.global_step, "path": path})

    def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        emit({"type": "train_end", "step": state.global_step})


class ForgelineEventsPlugin(BasePlugin):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._trained: Any = None

    def add_callbacks_pre_trainer(self, cfg: Any, model: Any) -> list[Any]:
        return [ForgelineEventsCallback()]

    def post_train(self, cfg: Any, model: Any) -> None:
        # Called once after training and once after Axolotl saved it: the model is kept
        # for post_train_unload, which comes when the adapter and tokenizer are on disk.
        self._trained = model

    def post_train_unload(self, cfg: Any) -> None:
        model, self._trained = self._trained, None
        spec = post_training.requested()
        if model is None or spec is None or not post_training.model_in_memory_will_do(cfg, model):
            return  # node_bootstrap.py evaluates and merges in processes of its own
        post_training.finish(cfg, model, spec, emit)
