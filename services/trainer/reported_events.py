"""What a training machine may put on its job's event stream, and how much of it.

The machine runs what the job's owner configured, so its reports are untrusted input: each
event lands in Redis (a stream per job, shared memory of the whole platform) and in the
browser. Only the kinds the node and the engine send are kept, and each is bounded: a log
line is cut, anything else over its size is replaced by a note saying so.
"""

from __future__ import annotations

import json
from typing import Any

KiB = 1024
# Kinds node_bootstrap.py and forgeline_events.py send.
KNOWN_KINDS = frozenset(
    {"state", "progress", "eval", "log", "checkpoint", "train_end", "evaluation", "artefacts",
     "done", "cancelled", "error"}
)  # fmt: skip
MAX_EVENT_BYTES = 8 * KiB
# The benchmark's results: a score and a few sample answers.
MAX_EVALUATION_BYTES = 256 * KiB
MAX_LOG_LINE_CHARS = 4000


def _size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, default=str))


def bounded(kind: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The event to keep for what was reported, or None (an unknown kind)."""
    if kind not in KNOWN_KINDS:
        return None
    if kind == "log":
        line = str(data.get("line", ""))
        if len(line) > MAX_LOG_LINE_CHARS:
            cut = len(line) - MAX_LOG_LINE_CHARS
            line = line[:MAX_LOG_LINE_CHARS] + f" … ({cut:,} more characters cut)"
        data = {"line": line}
    limit = MAX_EVALUATION_BYTES if kind == "evaluation" else MAX_EVENT_BYTES
    size = _size(data)
    if size > limit:
        return "log", {
            "line": f"A {kind} event of {size:,} bytes was dropped: events are at most {limit:,}."
        }
    return kind, data
