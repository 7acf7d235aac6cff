"""Bucket notifications end to end, from real servers: moto server (S3 → SQS, the AWS path) and
`weed mini` (the embedded default's SeaweedFS, filer webhook), started here as the supervisor
starts them. A put, an overwrite and a delete must come out of the parsers as the BucketEvents
the indexer acts on, with the ETag that head_object reported for each version."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import grpc
import httpx
import pytest
from botocore.config import Config
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.indexer.events import BucketEvent, parse_s3_event, parse_seaweedfs_event
from services.supervisor.embedded import WEED_PORT_FLAGS, WEED_PORT_SPAN, weed_argv
from services.supervisor.seaweedfs_notifications import (
    notification_toml,
    with_config_dir,
    write_notification_config,
)
from services.supervisor.seaweedfs_security import write_security_config
from tests.servers import stop_process_group, wait_until
from tests.servers.moto import run_moto
from tests.servers.platform import free_port_block

pytestmark = pytest.mark.integration

KEY = "docs/My Report é+ü.txt"  # a space, a plus and non-ASCII: every encoding trap at once
ACCESS_KEY = "flevents"
SECRET_KEY = "flevents-secret"
WEBHOOK_TOKEN = "webhook-token-for-tests"
STOP_GRACE = 10.0


@contextmanager
def running(
    argv: list[str], *, cwd: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    log = (cwd / "server.log").open("wb")
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield process
    finally:
        stop_process_group(process, grace=STOP_GRACE)
        log.close()


def s3(endpoint: str, access_key: str, secret_key: str, service: str = "s3") -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def put_overwrite_delete(client: Any, bucket: str) -> tuple[str, str]:
    """The three operations under test; returns head_object's ETag after each put."""
    client.put_object(Bucket=bucket, Key=KEY, Body=b"first version")
    first = client.head_object(Bucket=bucket, Key=KEY)["ETag"].strip('"')
    client.put_object(Bucket=bucket, Key=KEY, Body=b"second, longer version")
    second = client.head_object(Bucket=bucket, Key=KEY)["ETag"].strip('"')
    assert first != second
    client.delete_object(Bucket=bucket, Key=KEY)
    return first, second


# --- moto server: S3 event notifications into SQS --------------------------------------------


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_moto(tmp_path_factory.mktemp("moto")) as url:
        yield url


def test_s3_events_from_moto_via_sqs(moto_url: str) -> None:
    client = s3(moto_url, "testing", "testing")
    sqs = s3(moto_url, "testing", "testing", "sqs")
    queue = sqs.create_queue(QueueName="bucket-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    client.create_bucket(Bucket="kb-events")
    client.put_bucket_notification_configuration(
        Bucket="kb-events",
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        },
    )
    first, second = put_overwrite_delete(client, "kb-events")

    bodies: list[str] = []

    def drained() -> bool:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in got:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return len(bodies) >= 4  # the s3:TestEvent, then put, overwrite, delete

    wait_until(drained, timeout=10, what="S3 events in SQS")
    events = [event for body in bodies for event in parse_s3_event(body)]
    assert [(e.kind, e.bucket, e.key, e.etag) for e in events] == [
        ("put", "kb-events", KEY, first),
        ("put", "kb-events", KEY, second),
        ("delete", "kb-events", KEY, second),  # moto adds the ETag to deletes; AWS does not
    ]
    assert [e.size for e in events[:2]] == [13, 22]
    assert all(e.source == "s3" and e.event_time is not None for e in events)


# --- weed mini: the filer webhook ------------------------------------------------------------


@dataclass
class Webhook:
    url: str
    bodies: list[bytes] = field(default_factory=list)
    auth: set[str] = field(default_factory=set)

    def events(self) -> list[BucketEvent]:
        return [event for body in list(self.bodies) for event in parse_seaweedfs_event(body)]


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    received = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.bodies.append(self.rfile.read(length))
            received.auth.add(self.headers.get("Authorization", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}/seaweedfs-events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Seaweed:
    client: Any
    port: int  # S3; the other servers sit just above it (WEED_PORT_FLAGS)
    tls: Path  # the CA and the certificate the supervisor generates

    def port_of(self, flag: str) -> int:
        return self.port + 1 + WEED_PORT_FLAGS.index(flag)


@pytest.fixture(scope="module")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory, webhook: Webhook) -> Iterator[Seaweed]:
    data_dir = tmp_path_factory.mktemp("weed")
    config_dir = data_dir / "config"
    write_notification_config(
        config_dir,
        notification_toml(
            endpoint=webhook.url,
            bearer_token=WEBHOOK_TOKEN,
            backoff_seconds=1,
            max_backoff_seconds=2,
        ),
    )
    # With the supervisor's security config, so the events are seen as `make run` sends them.
    write_security_config(config_dir, data_dir / "secrets")
    port = free_port_block(WEED_PORT_SPAN)
    argv = with_config_dir(weed_argv(data_dir, port), config_dir)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    client = s3(f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET_KEY)
    with running(argv, cwd=data_dir, env=env) as process:
        wait_until(
            lambda: client.list_buckets() is not None,
            timeout=30,
            what="weed mini",
            alive=lambda: process.poll() is None,
        )
        yield Seaweed(client, port, data_dir / "secrets" / "tls")


