"""`python -m services.trainer.inspection_worker`: dataset inspections in a process of their
own, one after the other. Reads one AnalysisRequest per line (JSON) on stdin and answers
each with one line on stdout: {"values": ...}, or {"error": {code, message}} when the file
itself is at fault. The trainer watches its memory and time (inspection.py)."""

from __future__ import annotations

import json
import os
import sys

from services.common.errors import ForgelineError
from services.trainer.dataset_analysis import AnalysisRequest, analyse


def main() -> int:
    # Replies keep the real stdout to themselves: anything a library prints goes to stderr
    # (the trainer's log) instead of into the answer.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for line in sys.stdin:
        request = AnalysisRequest(**json.loads(line))
        try:
            reply: dict[str, object] = {"values": analyse(request)}
        except ForgelineError as error:
            reply = {"error": {"code": error.code, "message": error.message}}
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
