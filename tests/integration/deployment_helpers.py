"""Deployments as the integration tests drive them: one of the bundled model, waited for
until ready, and the vLLM processes behind a deployment, found by the marker the deployer
puts in their environment."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import psutil

from tests.factories import SignedInUser, make_api_key, make_user

BUNDLED = "smollm2-135m-instruct"
MARKER = "FORGELINE_DEPLOYMENT_ID"


@dataclass
class Deployed:
    user: SignedInUser
    key: str
    id: str
    name: str

    def openai(self, url: str, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{url}/v1", api_key=key or self.key, max_retries=0)


def wait_state(
    client: httpx.Client, user: SignedInUser, deployment_id: str, states: set[str], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = client.get(f"/api/v1/deployments/{deployment_id}", headers=user.headers).json()
        if seen["state"] in states:
            return seen
        time.sleep(1)
    logs = client.get(f"/api/v1/deployments/{deployment_id}/logs", headers=user.headers).json()
    raise AssertionError(f"not {states} after {timeout:.0f}s: {seen}\n" + "\n".join(logs["lines"]))


def server_root(deployment_id: str) -> psutil.Process | None:
    """vLLM's API server of the deployment, found by the marker in its environment."""
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARKER) == deployment_id and "api_server" in " ".join(
                process.cmdline()
            ):
                return process
        except psutil.Error:
            continue
    return None


def server_tree(deployment_id: str) -> list[psutil.Process]:
    root = server_root(deployment_id)
    assert root is not None, "the deployment's vLLM server is not running"
    return [root, *root.children(recursive=True)]


def metrics(root: psutil.Process) -> dict[str, float]:
    """vLLM's Prometheus counters, summed by name and finish reason."""
    port = root.cmdline()[root.cmdline().index("--port") + 1]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        found = re.match(r"^(vllm:[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if not found:
            continue
        reason = re.search(r'finished_reason="([a-z]+)"', found.group(2) or "")
        name = found.group(1) + (f":{reason.group(1)}" if reason else "")
        values[name] = values.get(name, 0.0) + float(found.group(3))
    return values


def gone(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.Error:
            continue
    return alive


@contextmanager
def bundled_deployment(url: str) -> Iterator[Deployed]:
    """The bundled model deployed on the platform at `url` by a user of its own, ready; stopped
    on the way out."""
    with httpx.Client(base_url=url, timeout=30) as client:
        user = make_user(client)
        key = make_api_key(client, user, "openai client")["key"]
        name = f"tutor-{secrets.token_hex(3)}"
        created = client.post(
            "/api/v1/deployments",
            json={"base_model": BUNDLED, "name": name},
            headers=user.headers,
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["state"] == "pending" and body["name"] == name and body["target"] == "local"
        ready = wait_state(client, user, body["id"], {"ready", "failed"}, timeout=900)
        assert ready["state"] == "ready", ready
        try:
            yield Deployed(user, key, body["id"], name)
        finally:
            client.post(f"/api/v1/deployments/{body['id']}/stop", headers=user.headers)
