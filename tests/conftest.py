"""The whole suite's order, its time summary, and the fixtures every folder shares.

Order, for early failure: `unit` (pure logic, seconds), then `integration`, then `e2e`.
Inside `integration`, the PostgreSQL run (only the tests marked `both_databases`) comes
first, then the SQLite run; in each folder, modules marked `slow` (they train a model or
start vLLM or whole platforms) come after the rest. Modules are moved whole, so that a
module-scoped fixture (one vLLM server, one pair of trained versions) is set up once.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

from services.trainer.providers.node_script import ENGINE_DIR

# Nothing in the test session may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"

TESTS = Path(__file__).resolve().parent
FOLDERS = ("unit", "integration", "e2e")
# The integration session runs each stack-using test on SQLite, and the `both_databases`
# ones on PostgreSQL as well (tests/README.md says which and why).
BACKENDS = ("postgresql", "sqlite")


def folder_of(item: pytest.Item) -> str:
    try:
        return Path(item.path).resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return "other"


def backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("database_url") if callspec else None


def _rank(item: pytest.Item) -> tuple[int, int, int]:
    folder = folder_of(item)
    backend = backend_of(item)
    return (
        FOLDERS.index(folder) if folder in FOLDERS else len(FOLDERS),
        BACKENDS.index(backend) if backend in BACKENDS else -1,
        1 if item.get_closest_marker("slow") else 0,
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only the `both_databases` tests run on the PostgreSQL stack.
    kept, dropped = [], []
    for item in items:
        single = backend_of(item) == "postgresql" and not item.get_closest_marker("both_databases")
        (dropped if single else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    # Stable: within a rank, pytest's own order (grouped by fixture) stands.
    items[:] = sorted(kept, key=_rank)


class FolderClock:
    """Seconds spent per top-level folder: setup, call and teardown of its tests, which
    includes starting the servers its session fixtures start."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.tests: dict[str, int] = defaultdict(int)
        self.started = time.monotonic()

    def add(self, report: pytest.TestReport) -> None:
        folder = Path(report.fspath).resolve().relative_to(TESTS).parts[0]
        self.seconds[folder] += report.duration
        if report.when == "call":
            self.tests[folder] += 1


_clock = FolderClock()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    with contextlib.suppress(ValueError):  # a test outside tests/
        _clock.add(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _clock.seconds:
        return
    terminalreporter.section("time per folder")
    for folder in sorted(_clock.seconds, key=lambda f: FOLDERS.index(f) if f in FOLDERS else 9):
        seconds, tests = _clock.seconds[folder], _clock.tests[folder]
        terminalreporter.write_line(
            f"{folder:<12} {seconds / 60:6.1f} min  ({seconds:7.0f} s, {tests} tests)"
        )
    wall = time.monotonic() - _clock.started
    terminalreporter.write_line(f"{'all':<12} {wall / 60:6.1f} min  ({wall:7.0f} s wall clock)")


@pytest.fixture
def node_bootstrap(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The training machine's script as a node runs it: beside post_training.py, stdlib only."""
    monkeypatch.syspath_prepend(str(ENGINE_DIR))
    return importlib.import_module("node_bootstrap")
