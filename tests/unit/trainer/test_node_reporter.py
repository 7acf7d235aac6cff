"""The node's event reporter (services/trainer/engine/node_bootstrap.py): while the platform
does not answer, events wait for the next flush instead of being dropped, and they go in
batches the platform accepts. Against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest


class Platform:
    """Answers 503 while `down`, else records the batch and answers as the gateway does."""

    def __init__(self) -> None:
        self.down = False
        self.batches: list[list[dict[str, Any]]] = []
        self.tokens: set[str] = set()


@pytest.fixture
def platform() -> Iterator[tuple[Platform, str]]:
    state = Platform()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.down:
                self.send_response(503)
                self.end_headers()
                return
            state.tokens.add(self.headers["Authorization"])
            state.batches.append(json.loads(body)["events"])
            answer = b'{"cancel": false}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_port}/api/v1/jobs/j1/callback"
    server.shutdown()


@pytest.fixture
def node(node_bootstrap: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """node_bootstrap (tests/conftest.py), retrying without waiting."""
    monkeypatch.setattr(node_bootstrap, "_backoff", lambda attempt: 0.0)
    return node_bootstrap


def test_events_wait_while_the_platform_is_down_and_none_is_lost(
    node: ModuleType, platform: tuple[Platform, str]
) -> None:
    state, url = platform
    reporter = node.Reporter(url, "job-token")
    state.down = True
    reporter.event("state", state="training")
    for step in range(1, 4):
        reporter.event("progress", step=step)
    assert reporter.flush() is False  # nothing reached it, nothing was dropped
    state.down = False
    reporter.event("checkpoint", step=3)
    assert reporter.flush() is True
    sent = [event for batch in state.batches for event in batch]
    assert [(e["type"], e["data"]) for e in sent] == [
        ("state", {"state": "training"}),
        ("progress", {"step": 1}),
        ("progress", {"step": 2}),
        ("progress", {"step": 3}),
        ("checkpoint", {"step": 3}),
    ]  # each once, in order
    assert state.tokens == {"Bearer job-token"}


def test_a_long_wait_sends_batches_the_platform_accepts_and_keeps_what_it_acts_on(
    node: ModuleType, platform: tuple[Platform, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = platform
    monkeypatch.setattr(node, "MAX_PENDING", 2500)
    reporter = node.Reporter(url, "job-token")
    state.down = True
    reporter.pending = [{"type": "log", "data": {"line": str(n)}, "time": 0} for n in range(3000)]
    reporter.pending.insert(10, {"type": "progress", "data": {"step": 1}, "time": 0})
    assert reporter.flush(attempts=1) is False
    assert len(reporter.pending) == 2500  # the oldest log lines went first...
    assert reporter.pending[0]["type"] == "progress"  # ...never what the platform acts on
    state.down = False
    assert reporter.flush() is True
    assert [len(batch) for batch in state.batches] == [1000, 1000, 500]
    assert reporter.pending == []
