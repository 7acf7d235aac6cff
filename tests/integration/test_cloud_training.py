"""Training in the user's own AWS account, against moto's EC2 as that account.

What a user relies on: credentials are checked before they are stored and never shown again;
a job starts one instance tagged with the job, whose startup script (the real one, run here
as the node would run it) trains and reports back; the instance is terminated whenever the
job ends, on success, failure, cancel or a machine that vanished; and the reaper terminates
any training instance whose job is not running on it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.bundled_model import MODEL_ID as BUNDLED_MODEL_ID
from services.common.engines import ENGINES, ensure_engine
from services.trainer import axolotl_config
from tests.factories import SignedInUser, make_user
from tests.integration.conftest import MODELS_DIR, Stack
from tests.integration.dataset_helpers import GSM8K_TRAIN, inspected, upload
from tests.integration.job_helpers import ENDED, gsm8k_dataset, sse
from tests.integration.kb_helpers import platform_s3
from tests.integration.test_gcp_instances import key_json

# Trains, serves or starts platforms: runs after the rest of the folder (tests/conftest.py).
pytestmark = pytest.mark.slow

KEY_ID = "AKIAFORGELINETEST0001"
SECRET = "moto-accepts-any-secret-but-this-one-must-stay-hidden"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def ec2(stack: Stack) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def add_aws_account(client: httpx.Client, user: SignedInUser, name: str = "Lab AWS") -> str:
    response = client.post(
        "/api/v1/credentials",
        json={
            "name": name,
            "kind": "aws",
            "location": "us-east-1",
            "secret": {"access_key_id": KEY_ID, "secret_access_key": SECRET},
        },
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def start_aws_job(
    client: httpx.Client, user: SignedInUser, credential_id: str, **extra: Any
) -> dict[str, Any]:
    if "dataset_id" not in extra:
        datasets = client.get("/api/v1/datasets", headers=user.headers).json()["data"]
        dataset = datasets[0] if datasets else gsm8k_dataset(client, user, rows=24)
        extra["dataset_id"] = dataset["id"]
    response = client.post(
        "/api/v1/jobs",
        json={
            "name": "Cloud tutor",
            "provider": "aws",
            "credential_id": credential_id,
            "preset": "quick",
            "hyperparameters": {
                "max_steps": 3,
                "sequence_len": 256,
                "micro_batch_size": 2,
                "gradient_accumulation_steps": 1,
                "eval_steps": 3,
                "save_steps": 3,
            },
            "benchmark_sample": 0,
            **extra,
        },
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def job(client: httpx.Client, user: SignedInUser, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for(
    client: httpx.Client,
    user: SignedInUser,
    job_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 120,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = job(client, user, job_id)
        if done(current):
            return current
        assert time.monotonic() < deadline, current
        time.sleep(0.5)


def launched(client: httpx.Client, user: SignedInUser, job_id: str) -> str:
    """The instance id, once the job's machine is started."""
    current = wait_for(
        client, user, job_id, lambda j: bool(j["machine"]) or j["state"] in ENDED, timeout=180
    )
    assert current["machine"] and current["machine"].startswith("aws:i-"), current
    return str(current["machine"].split(":", 1)[1])


def instance(stack: Stack, instance_id: str) -> dict[str, Any]:
    answer = ec2(stack).describe_instances(InstanceIds=[instance_id])
    return dict(answer["Reservations"][0]["Instances"][0])


def instance_state(stack: Stack, instance_id: str) -> str:
    return str(instance(stack, instance_id)["State"]["Name"])


