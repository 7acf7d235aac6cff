"""Fine-tuning jobs as the integration tests drive them, and the two versions the session
trains once (the `trained_versions` fixture in conftest.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.factories import SignedInUser, make_api_key, make_user
from tests.integration.dataset_helpers import GSM8K_TRAIN, inspected, upload

ENDED = {"succeeded", "failed", "cancelled"}

# The evaluated LoRA run test_jobs.py examines step by step: 8 steps with a checkpoint and a
# held-out loss every 4, then the GSM8K benchmark on 2 questions.
TUTOR_JOB = {
    "name": "GSM8K tutor",
    "preset": "quick",
    "hyperparameters": {
        "max_steps": 8,
        "sequence_len": 256,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3,
        "eval_steps": 4,
        "save_steps": 4,
    },
    "benchmark_sample": 2,
}
# A second, smallest possible version, for what needs two (two adapters on one server).
POET_JOB = {
    "name": "Poet",
    "method": "lora",
    "hyperparameters": {
        "max_steps": 2,
        "sequence_len": 256,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3,
        "eval_steps": 2,
        "save_steps": 2,
    },
    "benchmark": "none",
}


def gsm8k_dataset(client: httpx.Client, user: SignedInUser, rows: int = 48) -> dict[str, Any]:
    data = b"".join(GSM8K_TRAIN.read_bytes().splitlines(keepends=True)[:rows])
    dataset = inspected(client, user, upload(client, user, "gsm8k.jsonl", data).json()["id"])
    assert dataset["state"] == "ready", dataset
    return dataset


def sse(
    client: httpx.Client, user: SignedInUser, job_id: str, **headers: str
) -> Iterator[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of every event until the stream closes."""
    with client.stream(
        "GET",
        f"/api/v1/jobs/{job_id}/events",
        headers={**user.headers, **headers},
        timeout=httpx.Timeout(30, read=120),
    ) as response:
        assert response.status_code == 200, response.read()
        event_id, kind, data = None, "message", ""
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                yield event_id, kind, json.loads(data)
                event_id, kind, data = None, "message", ""


def wait_ended(
    client: httpx.Client, user: SignedInUser, job_ids: list[str], timeout: float = 1200
) -> dict[str, dict[str, Any]]:
    """Each job as it stands once it ended (or at the deadline)."""
    deadline = time.monotonic() + timeout
    jobs: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for job_id in job_ids:
            jobs[job_id] = client.get(f"/api/v1/jobs/{job_id}", headers=user.headers).json()
        if all(job["state"] in ENDED for job in jobs.values()):
            break
        time.sleep(2)
    return jobs


@dataclass
class TrainedVersions:
    """Two LoRA fine-tunes of the bundled model, owned by one user of the session stack.

    Tests that only need "a trained version" use these rather than train their own. They
    must leave them as they found them: nothing deletes them, and a deployment a test
    starts from them is stopped by that test."""

    user: SignedInUser
    key: str  # an API key of that user
    dataset: dict[str, Any]
    created: dict[str, Any]  # the tutor job as POST /api/v1/jobs answered (201)
    tutor: dict[str, Any]  # each job once it succeeded
    poet: dict[str, Any]

    @property
    def versions(self) -> list[str]:
        return [self.tutor["model_version_id"], self.poet["model_version_id"]]


def train_versions(base_url: str) -> TrainedVersions:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        user = make_user(client)
        key = make_api_key(client, user, "openai client")["key"]
        dataset = gsm8k_dataset(client, user)
        responses = [
            client.post(
                "/api/v1/jobs", json={**body, "dataset_id": dataset["id"]}, headers=user.headers
            )
            for body in (TUTOR_JOB, POET_JOB)
        ]
        for response in responses:
            assert response.status_code == 201, response.text
        created = [response.json() for response in responses]
        ended = wait_ended(client, user, [job["id"] for job in created])
        assert all(job["state"] == "succeeded" for job in ended.values()), ended
        return TrainedVersions(
            user, key, dataset, created[0], ended[created[0]["id"]], ended[created[1]["id"]]
        )
