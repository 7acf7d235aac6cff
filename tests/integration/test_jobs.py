"""Fine-tuning jobs through the real platform: LoRA on the bundled SmolLM2 with a GSM8K slice,
on this machine's CPU, through the axolotl engine. The job is watched live over SSE, ends
evaluated and registered, and its adapter and merged model are in the object store; a
running job can be cancelled and leaves no process behind.

The training runs happen on the SQLite stack only: they take minutes each, and the database
does not change what they exercise (the refusals run on both: tests/README.md)."""

from __future__ import annotations

import io
import signal
import tarfile
import time
from typing import Any

import httpx
import psutil
import pytest

from tests.factories import make_user
from tests.integration.conftest import Stack
from tests.integration.job_helpers import ENDED, TrainedVersions, gsm8k_dataset, sse
from tests.integration.kb_helpers import platform_s3
from tests.processes import training_processes

# Trains, serves or starts platforms: runs after the rest of the folder (tests/conftest.py).
pytestmark = pytest.mark.slow

ORDER = ["queued", "validating", "provisioning", "training", "evaluating", "uploading"]


def test_a_lora_job_trains_evaluates_and_registers_a_model(
    stack: Stack, client: httpx.Client, trained_versions: TrainedVersions
) -> None:
    """The session's evaluated run (TUTOR_JOB), examined from its creation to its artefacts."""
    user, dataset, job = trained_versions.user, trained_versions.dataset, trained_versions.created
    assert job["state"] == "queued" and job["max_steps"] == 8

    config = client.get(f"/api/v1/jobs/{job['id']}/config", headers=user.headers)
    assert config.status_code == 200
    assert "adapter: lora" in config.text and "max_steps: 8" in config.text
    assert "lora_mlp_kernel: false" in config.text  # CPU: the CUDA kernels are off

    events = list(sse(client, user, job["id"]))
    states = [data["state"] for _, kind, data in events if kind == "state"]
    assert states[-1] == "succeeded", events[-5:]
    reached = [s for s in ORDER if s in states]
    assert reached == [s for s in states if s in ORDER] and "training" in reached
    progress = [data for _, kind, data in events if kind == "progress"]
    assert [p["step"] for p in progress] == list(range(1, 9))
    losses = [p["loss"] for p in progress]
    assert sum(losses[-2:]) < sum(losses[:2]), losses  # the loss falls
    assert any(kind == "eval" for _, kind, _ in events)
    assert any(kind == "log" for _, kind, _ in events)

    done = client.get(f"/api/v1/jobs/{job['id']}", headers=user.headers).json()
    evaluation = done["evaluation"]
    assert evaluation["benchmark"] == "gsm8k" and evaluation["sample"] == 2
    assert evaluation["base_score"] is not None and evaluation["tuned_score"] is not None
    assert evaluation["held_out_loss"] is not None
    # Registered beside the session's other version (POET_JOB), and only those two.
    versions = client.get("/api/v1/models", headers=user.headers).json()["data"]
    assert {v["id"] for v in versions} == set(trained_versions.versions)
    (tutor,) = [v for v in versions if v["id"] == done["model_version_id"]]
    assert tutor["base_model"] == "smollm2-135m-instruct" and tutor["has_adapter"]
    assert tutor["metrics"]["steps"] == 8

    s3 = platform_s3(stack.platform)
    prefix = f"{user.id}/jobs/{job['id']}/artefacts/"
    adapter = s3.get_object(Bucket="forgeline", Key=prefix + "adapter.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(adapter)) as archive:
        assert {"adapter_model.safetensors", "adapter_config.json"} <= set(archive.getnames())
    assert s3.head_object(Bucket="forgeline", Key=prefix + "merged.tar.gz")["ContentLength"] > 1e8
    wandb = s3.get_object(Bucket="forgeline", Key=prefix + "wandb.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(wandb)) as archive:  # the offline run, for wandb sync
        assert any("offline-run-" in name for name in archive.getnames())

    # Reconnecting with Last-Event-ID continues after that event.
    middle = events[len(events) // 2][0]
    assert middle is not None
    resumed = list(sse(client, user, job["id"], **{"Last-Event-ID": middle}))
    ids = [event_id for event_id, _, _ in events]
    assert [e[0] for e in resumed] == ids[ids.index(middle) + 1 :]

    # Another user sees none of it: not the job, its config, events or model, nor the data.
    other = make_user(client)
    for path in ("", "/config", "/events"):
        response = client.get(f"/api/v1/jobs/{job['id']}{path}", headers=other.headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "job_not_found"
    cancel = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=other.headers)
    assert cancel.status_code == 404
    assert client.get("/api/v1/jobs", headers=other.headers).json()["count"] == 0
    assert client.get("/api/v1/models", headers=other.headers).json()["count"] == 0
    borrowed = client.post(
        "/api/v1/jobs", json={"name": "mine now", "dataset_id": dataset["id"]},
        headers=other.headers,
    )  # fmt: skip
    assert borrowed.status_code == 404
    assert borrowed.json()["error"]["code"] == "dataset_not_found"


def test_cancelling_a_running_job_stops_its_training(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)
    dataset = gsm8k_dataset(client, user, rows=32)
    job = client.post(
        "/api/v1/jobs",
        json={
            "name": "long run",
            "dataset_id": dataset["id"],
            "hyperparameters": {"max_steps": 500, "sequence_len": 256},
            "benchmark": "none",
        },
        headers=user.headers,
    ).json()
    for _, kind, _data in sse(client, user, job["id"]):
        if kind == "progress":
            break  # it is training
    assert training_processes(job["id"])
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"] is True
    deadline = time.monotonic() + 90
    state = ""
    while time.monotonic() < deadline:
        state = client.get(f"/api/v1/jobs/{job['id']}", headers=user.headers).json()["state"]
        if state in ENDED:
            break
        time.sleep(1)
    assert state == "cancelled"
    assert not [p for p in training_processes(job["id"]) if p.is_running()]
    again = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    assert again.json()["state"] == "cancelled"  # cancelling an ended job changes nothing


@pytest.mark.both_databases
def test_what_cannot_be_trained_is_refused_with_a_code(stack: Stack, client: httpx.Client) -> None:
    user, other = make_user(client), make_user(client)
    dataset = gsm8k_dataset(client, user, rows=8)

    def refused(**fields: Any) -> str:
        body = {"name": "x", "dataset_id": dataset["id"], **fields}
        response = client.post("/api/v1/jobs", json=body, headers=user.headers)
        assert response.status_code in (404, 422), response.text
        return str(response.json()["error"]["code"])

    assert refused(stage="dpo") == "dataset_does_not_fit_stage"
    assert refused(method="qlora") == "qlora_needs_gpu"
    assert refused(base_model="llama-3-8b-instruct") in {
        "base_model_not_local",
        "unknown_base_model",
    }
    assert refused(provider="aws") == "credential_required"
    assert refused(hyperparameters={"learning_rate": 5}) == "invalid_hyperparameters"
    assert refused(hyperparameters={"colour": "blue"}) == "invalid_hyperparameters"
    assert refused(dataset_id="0" * 32) == "dataset_not_found"
    # A preview is checked the same way, and shows the config without starting anything.
    bad_preview = client.post(
        "/api/v1/jobs/preview",
        json={"name": "x", "dataset_id": dataset["id"], "stage": "dpo"},
        headers=user.headers,
    )
    assert bad_preview.json()["error"]["code"] == "dataset_does_not_fit_stage"
    preview = client.post(
        "/api/v1/jobs/preview",
        json={"name": "x", "dataset_id": dataset["id"], "hyperparameters": {"max_steps": 1}},
        headers=user.headers,
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["max_steps"] == 1 and preview.json()["state"] == "queued"
    assert "adapter: lora" in preview.json()["config_yaml"]
    assert "max_steps: 1" in preview.json()["config_yaml"]
    foreign = client.post(
        "/api/v1/jobs/preview", json={"name": "x", "dataset_id": dataset["id"]},
        headers=other.headers,
    )  # fmt: skip
    assert foreign.json()["error"]["code"] == "dataset_not_found"
    assert client.get("/api/v1/jobs", headers=user.headers).json()["count"] == 0

    job = client.post(
        "/api/v1/jobs",
        json={"name": "to cancel", "dataset_id": dataset["id"], "benchmark": "none"},
        headers=user.headers,
    ).json()
    for method, suffix in [("GET", ""), ("GET", "/config"), ("POST", "/cancel")]:
        answer = client.request(method, f"/api/v1/jobs/{job['id']}{suffix}", headers=other.headers)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "job_not_found"
    forged = client.post(
        f"/api/v1/jobs/{job['id']}/callback",
        json={"events": [{"type": "state", "data": {"state": "uploading"}}]},
        headers={"Authorization": "Bearer " + "x" * 43},
    )
    assert forged.status_code == 404  # a wrong token learns nothing
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers).json()
    assert cancelled["state"] in {"cancelled", "validating", "provisioning", "training"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and cancelled["state"] not in ENDED:
        time.sleep(1)
        cancelled = client.get(f"/api/v1/jobs/{job['id']}", headers=user.headers).json()
    assert cancelled["state"] == "cancelled"


def test_a_job_survives_its_worker_being_killed(stack: Stack, client: httpx.Client) -> None:
    """SIGKILL the trainer worker and its training process mid-run: the restarted worker
    takes the job over once its lease runs out and resumes from the last checkpoint."""
    user = make_user(client)
    dataset = gsm8k_dataset(client, user, rows=48)
    job = client.post(
        "/api/v1/jobs",
        json={
            "name": "survivor",
            "dataset_id": dataset["id"],
            "hyperparameters": {
                "max_steps": 4,
                "sequence_len": 256,
                "micro_batch_size": 2,
                "gradient_accumulation_steps": 1,
                "save_steps": 2,
                "eval_steps": 4,
            },
            "benchmark": "none",
        },
        headers=user.headers,
    ).json()
    checkpoint_step = 0
    for _, kind, data in sse(client, user, job["id"]):
        if kind == "checkpoint":
            checkpoint_step = data["step"]
            break
    assert checkpoint_step == 2
    worker = next(
        p
        for p in psutil.Process(stack.platform.process.pid).children(recursive=True)
        if "services.trainer.tasks" in " ".join(p.cmdline()) and "worker" in p.cmdline()
    )
    for process in [worker, *worker.children(recursive=True)]:
        process.send_signal(signal.SIGKILL)

    deadline = time.monotonic() + 600
    done: dict[str, Any] = {}
    while time.monotonic() < deadline:
        done = client.get(f"/api/v1/jobs/{job['id']}", headers=user.headers).json()
        if done["state"] in ENDED:
            break
        time.sleep(2)
    assert done["state"] == "succeeded", done
    assert done["step"] == 4
    events = list(sse(client, user, job["id"]))
    steps = [data["step"] for _, kind, data in events if kind == "progress"]
    # Every step was trained, and the second run did not start again from step 1.
    assert set(steps) == set(range(1, 5)) and steps.count(1) == 1, steps
    assert any("resuming from checkpoint-" in data.get("line", "") for _, kind, data in events
               if kind == "log")  # fmt: skip
    assert "trainer-worker stopped unexpectedly; restarting it" in (
        stack.platform.log_path.read_text()
    )
