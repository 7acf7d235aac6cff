"""Deployments in the user's own AWS account, against moto's EC2 as that account (no vLLM).

What a user relies on: a deployment names their stored credentials (nobody else's); it
starts one machine tagged with the deployment, its owner and the role `serving`, which
powers itself off when vLLM exits and whose startup script serves the model behind a key of
its own; the deployment shows what it costs and when it stops by itself; stopping it, a
node that never answers, and a deployment nobody uses all end with the machine terminated;
and the serving reaper terminates serving machines no deployment owns.

moto's machines run nothing, so the platform reaches every node at a fake node on this
machine (DEPLOYER_CLOUD_HOST_OVERRIDE): it answers /health when a test says so, and chat
requests only with the key from the node's own startup script.

The same holds in the user's own Google Cloud project, against the fake Compute Engine
(`stack.gce`), where the node's port is opened by one firewall rule for every deployment.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.factories import SignedInUser, make_user
from tests.integration.conftest import Stack
from tests.integration.test_cloud_training import (
    add_aws_account,
    ec2,
    instance,
    startup_script,
    wait_terminated,
)
from tests.integration.test_gcp_instances import key_json

BUNDLED = "smollm2-135m-instruct"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


class FakeNode:
    """What a booted serving node looks like from the platform: vLLM's /health, and a chat
    completion for a request that carries the node's key."""

    def __init__(self, port: int) -> None:
        self.healthy = False
        self.key = ""
        self.seen: list[dict[str, Any]] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/health" and node.healthy:
                    self._answer(200, {})
                else:
                    self._answer(503, {"error": "booting"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                authorization = self.headers.get("Authorization", "")
                node.seen.append({"path": self.path, "auth": authorization, "body": body})
                if not node.key or authorization != f"Bearer {node.key}":
                    self._answer(401, {"error": "Unauthorized"})
                    return
                self._answer(
                    200,
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "4"},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeNode:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def node(stack: Stack) -> Iterator[FakeNode]:
    with FakeNode(stack.cloud_node_port) as fake:
        yield fake


def deploy(
    client: httpx.Client, user: SignedInUser, credential_id: str, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/deployments",
        json={
            "base_model": BUNDLED,
            "target": "aws",
            "credential_id": credential_id,
            "name": f"cloud-{secrets.token_hex(3)}",
            **extra,
        },
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def deployment(client: httpx.Client, user: SignedInUser, deployment_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/deployments/{deployment_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_state(
    client: httpx.Client, user: SignedInUser, deployment_id: str, states: set[str], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = deployment(client, user, deployment_id)
        if current["state"] in states:
            return current
        assert time.monotonic() < deadline, current
        time.sleep(0.5)


def machine_of(stack: Stack, deployment_id: str, timeout: float = 30) -> str:
    """The id of the instance tagged with the deployment, once it is launched."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ec2(stack).describe_instances(
            Filters=[{"Name": "tag:forgeline-job-id", "Values": [deployment_id]}]
        )
        found = [i for r in answer["Reservations"] for i in r["Instances"]]
        if found:
            assert len(found) == 1, found
            return str(found[0]["InstanceId"])
        assert time.monotonic() < deadline, "no instance was launched"
        time.sleep(0.5)


def api_key_in(script: str) -> str:
    found = re.search(r"--api-key (\S+)", script)
    assert found, script
    return found.group(1).strip("'")


def test_a_deployment_starts_a_tagged_machine_that_serves_behind_its_key_and_stops(
    stack: Stack, client: httpx.Client, user: SignedInUser, node: FakeNode
) -> None:
    credential = add_aws_account(client, user)
    created = deploy(client, user, credential)
    assert created["target"] == "aws" and created["credential_id"] == credential
    assert created["instance_type"] == "g5.xlarge" and created["usd_per_hour"] == 1.006
    assert created["idle_minutes"] == 30
    assert created["cost_guard"] == (
        "Stops by itself after 30 idle minutes; costs about $1.01 an hour while running."
    )
    machine = machine_of(stack, created["id"])
    described = instance(stack, machine)
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags["forgeline-job-id"] == created["id"]
    assert tags["forgeline-owner-id"] == user.id
    assert tags["forgeline-role"] == "serving"
    assert described["InstanceType"] == "g5.xlarge"
    behaviour = ec2(stack).describe_instance_attribute(
        InstanceId=machine, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    groups = [g["GroupName"] for g in described["SecurityGroups"]]
    assert groups == [f"forgeline-serving-{stack.cloud_node_port}"], groups
    script = startup_script(stack, machine)
    assert '"$WORK/venv/bin/vllm" serve "$MODEL"' in script
    assert f"MODEL={HUB_ID}" in script
    assert f"--port {stack.cloud_node_port}" in script
    key = api_key_in(script)
    assert len(key) > 30
    booting = deployment(client, user, created["id"])
    assert booting["state"] == "starting" and "Booting" in booting["status_message"], booting
    # Another user sees nothing of it.
    other = make_user(client)
    hidden = client.get(f"/api/v1/deployments/{created['id']}", headers=other.headers)
    assert hidden.status_code == 404

    stopped = client.post(f"/api/v1/deployments/{created['id']}/stop", headers=user.headers)
    assert stopped.status_code == 200, stopped.text
    wait_terminated(stack, machine)
    ended = wait_state(client, user, created["id"], {"stopped"}, timeout=30)
    assert ended["stop_reason"] == "user"


def test_a_node_that_never_answers_is_terminated_and_the_deployment_fails(
    stack: Stack, client: httpx.Client, user: SignedInUser, node: FakeNode
) -> None:
    node.healthy = False
    credential = add_aws_account(client, user)
    created = deploy(client, user, credential)
    machine = machine_of(stack, created["id"])
    failed = wait_state(client, user, created["id"], {"failed", "ready"}, timeout=60)
    assert failed["state"] == "failed" and failed["failure_code"] == "boot_timeout", failed
    wait_terminated(stack, machine)


def test_a_ready_node_is_called_with_its_key_and_stops_when_idle(
    stack: Stack, client: httpx.Client, user: SignedInUser, node: FakeNode
) -> None:
    credential = add_aws_account(client, user)
    created = deploy(client, user, credential, idle_minutes=0.25)
    assert created["cost_guard"].startswith("Stops by itself after 15 idle seconds;")
    machine = machine_of(stack, created["id"])
    node.key = api_key_in(startup_script(stack, machine))
    node.healthy = True
    try:
        ready = wait_state(client, user, created["id"], {"ready", "failed"}, timeout=30)
        assert ready["state"] == "ready", ready
        answer = client.post(
            "/v1/chat/completions",
            json={"model": created["name"], "messages": [{"role": "user", "content": "2+2?"}]},
            headers=user.headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "4"
        call = node.seen[-1]
        assert call["path"] == "/v1/chat/completions"
        assert call["auth"] == f"Bearer {node.key}"  # the node's key, never the user's
        assert call["body"]["model"] == created["name"]
        # The use restarted the idle clock; nothing more comes, so it stops by itself.
        deadline = time.monotonic() + 10
        while deployment(client, user, created["id"])["last_used_at"] is None:
            assert time.monotonic() < deadline, "the use was not recorded"
            time.sleep(0.2)
        ended = wait_state(client, user, created["id"], {"stopped"}, timeout=60)
        assert ended["stop_reason"] == "idle", ended
        wait_terminated(stack, machine)
    finally:
        node.healthy = False
        node.key = ""


def test_the_serving_reaper_terminates_a_machine_no_deployment_owns(
    stack: Stack, client: httpx.Client, user: SignedInUser
) -> None:
    add_aws_account(client, user)
    launched = ec2(stack).run_instances(
        ImageId="ami-0forgelinetest",
        InstanceType="g5.xlarge",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "forgeline-job-id", "Value": secrets.token_hex(16)},
                    {"Key": "forgeline-owner-id", "Value": user.id},
                    {"Key": "forgeline-role", "Value": "serving"},
                ],
            }
        ],
    )
    stray = launched["Instances"][0]["InstanceId"]
    wait_terminated(stack, stray, timeout=30)


def test_deployments_use_only_the_callers_own_credentials(
    client: httpx.Client, user: SignedInUser
) -> None:
    owner = make_user(client)
    theirs = add_aws_account(client, owner)
    response = client.post(
        "/api/v1/deployments",
        json={"base_model": BUNDLED, "target": "aws", "credential_id": theirs},
        headers=user.headers,
    )
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "credential_not_found"
    missing = client.post(
        "/api/v1/deployments",
        json={"base_model": BUNDLED, "target": "aws", "credential_id": "0" * 32},
        headers=user.headers,
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "credential_not_found"


# --- GCP: the same, in the user's own project (the fake Compute Engine) ----------------------


def add_gcp_account(stack: Stack, client: httpx.Client, user: SignedInUser) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = key_json(key, stack.gce.token_uri)
    response = client.post(
        "/api/v1/credentials",
        json={"name": "Lab GCP", "kind": "gcp", "location": stack.gce.zone,
              "secret": {"service_account": json.dumps(account)}},
        headers=user.headers,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def gce_machine_of(stack: Stack, deployment_id: str, timeout: float = 30) -> dict[str, Any]:
    """The fake GCE's instance labelled with the deployment, once it is inserted."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            i
            for i in list(stack.gce.instances.values())
            if i.get("labels", {}).get("forgeline-job-id") == deployment_id
        ]
        if found:
            assert len(found) == 1, found
            return found[0]
        assert time.monotonic() < deadline, "no instance was inserted"
        time.sleep(0.5)


def wait_deleted(stack: Stack, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while name in stack.gce.instances:
        assert time.monotonic() < deadline, f"{name} was not deleted"
        time.sleep(0.5)


def test_a_gcp_deployment_opens_its_port_once_serves_behind_its_key_and_stops(
    stack: Stack, client: httpx.Client, node: FakeNode
) -> None:
    user = make_user(client)  # two live deployments at once: a user of its own
    credential = add_gcp_account(stack, client, user)
    rule_name = f"forgeline-serving-{stack.cloud_node_port}"
    created = deploy(client, user, credential, target="gcp")
    assert created["target"] == "gcp" and created["credential_id"] == credential
    assert created["instance_type"] == "g2-standard-8" and created["usd_per_hour"] == 0.854
    machine = gce_machine_of(stack, created["id"])
    assert machine["labels"]["forgeline-owner-id"] == user.id
    assert machine["labels"]["forgeline-role"] == "serving"
    assert machine["machineType"].endswith("/machineTypes/g2-standard-8")
    assert machine["tags"]["items"] == [rule_name]
    metadata = {item["key"]: item["value"] for item in machine["metadata"]["items"]}
    script = metadata["startup-script"]
    assert '"$WORK/venv/bin/vllm" serve "$MODEL"' in script and f"MODEL={HUB_ID}" in script
    assert f"--port {stack.cloud_node_port}" in script
    rule = stack.gce.firewalls[rule_name]
    assert rule["allowed"] == [{"IPProtocol": "tcp", "ports": [str(stack.cloud_node_port)]}]
    assert rule["targetTags"] == [rule_name] and rule["sourceRanges"] == ["0.0.0.0/0"]

    node.key = api_key_in(script)
    node.healthy = True
    try:
        ready = wait_state(client, user, created["id"], {"ready", "failed"}, timeout=30)
        assert ready["state"] == "ready", ready
        answer = client.post(
            "/v1/chat/completions",
            json={"model": created["name"], "messages": [{"role": "user", "content": "2+2?"}]},
            headers=user.headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "4"
        assert node.seen[-1]["auth"] == f"Bearer {node.key}"

        # A second deployment in the same project finds the rule made and reuses it.
        second = deploy(client, user, credential, target="gcp")
        other = gce_machine_of(stack, second["id"])
        assert other["tags"]["items"] == [rule_name]
        inserts = [
            body for verb, body in stack.gce.firewall_writes
            if verb == "insert" and body["name"] == rule_name
        ]  # fmt: skip
        assert len(inserts) == 1 and list(stack.gce.firewalls) == [rule_name]
    finally:
        node.healthy = False
        node.key = ""

    for deployment_id, name in ((created["id"], machine["name"]), (second["id"], other["name"])):
        stopped = client.post(f"/api/v1/deployments/{deployment_id}/stop", headers=user.headers)
        assert stopped.status_code == 200, stopped.text
        wait_deleted(stack, name)
        ended = wait_state(client, user, deployment_id, {"stopped"}, timeout=30)
        assert ended["stop_reason"] == "user"


def test_the_serving_reaper_deletes_a_gce_machine_no_deployment_owns(
    stack: Stack, client: httpx.Client, user: SignedInUser
) -> None:
    add_gcp_account(stack, client, user)
    stray = f"fl-stray-{secrets.token_hex(4)}"
    theirs = f"fl-theirs-{secrets.token_hex(4)}"
    labels = {"forgeline-job-id": secrets.token_hex(16), "forgeline-role": "serving"}
    # Another user's node in the same project is not this account's to judge.
    stack.gce.add_instance(theirs, labels={**labels, "forgeline-owner-id": "f" * 32})
    stack.gce.add_instance(stray, labels={**labels, "forgeline-owner-id": user.id})
    try:
        wait_deleted(stack, stray)
        assert theirs in stack.gce.instances
    finally:
        stack.gce.instances.pop(theirs, None)


@pytest.mark.both_databases
def test_a_credential_a_live_deployment_runs_on_cannot_be_deleted(
    stack: Stack, client: httpx.Client, user: SignedInUser, node: FakeNode
) -> None:
    node.healthy = False
    credential = add_gcp_account(stack, client, user)
    created = deploy(client, user, credential, target="gcp")
    machine = gce_machine_of(stack, created["id"])
    refused = client.delete(f"/api/v1/credentials/{credential}", headers=user.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "credential_in_use"
    assert created["name"] in refused.json()["error"]["message"]

    stopped = client.post(f"/api/v1/deployments/{created['id']}/stop", headers=user.headers)
    assert stopped.status_code == 200, stopped.text
    wait_state(client, user, created["id"], {"stopped"}, timeout=30)
    wait_deleted(stack, machine["name"])
    deleted = client.delete(f"/api/v1/credentials/{credential}", headers=user.headers)
    assert deleted.status_code == 204, deleted.text
