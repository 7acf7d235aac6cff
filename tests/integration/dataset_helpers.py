"""Helpers for dataset and job tests: upload a file, wait until it is inspected."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.factories import SignedInUser
from tests.servers.platform import REPO

GSM8K_TRAIN = REPO.parent / "shared" / "data" / "gsm8k" / "train.jsonl"


def upload(
    client: httpx.Client, user: SignedInUser, file_name: str, data: bytes, **form: str
) -> httpx.Response:
    return client.post(
        "/api/v1/datasets", files={"file": (file_name, data)}, data=form, headers=user.headers
    )


def inspected(
    client: httpx.Client, user: SignedInUser, dataset_id: str, timeout: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dataset = client.get(f"/api/v1/datasets/{dataset_id}", headers=user.headers).json()
        if dataset["state"] != "inspecting":
            return dataset  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"dataset never left 'inspecting': {dataset}")
