"""A real fine-tuning run through the API on this machine: LoRA on the bundled SmolLM2 with a
GSM8K-train slice, on the CPU, through the axolotl engine.

It starts the platform, uploads the slice as a dataset, creates a job, follows its events
(SSE) to the end, and reports whether the loss fell, the held-out loss, GSM8K exact match of
the base and tuned models on a sample of the test split (the adapter loaded for that), the
artefacts' sizes and the training speed.

    .venv/bin/python -m bench.finetune_smollm2 [--rows 400] [--steps 60] [--sample 10]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.rag_financebench import Api, log, platform
from services.common.bundled_model import ensure_hf_model

GSM8K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k"
MODELS_DIR = Path(__file__).resolve().parents[1] / ".forgeline" / "test-models"


def stream_events(api: Api, job_id: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The job's events (SSE) as (event id, kind, payload) until the stream ends, logging
    steps and states. The id is the Redis stream id, `<ms>-<seq>`: when the platform
    recorded the event (empty on the closing state the gateway adds itself)."""
    with api.http.stream(
        "GET",
        f"/api/v1/jobs/{job_id}/events",
        headers=api.headers,
        timeout=httpx.Timeout(30, read=300),
    ) as response:
        response.raise_for_status()
        event_id, kind, data = "", "message", ""
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                payload = json.loads(data)
                if kind == "progress":
                    log(f"step {payload['step']}/{payload['max_steps']} loss {payload['loss']:.3f}")
                elif kind == "state":
                    log(f"state: {payload['state']}")
                yield event_id, kind, payload
                event_id, kind, data = "", "message", ""


def events(api: Api, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, payload) for _, kind, payload in stream_events(api, job_id)]


def upload_dataset(api: Api, name: str, content: bytes) -> dict[str, Any]:
    """Upload a dataset file and wait for its inspection to end; the dataset as the API
    shows it."""
    dataset: dict[str, Any] = api.http.post(
        "/api/v1/datasets", files={"file": (name, content)}, headers=api.headers
    ).json()
    while dataset["state"] == "inspecting":
        time.sleep(1)
        dataset = api.http.get(f"/api/v1/datasets/{dataset['id']}", headers=api.headers).json()
    log(f"dataset: {dataset['state']}, {dataset['valid_rows']} rows")
    return dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400, help="GSM8K-train rows")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--sample", type=int, default=10, help="GSM8K-test questions")
    parser.add_argument("--keep-data", default=None)
    args = parser.parse_args()

    slice_ = b"".join((GSM8K / "train.jsonl").read_bytes().splitlines(keepends=True)[: args.rows])
    models = ensure_hf_model(MODELS_DIR)  # converted once, shared with the tests
    with platform(args.keep_data, TRAINER_MODELS_DIR=str(models.parent)) as running:
        api = Api(running.url)
        dataset = upload_dataset(api, "gsm8k-train.jsonl", slice_)
        started = time.perf_counter()
        job = api.http.post(
            "/api/v1/jobs",
            json={
                "name": "bench: SmolLM2 on GSM8K",
                "dataset_id": dataset["id"],
                "preset": "quick",
                "hyperparameters": {
                    "max_steps": args.steps,
                    "sequence_len": 384,
                    "micro_batch_size": 2,
                    "gradient_accumulation_steps": 2,
                    "learning_rate": 3e-4,
                    "eval_steps": max(1, args.steps // 4),
                },
                "benchmark_sample": args.sample,
            },
            headers=api.headers,
        ).json()
        seen = events(api, job["id"])
        total = time.perf_counter() - started
        done = api.http.get(f"/api/v1/jobs/{job['id']}", headers=api.headers).json()
        versions = api.http.get("/api/v1/models", headers=api.headers).json()["data"]
    progress = [p for kind, p in seen if kind == "progress"]
    evals = [p["eval_loss"] for kind, p in seen if kind == "eval"]
    losses = [p["loss"] for p in progress]
    window = max(1, len(losses) // 6)
    rates = [p["tokens_per_second"] for p in progress if p.get("tokens_per_second")]
    artefacts = next((p for kind, p in seen if kind == "artefacts"), {})
    evaluation = done.get("evaluation") or {}
    result = {
        "state": done["state"],
        "steps": done["step"],
        "rows": dataset["valid_rows"],
        "first_loss": round(statistics.mean(losses[:window]), 4) if losses else None,
        "last_loss": round(statistics.mean(losses[-window:]), 4) if losses else None,
        "loss_fell": bool(losses)
        and statistics.mean(losses[-window:]) < statistics.mean(losses[:window]),
        "eval_loss_first": evals[0] if evals else None,
        "eval_loss_last": evals[-1] if evals else None,
        "gsm8k_sample": evaluation.get("sample"),
        "gsm8k_base_exact_match": evaluation.get("base_score"),
        "gsm8k_tuned_exact_match": evaluation.get("tuned_score"),
        "adapter_loaded_for_eval": evaluation.get("tuned_score") is not None,
        "adapter_bytes": artefacts.get("adapter_bytes"),
        "merged_bytes": artefacts.get("merged_bytes"),
        "model_version_registered": bool(versions),
        "train_tokens_per_second_p50": round(statistics.median(rates), 1) if rates else None,
        "total_seconds": round(total, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
