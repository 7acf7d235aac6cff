"""A training machine's reports are bounded before they reach the job's event stream."""

from __future__ import annotations

from services.trainer.reported_events import (
    MAX_EVENT_BYTES,
    MAX_LOG_LINE_CHARS,
    bounded,
)


def test_known_events_pass_unchanged() -> None:
    progress = {"step": 3, "max_steps": 10, "loss": 1.25}
    assert bounded("progress", progress) == ("progress", progress)
    assert bounded("log", {"line": "step 3"}) == ("log", {"line": "step 3"})


def test_an_unknown_kind_is_not_kept() -> None:
    assert bounded("mine", {"coins": 1}) is None


def test_a_long_log_line_is_cut_and_says_so() -> None:
    kind, data = bounded("log", {"line": "x" * 100_000, "extra": "y" * 100_000}) or ("", {})
    assert kind == "log" and set(data) == {"line"}
    assert data["line"].startswith("x" * MAX_LOG_LINE_CHARS)
    assert data["line"].endswith(f"({100_000 - MAX_LOG_LINE_CHARS:,} more characters cut)")


def test_an_oversized_event_is_replaced_by_a_note() -> None:
    kind, data = bounded("progress", {"step": 1, "junk": "z" * 500_000}) or ("", {})
    assert kind == "log" and "progress event of" in data["line"]
    assert f"at most {MAX_EVENT_BYTES:,}" in data["line"]
    # The benchmark's results may be larger than an ordinary event.
    results = {"score": 0.5, "samples": ["an answer " * 100] * 20}
    assert bounded("evaluation", results) == ("evaluation", results)
