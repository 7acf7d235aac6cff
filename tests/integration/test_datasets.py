"""Datasets through the real platform: upload, the format detected, problems with their line
numbers, token statistics with the bundled model's tokenizer, preview, confirming another
format, the catalogue and estimates; other users see nothing."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import make_user
from tests.integration.conftest import Stack
from tests.integration.dataset_helpers import GSM8K_TRAIN, inspected, upload
from tests.integration.kb_helpers import platform_s3


def alpaca_jsonl() -> bytes:
    rows = [
        {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
        {"instruction": "Name the capital of France.", "output": "Paris"},
        {"instruction": "Translate 'cat' to French.", "output": ""},  # line 3: empty output
        "",  # line 4: blank (skipped, but counted as a line)
        '{"instruction": "Broken JSON", "output": ',  # line 5: not JSON
        {"instruction": "Double 21. " * 60, "output": "42"},  # long: over a short seq length
    ]
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.both_databases
def test_an_alpaca_file_is_detected_checked_and_counted(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)
    response = upload(client, user, "maths.jsonl", alpaca_jsonl(), name="Maths drills")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] == "inspecting" and created["name"] == "Maths drills"

    dataset = inspected(client, user, created["id"])
    assert dataset["state"] == "ready"
    assert dataset["file_type"] == "jsonl"
    assert dataset["detected_format"] == "alpaca" and dataset["format"] == "alpaca"
    assert dataset["detection_reason"]
    assert dataset["rows"] == 5 and dataset["valid_rows"] == 3
    by_line = {p["line"]: p for p in dataset["problems"]}
    assert by_line[3]["field"] == "output" and by_line[3]["fix"]
    assert 5 in by_line and by_line[5]["unit"] == "line"
    stats = dataset["token_stats"]
    assert stats["tokenizer"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert stats["rows"] == 3 and stats["max"] > stats["min"] > 0
    assert stats["over_sequence_len"] == 0

    # A shorter sequence length: the long row no longer fits, and the user sees it counted.
    patched = client.patch(
        f"/api/v1/datasets/{dataset['id']}", json={"sequence_len": 64}, headers=user.headers
    )
    assert patched.status_code == 200 and patched.json()["state"] == "inspecting"
    dataset = inspected(client, user, dataset["id"])
    assert dataset["token_stats"]["over_sequence_len"] == 1
    assert dataset["token_stats"]["sequence_len"] == 64

    preview = client.get(
        f"/api/v1/datasets/{dataset['id']}/preview?offset=1&limit=2", headers=user.headers
    ).json()
    assert [r["line"] for r in preview["data"]] == [2, 3]
    assert preview["data"][0]["data"]["output"] == "Paris"

    # Confirming a format the rows do not have: every row is a problem, nothing is usable.
    wrong = client.patch(
        f"/api/v1/datasets/{dataset['id']}", json={"format": "chat"}, headers=user.headers
    )
    assert wrong.status_code == 200
    dataset = inspected(client, user, dataset["id"])
    assert dataset["state"] == "invalid" and dataset["format_confirmed"] is True
    assert dataset["valid_rows"] == 0 and dataset["problem_count"] >= 4


def parquet_bomb(row_groups: int = 24, row_bytes: int = 64 * 2**20) -> bytes:
    """About 60 KiB on disk, 1.5 GiB once read (twice that as Python rows): rows of one
    repeated letter, zstd-packed, written a row group at a time (this test never holds more
    than one row). The stack inspects within 1 GiB (INSPECTION_MAX_MEMORY_MB)."""
    buffer = io.BytesIO()
    schema = pa.schema([("instruction", pa.string()), ("output", pa.string())])
    with pq.ParquetWriter(buffer, schema, compression="zstd") as writer:
        row = pa.table({"instruction": ["a" * row_bytes], "output": ["b"]}, schema=schema)
        for _ in range(row_groups):
            writer.write_table(row)
    return buffer.getvalue()


def test_a_parquet_bomb_fails_its_inspection_and_nothing_else(
    stack: Stack, client: httpx.Client
) -> None:
    # Hostile: a small compressed Parquet file that expands past the trainer's memory; read in
    # the trainer's API process, it took the API down, and again at every start.
    user = make_user(client)
    bomb = parquet_bomb()
    assert len(bomb) < 1024 * 1024
    dataset = inspected(client, user, upload(client, user, "bomb.parquet", bomb).json()["id"])
    assert dataset["state"] == "failed", dataset
    assert dataset["failure_code"] == "inspection_out_of_memory"
    assert "GiB of memory" in dataset["failure_reason"]
    preview = client.get(f"/api/v1/datasets/{dataset['id']}/preview", headers=user.headers)
    assert preview.status_code == 422 and preview.json()["error"]["code"] == "dataset_failed"
    # The trainer lives on: the next upload is inspected as usual.
    csv = b"instruction,output\nSay hi,Hi!\n"
    after = inspected(client, user, upload(client, user, "hi.csv", csv).json()["id"])
    assert after["state"] == "ready", after


def test_csv_and_parquet_files_and_a_real_gsm8k_slice(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)
    csv = b'instruction,output\n"Say hi","Hi!\nHow are you?"\nName a colour,Blue\n'
    dataset = inspected(client, user, upload(client, user, "hi.csv", csv).json()["id"])
    assert dataset["file_type"] == "csv" and dataset["format"] == "alpaca"
    assert dataset["rows"] == 2 and dataset["valid_rows"] == 2

    table = pa.table(
        {
            "prompt": ["Is the sky blue?", "Is fire cold?"],
            "chosen": ["Yes, on a clear day.", "No, fire is hot."],
            "rejected": ["No.", "Yes."],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    dataset = inspected(
        client, user, upload(client, user, "prefs.parquet", buffer.getvalue()).json()["id"]
    )
    assert dataset["file_type"] == "parquet" and dataset["format"] == "preference"
    assert dataset["valid_rows"] == 2

    gsm8k = b"".join(GSM8K_TRAIN.read_bytes().splitlines(keepends=True)[:200])
    dataset = inspected(client, user, upload(client, user, "gsm8k.jsonl", gsm8k).json()["id"])
    assert dataset["state"] == "ready", dataset
    assert dataset["rows"] == 200 and dataset["valid_rows"] == 200
    assert dataset["train_rows"] + dataset["eval_rows"] == 200 and dataset["eval_rows"] >= 1
    estimate = client.post(
        "/api/v1/estimates",
        json={"dataset_id": dataset["id"], "method": "lora", "provider": "local", "epochs": 1},
        headers=user.headers,
    )
    assert estimate.status_code == 200, estimate.text
    body = estimate.json()
    assert body["usd"] is None and body["tokens"] > 0 and body["summary"]


@pytest.mark.both_databases
def test_what_cannot_be_a_dataset_is_refused_and_nothing_is_left_behind(
    stack: Stack, client: httpx.Client
) -> None:
    user = make_user(client)
    response = upload(client, user, "setup.exe", b"MZ\x90\x00")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unsupported_dataset_type"
    s3 = platform_s3(stack.platform)
    listed = s3.list_objects_v2(Bucket="forgeline", Prefix=f"{user.id}/datasets/")
    assert listed.get("KeyCount", 0) == 0

    upload(client, user, "a.jsonl", b'{"text": "hello"}\n', name="dup").raise_for_status()
    taken = upload(client, user, "b.jsonl", b'{"text": "hello"}\n', name="dup")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "dataset_name_taken"
    assert s3.list_objects_v2(Bucket="forgeline", Prefix=f"{user.id}/datasets/")["KeyCount"] == 1


@pytest.mark.both_databases
def test_datasets_are_private_and_deleting_one_removes_its_file(
    stack: Stack, client: httpx.Client
) -> None:
    owner, other = make_user(client), make_user(client)
    dataset = upload(client, owner, "notes.txt", b"Plain text for continued pre-training.").json()
    path = f"/api/v1/datasets/{dataset['id']}"
    assert client.get("/api/v1/datasets", headers=other.headers).json()["count"] == 0
    for method, suffix in [("GET", ""), ("GET", "/preview"), ("PATCH", ""), ("DELETE", "")]:
        answer = client.request(
            method, path + suffix, json={} if method == "PATCH" else None, headers=other.headers
        )
        assert answer.status_code == 404, (method, suffix, answer.text)
        assert answer.json()["error"]["code"] == "dataset_not_found"
    done = inspected(client, owner, dataset["id"])
    assert done["file_type"] == "documents" and done["format"] == "text"

    assert client.delete(path, headers=owner.headers).status_code == 204
    assert client.get(path, headers=owner.headers).status_code == 404
    s3 = platform_s3(stack.platform)
    listed = s3.list_objects_v2(Bucket="forgeline", Prefix=f"{owner.id}/datasets/")
    assert listed.get("KeyCount", 0) == 0


def test_the_catalogue_and_cloud_estimates(stack: Stack, client: httpx.Client) -> None:
    user = make_user(client)
    models = client.get("/api/v1/base-models", headers=user.headers).json()["data"]
    by_id = {m["id"]: m for m in models}
    bundled = by_id["smollm2-135m-instruct"]
    assert bundled["available_locally"] is True
    assert set(bundled["gpu_memory_gb"]) == {"full", "lora", "qlora"}
    assert len(models) >= 5 and any(m["parameters"] > 7e9 for m in models)
    big = max(models, key=lambda m: m["parameters"])
    assert (
        big["gpu_memory_gb"]["qlora"] < big["gpu_memory_gb"]["lora"] < big["gpu_memory_gb"]["full"]
    )
    assert big["recommended_instances"]["lora"]

    suggested = client.get("/api/v1/suggested-datasets", headers=user.headers).json()["data"]
    assert "TIGER-Lab/MathInstruct" in {d["hub_id"] for d in suggested}

    estimate = client.post(
        "/api/v1/estimates",
        json={"base_model": big["id"], "method": "lora", "provider": "aws", "tokens": 5_000_000},
        headers=user.headers,
    ).json()
    assert estimate["instance"]["provider"] == "aws" and estimate["usd"] > 0
    unknown = client.post(
        "/api/v1/estimates", json={"base_model": "gpt-17", "tokens": 10}, headers=user.headers
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_base_model"


def jsonl(*rows: object) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def zipped(**files: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name.replace("_", "."), data)
    return buffer.getvalue()


USER, REPLY = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}
SUM, HI = {"instruction": "Add 2 and 3.", "output": "5"}, {"instruction": "Say hi", "output": "hi"}
TALK = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}
TALK2 = {"conversations": [{"from": "human", "value": "Hey"}, {"from": "gpt", "value": "Hi"}]}
FIRE = {"prompt": "Is fire hot?", "chosen": "Yes.", "rejected": "No."}
# (format, file name, a good file, a bad file, the line of the bad row, words of its problem)
EVERY_FORMAT = [
    ("alpaca", "a.jsonl",
     jsonl(SUM, HI), jsonl(SUM, {**HI, "output": ""}),
     2, "output"),
    ("chat", "c.jsonl",
     jsonl({"messages": [USER, REPLY]}, {"messages": [{**USER, "content": "Hey"}, REPLY]}),
     jsonl({"messages": [USER, REPLY]}, {"messages": [USER, REPLY, USER]}),
     2, "ends with a 'user' message"),
    ("sharegpt", "s.jsonl",
     jsonl(TALK, TALK2),
     jsonl(TALK, {"conversations": [{"from": "human"}, {"from": "gpt", "value": "Yo"}]}),
     2, "no 'value'"),
    ("preference", "p.jsonl",
     jsonl(FIRE, {**FIRE, "prompt": "Is the sun hot?"}),
     jsonl(FIRE,
           {"prompt": "Is ice cold?", "chosen": "Yes.", "rejected": "Yes."}),
     2, "same"),
    ("text", "t.jsonl",
     jsonl({"text": "Forgeline trains models."}, {"text": "It runs on your machine."}),
     jsonl({"text": "Forgeline trains models."}, {"text": ""}),
     2, "empty"),
    ("documents", "d.zip",
     zipped(notes_txt=b"Quarterly revenue grew.", more_md=b"# Costs\nCosts fell."),
     zipped(notes_txt=b"Quarterly revenue grew.", broken_pdf=b"%PDF-1.7 this is not a pdf"),
     2, "broken.pdf"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "file_name", "good", "bad", "bad_line", "words"),
    EVERY_FORMAT,
    ids=[case[0] for case in EVERY_FORMAT],
)
def test_a_good_and_a_bad_file_of_every_format(
    client: httpx.Client,
    fmt: str,
    file_name: str,
    good: bytes,
    bad: bytes,
    bad_line: int,
    words: str,
) -> None:
    user = make_user(client)
    ready = inspected(client, user, upload(client, user, file_name, good, name="good").json()["id"])
    assert ready["state"] == "ready", ready
    assert ready["format"] == ("text" if fmt == "documents" else fmt), ready
    assert ready["problem_count"] == 0 and ready["valid_rows"] == 2

    checked = inspected(client, user, upload(client, user, file_name, bad, name="bad").json()["id"])
    assert checked["valid_rows"] == 1 and checked["problem_count"] == 1, checked
    problem = checked["problems"][0]
    assert problem["line"] == bad_line, problem
    assert words in (problem["message"] + " " + str(problem.get("field"))), problem
    assert problem["fix"]  # and the user is told what to do about it