def wait_terminated(stack: Stack, instance_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while instance_state(stack, instance_id) != "terminated":
        assert time.monotonic() < deadline, instance_state(stack, instance_id)
        time.sleep(0.5)


def startup_script(stack: Stack, instance_id: str) -> str:
    answer = ec2(stack).describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(answer["UserData"]["Value"]).decode()


def manifest_of(script: str) -> dict[str, Any]:
    """What the node fetches: the manifest behind the presigned URL in its startup script."""
    line = next(x for x in script.splitlines() if "--manifest-url" in x)
    url = line.split("--manifest-url ", 1)[1].split(" --workdir", 1)[0].strip("'")
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200
    return dict(response.json())


def report(stack: Stack, manifest: dict[str, Any], *events: dict[str, Any]) -> dict[str, Any]:
    """Speak as the node does (node_bootstrap.Reporter)."""
    response = httpx.post(
        manifest["callback_url"],
        json={"events": list(events)},
        headers={"Authorization": f"Bearer {manifest['token']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- credentials -----------------------------------------------------------------------------


@pytest.mark.both_databases
def test_cloud_credentials_are_checked_stored_and_never_shown(
    stack: Stack, client: httpx.Client, user: SignedInUser
) -> None:
    bad = client.post(
        "/api/v1/credentials",
        json={"name": "typo", "kind": "aws", "location": "us-east-1",
              "secret": {"access_key_id": "not-a-key", "secret_access_key": "x"}},
        headers=user.headers,
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "cloud_credentials_invalid"
    region = client.post(
        "/api/v1/credentials",
        json={"name": "typo", "kind": "aws", "location": "mars-1",
              "secret": {"access_key_id": KEY_ID, "secret_access_key": SECRET}},
        headers=user.headers,
    )  # fmt: skip
    assert region.status_code == 422 and region.json()["error"]["code"] == "invalid_region"

    credential_id = add_aws_account(client, user)
    again = client.post(
        "/api/v1/credentials",
        json={"name": "Lab AWS", "kind": "aws", "location": "us-east-1",
              "secret": {"access_key_id": KEY_ID, "secret_access_key": SECRET}},
        headers=user.headers,
    )  # fmt: skip
    assert again.status_code == 409 and again.json()["error"]["code"] == "credential_exists"
    wandb = client.post(
        "/api/v1/credentials",
        json={"name": "wandb", "kind": "wandb", "secret": {"api_key": "0123456789abcdef" * 3}},
        headers=user.headers,
    )
    assert wandb.status_code == 201, wandb.text

    listed = client.get("/api/v1/credentials", headers=user.headers)
    assert listed.status_code == 200
    body = listed.text
    assert SECRET not in body and KEY_ID not in body and "0123456789abcdef" * 3 not in body
    by_name = {c["name"]: c for c in listed.json()["data"]}
    assert by_name["Lab AWS"]["hint"] == "…0001" and by_name["Lab AWS"]["location"] == "us-east-1"
    assert by_name["wandb"]["kind"] == "wandb"

    # Another user neither sees nor uses them.
    other = make_user(client)
    assert client.get("/api/v1/credentials", headers=other.headers).json()["count"] == 0
    foreign = client.delete(f"/api/v1/credentials/{credential_id}", headers=other.headers)
    assert foreign.status_code == 404
    dataset = gsm8k_dataset(client, other, rows=24)
    stolen = client.post(
        "/api/v1/jobs",
        json={"name": "x", "dataset_id": dataset["id"], "provider": "aws",
              "credential_id": credential_id},
        headers=other.headers,
    )  # fmt: skip
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "credential_not_found"
    missing = client.post(
        "/api/v1/jobs",
        json={"name": "x", "dataset_id": dataset["id"], "provider": "aws"},
        headers=other.headers,
    )
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "credential_required"

    assert SECRET not in stack.platform.logs()  # never logged, not even by the dry run
    deleted = client.delete(f"/api/v1/credentials/{credential_id}", headers=user.headers)
    assert deleted.status_code == 204


# --- the instance's life ---------------------------------------------------------------------


def hub_cache_with_bundled_model(root: Path) -> Path:
    """A Hugging Face cache holding the bundled model under its hub id, so the node's
    `from_pretrained(hub id)` works offline here as it downloads on a real cloud node."""
    repo = root / "hub" / ("models--" + HUB_ID.replace("/", "--"))
    revision = "0" * 40
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for file in (MODELS_DIR / BUNDLED_MODEL_ID).iterdir():
        (snapshot / file.name).symlink_to(file)
    return root


def test_an_aws_job_runs_its_startup_script_and_its_instance_is_terminated(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    user = make_user(client)
    credential_id = add_aws_account(client, user)
    # A preference stage, so that DPO runs end to end through the API (SFT runs locally in
    # test_jobs): the right GSM8K answer is chosen over another question's.
    rows = [json.loads(line) for line in GSM8K_TRAIN.read_text().splitlines()[:24]]
    pairs = [
        {"prompt": row["question"], "chosen": row["answer"], "rejected": rows[n - 1]["answer"]}
        for n, row in enumerate(rows)
    ]
    data = "\n".join(json.dumps(pair) for pair in pairs).encode()
    dataset = inspected(client, user, upload(client, user, "pairs.jsonl", data).json()["id"])
    assert dataset["state"] == "ready" and dataset["format"] == "preference", dataset
    created = start_aws_job(client, user, credential_id, stage="dpo", dataset_id=dataset["id"])
    assert created["instance_type"] == "g5.xlarge"  # the cheapest AWS machine that fits
    config = client.get(f"/api/v1/jobs/{created['id']}/config", headers=user.headers).text
    assert f"base_model: {HUB_ID}" in config  # a cloud node downloads it from the hub

    instance_id = launched(client, user, created["id"])
    described = instance(stack, instance_id)
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags["forgeline-job-id"] == created["id"]
    assert tags["forgeline-owner-id"] == user.id and tags["forgeline-role"] == "training"
    assert described["InstanceType"] == "g5.xlarge"
    shutdown = ec2(stack).describe_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    script = startup_script(stack, instance_id)
    assert script.startswith("#!/bin/bash") and "axolotl==0.19.0" in script
    assert "token" not in script.lower() and SECRET not in script

    # This machine has no GPU: the test swaps the GPU settings of the config the node gets
    # (bf16, flash attention) for the CPU ones. Everything else is as a cloud node gets it.
    s3 = platform_s3(stack.platform)
    key = f"{user.id}/jobs/{created['id']}/node/manifest.json"
    bucket = stack.platform.env.get("S3_BUCKET", "forgeline")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    # Its results go up through forms the store holds to a size (test_result_uploads.py).
    for form in manifest["uploads"].values():
        policy = json.loads(base64.b64decode(form["fields"]["policy"]))
        assert ["content-length-range", 1, form["max_bytes"]] in policy["conditions"]
    config = yaml.safe_load(manifest["config_yaml"]) | axolotl_config.device_settings("cpu")
    manifest["config_yaml"] = yaml.safe_dump(config)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())

    # Run the startup script as the node would, with the axolotl engine standing in for the
    # `pip install` a fresh GPU node does, and a file standing in for the power-off.
    powered_off = tmp_path / "powered-off"
    env = {
        **os.environ,
        "FORGELINE_PYTHON": str(ensure_engine(ENGINES["axolotl"])),  # waits for `make test`'s build
        "FORGELINE_WORKDIR": str(tmp_path / "node"),
        "FORGELINE_SHUTDOWN": f"touch {powered_off}",
        "HF_HOME": str(hub_cache_with_bundled_model(tmp_path / "hf")),
        "HF_HUB_OFFLINE": "1",
    }
    node = subprocess.run(["bash", "-c", script], env=env, timeout=900, check=False)
    log = (tmp_path / "node" / "node.log").read_text(errors="replace")
    reason = job(client, user, created["id"])["failure_reason"]
    assert node.returncode == 0, f"{log[-3000:]}\n{reason}"
    assert powered_off.exists()  # the machine powers itself off at the end

    events = list(sse(client, user, created["id"]))
    states = [data["state"] for _, kind, data in events if kind == "state"]
    assert states[-1] == "succeeded", events[-5:]
    assert [p["step"] for _, kind, p in events if kind == "progress"] == [1, 2, 3]
    wait_terminated(stack, instance_id)
    finished = job(client, user, created["id"])
    assert finished["model_version_id"]


def test_an_aws_job_that_fails_is_cancelled_or_loses_its_machine_leaves_no_instance(
    stack: Stack, client: httpx.Client
) -> None:
    user = make_user(client)
    credential_id = add_aws_account(client, user)

    # The node reports a failure: the job fails with its reason, the instance goes.
    failing = start_aws_job(client, user, credential_id)
    instance_id = launched(client, user, failing["id"])
    manifest = manifest_of(startup_script(stack, instance_id))
    report(
        stack,
        manifest,
        {"type": "state", "data": {"state": "training"}},
        {"type": "error", "data": {"message": "CUDA out of memory"}},
    )
    ended = wait_for(client, user, failing["id"], lambda j: j["state"] in ENDED)
    assert ended["state"] == "failed" and ended["failure_code"] == "training_failed"
    assert "CUDA out of memory" in ended["failure_reason"]
    wait_terminated(stack, instance_id)
    # The manifest (it holds the callback token) is gone from the store with the job.
    url = next(x for x in startup_script(stack, instance_id).split() if "manifest.json" in x)
    assert httpx.get(url.strip("'"), timeout=30).status_code == 404

    # Cancelled while training: cancelled, terminated, and the node is told to stop.
    cancelled = start_aws_job(client, user, credential_id)
    instance_id = launched(client, user, cancelled["id"])
    manifest = manifest_of(startup_script(stack, instance_id))
    report(stack, manifest, {"type": "state", "data": {"state": "training"}})
    response = client.post(f"/api/v1/jobs/{cancelled['id']}/cancel", headers=user.headers)
    assert response.status_code == 200
    ended = wait_for(client, user, cancelled["id"], lambda j: j["state"] in ENDED)
    assert ended["state"] == "cancelled"
    wait_terminated(stack, instance_id)

    # The machine stops under it (a spot reclaim, someone in the console): failed, and the
    # stopped instance is terminated rather than left holding its disk.
    lost = start_aws_job(client, user, credential_id)
    instance_id = launched(client, user, lost["id"])
    ec2(stack).stop_instances(InstanceIds=[instance_id])
    ended = wait_for(client, user, lost["id"], lambda j: j["state"] in ENDED)
    assert ended["state"] == "failed" and ended["failure_code"] == "node_lost"
    wait_terminated(stack, instance_id)

    # With no job running in it, the account's credentials may go.
    assert (
        client.delete(f"/api/v1/credentials/{credential_id}", headers=user.headers).status_code
        == 204
    )


def test_a_node_cannot_flood_its_jobs_event_stream(stack: Stack, client: httpx.Client) -> None:
    # Hostile: the training machine runs what the job's owner gave it, and its token lets it
    # post events that land in Redis (every job's, in one memory) and in the browser.
    user = make_user(client)
    credential_id = add_aws_account(client, user)
    started = start_aws_job(client, user, credential_id)
    instance_id = launched(client, user, started["id"])
    manifest = manifest_of(startup_script(stack, instance_id))
    report(
        stack,
        manifest,
        {"type": "state", "data": {"state": "training"}},
        {"type": "log", "data": {"line": "L" * 300_000}},
        {"type": "progress", "data": {"step": 1, "max_steps": 3, "junk": "J" * 300_000}},
        {"type": "mine", "data": {"coins": "C" * 100_000}},
    )
    assert client.post(f"/api/v1/jobs/{started['id']}/cancel", headers=user.headers).is_success
    events = list(sse(client, user, started["id"]))
    assert all(len(json.dumps(data)) <= 8192 for _, _, data in events)
    assert "mine" not in {kind for _, kind, _ in events}
    lines = [data["line"] for _, kind, data in events if kind == "log"]
    assert any(line.endswith("more characters cut)") for line in lines)
    assert any("progress event of" in line and "was dropped" in line for line in lines)
    wait_terminated(stack, instance_id)


@pytest.mark.both_databases
def test_the_reaper_terminates_training_instances_whose_job_is_not_running(
    stack: Stack, client: httpx.Client
) -> None:
    user = make_user(client)
    add_aws_account(client, user)
    someone_else = make_user(client)

    def tagged(job_id: str, owner: str, role: str) -> str:
        tags = [
            {"Key": "forgeline-job-id", "Value": job_id},
            {"Key": "forgeline-owner-id", "Value": owner},
            {"Key": "forgeline-role", "Value": role},
        ]
        answer = ec2(stack).run_instances(
            ImageId="ami-0forgelinetest", InstanceType="g5.xlarge", MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )  # fmt: skip
        return str(answer["Instances"][0]["InstanceId"])

    # A training machine left behind (its worker died before recording it, say).
    stray = tagged("0" * 32, user.id, "training")
    # Not this account's to judge: another user's job in a shared account. (Serving machines
    # are the deployer's reaper's: tests/integration/test_cloud_deployments.py.)
    foreign = tagged("2" * 32, someone_else.id, "training")
    wait_terminated(stack, stray, timeout=30)
    time.sleep(4)  # another reaper pass
    assert instance_state(stack, foreign) == "running"
    ec2(stack).terminate_instances(InstanceIds=[foreign])


def test_an_unknown_machine_type_or_one_too_small_is_refused(
    client: httpx.Client, user: SignedInUser
) -> None:
    credential_id = add_aws_account(client, user)
    dataset = gsm8k_dataset(client, user, rows=24)
    cases = (
        ({"instance_type": "x9.huge"}, 422, "unknown_instance_type"),
        # a full fine-tune of an 8B model needs far more than one A10G's 24 GB
        ({"instance_type": "g5.xlarge", "base_model": "llama-3-8b-instruct", "method": "full"},
         422, "instance_too_small"),
        ({"base_model": "llama-3-8b-instruct", "method": "full"}, 201, None),
    )  # fmt: skip
    for extra, status, code in cases:
        response = client.post(
            "/api/v1/jobs",
            json={"name": "m", "dataset_id": dataset["id"], "provider": "aws",
                  "credential_id": credential_id, **extra},
            headers=user.headers,
        )  # fmt: skip
        assert response.status_code == status, response.text
        if code:
            assert response.json()["error"]["code"] == code
        else:  # the cheapest machine that fits, sharded over its GPUs
            created = response.json()
            assert created["instance_type"] == "p4d.24xlarge", created
            config = client.get(f"/api/v1/jobs/{created['id']}/config", headers=user.headers)
            assert "deepspeed: deepspeed_zero3.json" in config.text
            client.post(f"/api/v1/jobs/{created['id']}/cancel", headers=user.headers)


# --- GCP, through the platform ---------------------------------------------------------------


def test_a_gcp_job_inserts_a_labelled_gpu_instance_and_deletes_it_when_cancelled(
    stack: Stack, client: httpx.Client, user: SignedInUser
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = key_json(key, stack.gce.token_uri)
    response = client.post(
        "/api/v1/credentials",
        json={"name": "Lab GCP", "kind": "gcp", "location": stack.gce.zone,
              "secret": {"service_account": json.dumps(account)}},
        headers=user.headers,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["hint"] == account["client_email"]
    inserts_before = len(stack.gce.inserts)

    dataset = gsm8k_dataset(client, user, rows=24)
    response = client.post(
        "/api/v1/jobs",
        json={"name": "GCP tutor", "dataset_id": dataset["id"], "provider": "gcp",
              "credential_id": response.json()["id"], "preset": "quick"},
        headers=user.headers,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["instance_type"] == "g2-standard-8"  # one L4: the cheapest that fits

    current = wait_for(client, user, created["id"], lambda j: bool(j["machine"]), timeout=180)
    name = current["machine"].split(":", 1)[1]
    body = stack.gce.inserts[inserts_before]
    assert body["name"] == name
    assert body["machineType"].endswith("/machineTypes/g2-standard-8")
    assert body["labels"]["forgeline-job-id"] == created["id"]
    assert body["labels"]["forgeline-owner-id"] == user.id
    assert body["labels"]["forgeline-role"] == "training"
    assert body["scheduling"]["onHostMaintenance"] == "TERMINATE"
    metadata = {item["key"]: item["value"] for item in body["metadata"]["items"]}
    script = metadata["startup-script"]
    assert script.startswith("#!/bin/bash") and "--manifest-url" in script
    assert manifest_of(script)["job_id"] == created["id"]
    assert name in stack.gce.instances

    response = client.post(f"/api/v1/jobs/{created['id']}/cancel", headers=user.headers)
    assert response.status_code == 200
    ended = wait_for(client, user, created["id"], lambda j: j["state"] in ENDED)
    assert ended["state"] == "cancelled"
    deadline = time.monotonic() + 30
    while name in stack.gce.instances:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_a_suggested_hub_dataset_and_online_wandb_on_a_cloud_job(
    stack: Stack, client: httpx.Client, user: SignedInUser
) -> None:
    credential_id = add_aws_account(client, user)

    def create(**body: Any) -> httpx.Response:
        return client.post(
            "/api/v1/jobs",
            json={"name": "Hub maths", "hub_dataset": "TIGER-Lab/MathInstruct",
                  "provider": "aws", "credential_id": credential_id, **body},
            headers=user.headers,
        )  # fmt: skip

    local = create(provider="local")
    assert local.status_code == 422
    assert local.json()["error"]["code"] == "hub_dataset_needs_cloud"
    unknown = create(hub_dataset="someone/private-data")
    assert unknown.json()["error"]["code"] == "unknown_hub_dataset"
    no_key = create(wandb_online=True)
    assert no_key.status_code == 422 and no_key.json()["error"]["code"] == "wandb_key_missing"

    wandb_key = "f00dfeed" * 5
    response = client.post(
        "/api/v1/credentials",
        json={"name": "my wandb", "kind": "wandb", "secret": {"api_key": wandb_key}},
        headers=user.headers,
    )
    assert response.status_code == 201
    response = create(wandb_online=True)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["hub_dataset"] == "TIGER-Lab/MathInstruct" and created["dataset_id"] == ""
    config = yaml.safe_load(
        client.get(f"/api/v1/jobs/{created['id']}/config", headers=user.headers).text
    )
    assert config["datasets"][0]["path"] == "TIGER-Lab/MathInstruct"
    assert config["wandb_mode"] == "online" and wandb_key not in json.dumps(config)

    instance_id = launched(client, user, created["id"])
    manifest = manifest_of(startup_script(stack, instance_id))
    assert not any(name.startswith("data/") for name in manifest["downloads"])
    assert manifest["env"] == {"WANDB_API_KEY": wandb_key}  # to the node only
    assert wandb_key not in stack.platform.logs()
    client.post(f"/api/v1/jobs/{created['id']}/cancel", headers=user.headers)
    assert wait_for(client, user, created["id"], lambda j: j["state"] in ENDED)["state"] == (
        "cancelled"
    )
    wait_terminated(stack, instance_id)
