"""Helpers for knowledge-base tests: create, upload, wait for sync state, inspect Chroma."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import chromadb
import httpx

from services.common.vectors import KB_ID, KEY, collection_name
from tests.factories import SignedInUser
from tests.servers.platform import Platform

MINILM = "all-MiniLM-L6-v2"


def create_kb(client: httpx.Client, user: SignedInUser, name: str = "docs") -> dict[str, Any]:
    response = client.post("/api/v1/kbs", json={"name": name}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def upload(
    client: httpx.Client, user: SignedInUser, kb_id: str, files: dict[str, bytes]
) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/kbs/{kb_id}/documents",
        files=[("files", (name, data)) for name, data in files.items()],
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def documents(client: httpx.Client, user: SignedInUser, kb_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/kbs/{kb_id}/documents", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def wait_for_documents(
    client: httpx.Client,
    user: SignedInUser,
    kb_id: str,
    done: Callable[[dict[str, dict[str, Any]]], bool],
    *,
    timeout: float = 180,
) -> dict[str, dict[str, Any]]:
    """Poll the document list (by name) until `done` holds, as the UI does."""
    deadline = time.monotonic() + timeout
    by_name: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        by_name = {d["name"]: d for d in documents(client, user, kb_id)}
        if done(by_name):
            return by_name
        time.sleep(0.5)
    raise AssertionError(f"documents never reached the expected state: {by_name}")


def retrieve(
    client: httpx.Client, user: SignedInUser, kb_id: str, query: str, k: int = 5
) -> list[dict[str, Any]]:
    response = client.post(
        f"/api/v1/kbs/{kb_id}/retrieve", json={"query": query, "k": k}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def platform_s3(platform: Platform) -> Any:
    env = platform.env
    if "S3_ENDPOINT_URL" in env:
        return boto3.client(
            "s3",
            endpoint_url=env["S3_ENDPOINT_URL"],
            aws_access_key_id=env["S3_ACCESS_KEY_ID"],
            aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
    creds = json.loads((platform.data_dir / "s3-credentials.json").read_text())
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{env['EMBEDDED_S3_PORT']}",
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        region_name="us-east-1",
    )


def chunk_count(platform: Platform, kb_id: str, key: str) -> int:
    client = chromadb.HttpClient(host="127.0.0.1", port=int(platform.env["EMBEDDED_CHROMA_PORT"]))
    collection = client.get_collection(collection_name(MINILM))
    found = collection.get(where={"$and": [{KB_ID: kb_id}, {KEY: key}]}, include=[])
    return len(found["ids"])