@pytest.fixture(scope="module")
def seaweed(seaweed_server: Seaweed) -> Any:
    return seaweed_server.client


def test_only_s3_with_credentials_reaches_the_objects(seaweed_server: Seaweed) -> None:
    """Loopback is open to every process of the machine: an object the platform stored is
    readable through S3 with its credentials, and through no side door of `weed mini`."""
    client = seaweed_server.client
    client.create_bucket(Bucket="kb-private")
    client.put_object(Bucket="kb-private", Key="salaries.txt", Body=b"confidential")
    assert client.get_object(Bucket="kb-private", Key="salaries.txt")["Body"].read() == (
        b"confidential"
    )
    anonymous = f"http://127.0.0.1:{seaweed_server.port}/kb-private/salaries.txt"
    assert httpx.get(anonymous, timeout=5).status_code == 403
    filer = f"http://127.0.0.1:{seaweed_server.port_of('filer.port')}"
    assert httpx.get(f"{filer}/buckets/kb-private/salaries.txt", timeout=5).status_code == 401
    assert httpx.get(f"{filer}/buckets/kb-private/", timeout=5).status_code == 401
    assert (
        httpx.put(f"{filer}/buckets/kb-private/x.txt", content=b"x", timeout=5).status_code == 401
    )
    with pytest.raises(httpx.ConnectError):  # no WebDAV server at all
        httpx.get(f"http://127.0.0.1:{seaweed_server.port_of('webdav.port')}/", timeout=5)
    # gRPC (the filer's API reads and writes every entry): TLS with a client certificate of
    # the installation's CA, or nothing; a server certificate check alone is not enough.
    ca = (seaweed_server.tls / "ca.crt").read_bytes()
    for flag in ("filer.port.grpc", "master.port.grpc", "volume.port.grpc"):
        address = f"127.0.0.1:{seaweed_server.port_of(flag)}"
        for channel in (
            grpc.insecure_channel(address),
            grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca)),
        ):
            with channel, pytest.raises(grpc.RpcError) as refused:
                health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=3
                )
            assert refused.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ), flag


def test_seaweedfs_webhook_events_match_head_object(seaweed: Any, webhook: Webhook) -> None:
    seaweed.create_bucket(Bucket="kb-events")
    first, second = put_overwrite_delete(seaweed, "kb-events")

    def mine() -> list[BucketEvent]:
        return [e for e in webhook.events() if e.bucket == "kb-events" and e.key == KEY]

    def seen() -> list[tuple[str, str | None, int | None]]:
        return sorted((e.kind, e.etag, e.size) for e in mine())

    # Wait for the last operation's event, not for any delete: under load the filer may send
    # the overwrite as "delete the old entry" + "create the new one" (CI saw it), and that
    # first delete must not end the wait early.
    wait_until(lambda: ("delete", second, 22) in seen(), timeout=10, what="webhook")
    events = mine()
    expected = [
        ("put", first, 13),
        ("put", second, 22),
        ("delete", second, 22),  # the deleted entry's ETag
    ]
    # The filer's webhook does not promise order: compare without it. The indexer only
    # records and re-checks the key for each event, so a split overwrite is as good as one.
    assert seen() in (sorted(expected), sorted([*expected, ("delete", first, 13)]))
    assert all(e.source == "seaweedfs" and e.version_id is None for e in events)
    assert all(e.event_time is not None for e in events if e.kind == "put")
    assert webhook.auth == {f"Bearer {WEBHOOK_TOKEN}"}
    # Bucket and folder directories, /buckets/.system: all reached the webhook, none became
    # an event.
    keys = {e.key for e in webhook.events() if e.bucket != "kb-private"}  # the probe above
    assert keys == {KEY}


def test_seaweedfs_versioned_bucket(seaweed: Any, webhook: Webhook) -> None:
    bucket = "kb-versioned"
    seaweed.create_bucket(Bucket=bucket)
    seaweed.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    seaweed.put_object(Bucket=bucket, Key=KEY, Body=b"v1")
    head = seaweed.head_object(Bucket=bucket, Key=KEY)
    marker = seaweed.delete_object(Bucket=bucket, Key=KEY)
    assert marker["DeleteMarker"] is True

    def mine() -> list[BucketEvent]:
        return [e for e in webhook.events() if e.bucket == bucket]

    wait_until(lambda: len(mine()) >= 2, timeout=10, what="webhook (versioned)")
    assert sorted((e.kind, e.key, e.etag, e.version_id) for e in mine()) == [
        ("delete", KEY, None, marker["VersionId"]),
        ("put", KEY, head["ETag"].strip('"'), head["VersionId"]),
    ]
