"""A knowledge base attached to the user's own bucket (a moto server playing their S3, with
its own endpoint and credentials): whatever they put, overwrite or delete there is followed,
by polling when the bucket sends no events and at once when it does; what cannot be attached
is refused up front with a code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from tests.factories import SignedInUser, make_user
from tests.integration.conftest import Stack
from tests.integration.kb_helpers import chunk_count, documents, retrieve, wait_for_documents
from tests.servers.moto import run_moto

BUCKET = "acme-manuals"
USER_KEYS = {"aws_access_key_id": "AKIAUSEROWNKEY", "aws_secret_access_key": "user-own-secret"}

PUMP = "Pump P-7 manual.\n\nThe P-7 pump must be primed with 2 litres of glycol before start."
PUMP_V2 = "Pump P-7 manual, rev B.\n\nPrime the P-7 pump with 3 litres of ethanol, never glycol."
VALVE = "Valve V-2 manual.\n\nThe V-2 valve is serviced every 400 hours with silicone grease."


@pytest.fixture(scope="module")
def user_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with run_moto(tmp_path_factory.mktemp("user-s3")) as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **USER_KEYS)
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint, s3


def attach(
    client: httpx.Client, user: SignedInUser, endpoint: str, *, prefix: str, name: str
) -> httpx.Response:
    return client.post(
        "/api/v1/kbs",
        json={
            "name": name,
            "external_bucket": {
                "bucket": BUCKET,
                "prefix": prefix,
                "endpoint_url": endpoint,
                "access_key_id": USER_KEYS["aws_access_key_id"],
                "secret_access_key": USER_KEYS["aws_secret_access_key"],
            },
        },
        headers=user.headers,
    )


def _states(docs: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: doc["state"] for name, doc in docs.items()}


def test_attached_bucket_follows_puts_overwrites_and_deletes_without_events(
    stack: Stack, client: httpx.Client, user_s3: tuple[str, Any]
) -> None:
    endpoint, s3 = user_s3
    prefix = f"plant-{stack.backend}/"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}pump.txt", Body=PUMP.encode())
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}folder/", Body=b"")  # a console "folder"
    s3.put_object(Bucket=BUCKET, Key=f"other-{stack.backend}/valve.txt", Body=VALVE.encode())
    user = make_user(client)
    response = attach(client, user, endpoint, prefix=prefix, name="plant manuals")
    assert response.status_code == 201, response.text
    kb = response.json()
    assert kb["external"] is True and kb["bucket"] == BUCKET and kb["prefix"] == prefix
    assert "secret" not in response.text

    # Only what is under the prefix; no event was ever sent, the polling found it.
    docs = wait_for_documents(
        client, user, kb["id"], lambda d: _states(d) == {"pump.txt": "indexed"}
    )
    assert docs["pump.txt"]["chunks"] >= 1
    hits = retrieve(client, user, kb["id"], "How much glycol primes the pump?", k=3)
    assert hits[0]["document"] == "pump.txt" and "glycol" in hits[0]["snippet"]

    s3.put_object(Bucket=BUCKET, Key=f"{prefix}pump.txt", Body=PUMP_V2.encode())
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}valve.txt", Body=VALVE.encode())
    etag_v2 = s3.head_object(Bucket=BUCKET, Key=f"{prefix}pump.txt")["ETag"].strip('"')
    wait_for_documents(
        client,
        user,
        kb["id"],
        lambda d: (
            _states(d) == {"pump.txt": "indexed", "valve.txt": "indexed"}
            and d["pump.txt"]["etag"] == etag_v2
        ),
    )
    texts = [h["snippet"] for h in retrieve(client, user, kb["id"], "priming the P-7 pump", k=5)]
    assert any("ethanol" in t for t in texts) and not any("glycol before" in t for t in texts)

    s3.delete_object(Bucket=BUCKET, Key=f"{prefix}pump.txt")
    wait_for_documents(client, user, kb["id"], lambda d: _states(d) == {"valve.txt": "indexed"})
    assert chunk_count(stack.platform, kb["id"], f"{prefix}pump.txt") == 0

    # Forgeline only reads the user's bucket: no uploads or deletes through it.
    upload = client.post(
        f"/api/v1/kbs/{kb['id']}/documents",
        files=[("files", ("new.txt", b"hello"))],
        headers=user.headers,
    )
    assert upload.status_code == 422
    assert upload.json()["error"]["code"] == "external_bucket_read_only"


def test_an_event_from_the_attached_bucket_is_routed_to_its_knowledge_base_at_once(
    stack: Stack, client: httpx.Client, user_s3: tuple[str, Any]
) -> None:
    """The user's bucket posts S3 event JSON to our webhook (as MinIO or an SNS forwarder
    would); the document is listed before any polling could have found it."""
    endpoint, s3 = user_s3
    prefix = f"events-{stack.backend}/"
    user = make_user(client)
    kb = attach(client, user, endpoint, prefix=prefix, name="evented").json()
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", **USER_KEYS)
    queue = sqs.create_queue(QueueName=f"acme-events-{stack.backend}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn["QueueArn"], "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    try:
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}valve.txt", Body=VALVE.encode())
        body = None
        for _ in range(10):
            messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", [])
            # moto form-encodes keys, "/" included: look for the file name only
            records = [m["Body"] for m in messages if "valve.txt" in m["Body"]]
            if records:
                body = records[0]
                break
        assert body is not None, "moto published no S3 event"
        webhook = f"http://127.0.0.1:{stack.platform.env['INDEXER_WEBHOOK_PORT']}/events/s3"
        # A sender without the installation's webhook token is refused, even from loopback.
        assert httpx.post(webhook, content=body, timeout=10).status_code == 403
        answer = httpx.post(
            webhook, content=body, headers=stack.platform.webhook_headers(), timeout=10
        )
        assert answer.status_code == 202 and answer.json()["accepted"] == 1
        listed = {d["name"]: d["state"] for d in documents(client, user, kb["id"])}
        assert listed.get("valve.txt") in {"pending", "indexed"}
        wait_for_documents(client, user, kb["id"], lambda d: _states(d) == {"valve.txt": "indexed"})
    finally:
        s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})


@pytest.mark.both_databases
def test_two_users_attaching_one_bucket_each_get_their_own_index(
    stack: Stack, client: httpx.Client, user_s3: tuple[str, Any]
) -> None:
    endpoint, s3 = user_s3
    prefix = f"shared-{stack.backend}/"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}pump.txt", Body=PUMP.encode())
    alice, bob = make_user(client), make_user(client)
    kb_a = attach(client, alice, endpoint, prefix=prefix, name="a").json()
    kb_b = attach(client, bob, endpoint, prefix=prefix, name="b").json()
    for user, kb in ((alice, kb_a), (bob, kb_b)):
        wait_for_documents(client, user, kb["id"], lambda d: _states(d) == {"pump.txt": "indexed"})
    key = f"{prefix}pump.txt"
    assert chunk_count(stack.platform, kb_a["id"], key) == chunk_count(
        stack.platform, kb_b["id"], key
    )
    client.delete(f"/api/v1/kbs/{kb_a['id']}", headers=alice.headers).raise_for_status()
    assert chunk_count(stack.platform, kb_a["id"], key) == 0
    assert chunk_count(stack.platform, kb_b["id"], key) >= 1  # Bob's index is untouched
    assert s3.head_object(Bucket=BUCKET, Key=key)  # and so is the user's object
    foreign = client.post(
        f"/api/v1/kbs/{kb_b['id']}/retrieve", json={"query": "pump"}, headers=alice.headers
    )
    assert foreign.status_code == 404


@pytest.mark.both_databases
def test_what_cannot_be_attached_is_refused_with_a_code(
    stack: Stack, client: httpx.Client, user_s3: tuple[str, Any]
) -> None:
    endpoint, _ = user_s3
    user = make_user(client)

    def code(**bucket: str) -> str:
        fields = {
            "bucket": BUCKET,
            "endpoint_url": endpoint,
            "access_key_id": "AKIAUSEROWNKEY",
            "secret_access_key": "user-own-secret",
            **bucket,
        }
        response = client.post(
            "/api/v1/kbs",
            json={"name": "refused", "external_bucket": fields},
            headers=user.headers,
        )
        assert response.status_code == 422, response.text
        return str(response.json()["error"]["code"])

    own_store = f"http://127.0.0.1:{stack.platform.env['EMBEDDED_S3_PORT']}"
    assert code(endpoint_url=own_store, bucket="forgeline") == "endpoint_not_allowed"
    assert code(endpoint_url=own_store.replace("127.0.0.1", "localhost")) == (
        "endpoint_not_allowed"
    )
    assert code(bucket="no-such-bucket-here") == "bucket_not_found"
    assert code(endpoint_url="http://127.0.0.1:9") == "bucket_unreachable"
    kbs = client.get("/api/v1/kbs", headers=user.headers).json()
    assert kbs["count"] == 0  # nothing half-created
