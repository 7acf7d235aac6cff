"""MinIO's Redis target (format=access) → RedisListConsumer → apply, against a real Valkey.

No MinIO binary is available here, so the test plays MinIO's part: it RPUSHes items shaped as
its Redis target writes them (`[{"Event": [<S3 record>], "EventTime": ...}]`), built from the
documented record in tests/unit/indexer/fixtures.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from services.indexer.events import BucketEvent
from services.indexer.redis_events import RedisListConsumer
from tests.servers import free_port, wait_until
from tests.servers.valkey import run_valkey

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "unit/indexer/fixtures/minio_doc_redis_access_put.json"


@pytest.fixture(scope="module")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_valkey(tmp_path_factory.mktemp("valkey")) as url:
        yield url


@pytest.fixture
def r(valkey_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(valkey_url)
    yield client
    client.close()


@pytest.fixture
def key() -> str:
    return f"minio-events-{uuid.uuid4().hex[:8]}"


class Recorder:
    """The `apply` under test: records every batch; the first `fail` calls raise."""

    def __init__(self, fail: int = 0, on_call: Callable[[], None] = lambda: None) -> None:
        self.fail = fail
        self.on_call = on_call
        self.calls = 0
        self.batches: list[list[BucketEvent]] = []
        self.lock = threading.Lock()

    def __call__(self, events: list[BucketEvent]) -> int:
        with self.lock:
            self.calls += 1
            self.on_call()
            if self.fail:
                self.fail -= 1
                raise RuntimeError("database unavailable")
            self.batches.append(events)
        return len(events)

    @property
    def events(self) -> list[BucketEvent]:
        with self.lock:
            return [event for batch in self.batches for event in batch]


@pytest.fixture
def start(valkey_url: str) -> Iterator[Callable[..., RedisListConsumer]]:
    consumers: list[RedisListConsumer] = []

    def _start(key: str, apply: Recorder, url: str = valkey_url) -> RedisListConsumer:
        consumer = RedisListConsumer(url, key, apply, retry_seconds=0.1)
        consumer.start()
        consumers.append(consumer)
        return consumer

    yield _start
    for consumer in consumers:
        consumer.stopping.set()
    for consumer in consumers:
        consumer.join(5)
        assert not consumer.is_alive()


def access_item(event_name: str, encoded_key: str, etag: str | None = None) -> bytes:
    """One item as MinIO's Redis target RPUSHes it, for the given record fields."""
    item: list[dict[str, Any]] = json.loads(FIXTURE.read_bytes())
    record = copy.deepcopy(item[0]["Event"][0])
    record["eventName"] = event_name
    record["s3"]["object"]["key"] = encoded_key
    if etag is None:
        record["s3"]["object"].pop("eTag", None)
    else:
        record["s3"]["object"]["eTag"] = etag
    item[0]["Event"] = [record]
    return json.dumps(item).encode()


def summary(events: list[BucketEvent]) -> list[tuple[str, str, str, str | None]]:
    return [(e.kind, e.bucket, e.key, e.etag) for e in events]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 5) -> None:
    wait_until(check, timeout=timeout, what=what, interval=0.05)


def drained(r: redis.Redis, key: str) -> bool:
    return r.llen(key) == 0 and r.llen(f"{key}:processing") == 0


def test_items_reach_apply_in_order(r: redis.Redis, key: str, start: Callable[..., Any]) -> None:
    apply = Recorder()
    start(key, apply)
    r.rpush(
        key,
        FIXTURE.read_bytes(),  # the documented item itself, byte for byte
        access_item("s3:ObjectCreated:CompleteMultipartUpload", "notes%2Fa+b.md", "abc-2"),
        access_item("s3:ObjectRemoved:Delete", "notes%2Fa+b.md"),
    )
    wait_for(lambda: len(apply.events) == 3, "three events applied")
    assert summary(apply.events) == [
        ("put", "kbase", "docs/My Report é+ü.txt", "8ab3b19e134f01fbaf94b8e15f3df090"),
        ("put", "kbase", "notes/a b.md", "abc-2"),
        ("delete", "kbase", "notes/a b.md", None),
    ]
    assert {e.source for e in apply.events} == {"minio"}
    wait_for(lambda: drained(r, key), "both lists empty")


def test_a_failed_apply_keeps_the_item_and_retries_it(
    r: redis.Redis, key: str, start: Callable[..., Any]
) -> None:
    first = access_item("s3:ObjectCreated:Put", "kb%2Fone.txt", "e1")
    second = access_item("s3:ObjectCreated:Put", "kb%2Ftwo.txt", "e2")
    seen_in_processing: list[list[bytes]] = []
    apply = Recorder(
        fail=1, on_call=lambda: seen_in_processing.append(r.lrange(f"{key}:processing", 0, -1))
    )
    r.rpush(key, first, second)
    start(key, apply)
    wait_for(lambda: len(apply.events) == 2, "both events applied")
    # While apply was failing, the item waited in the processing list, not in memory only.
    assert seen_in_processing[0] == [first]
    assert apply.calls == 3
    # The failed item is retried before the newer one is taken: order holds.
    assert [e.key for e in apply.events] == ["kb/one.txt", "kb/two.txt"]
    wait_for(lambda: drained(r, key), "both lists empty")


def test_leftovers_of_a_crashed_consumer_come_first(
    r: redis.Redis, key: str, start: Callable[..., Any]
) -> None:
    r.rpush(f"{key}:processing", access_item("s3:ObjectCreated:Put", "kb%2Fstranded.txt", "s1"))
    r.rpush(key, access_item("s3:ObjectRemoved:Delete", "kb%2Fnew.txt"))
    apply = Recorder()
    start(key, apply)
    wait_for(lambda: len(apply.events) == 2, "both events applied")
    assert summary(apply.events) == [
        ("put", "kbase", "kb/stranded.txt", "s1"),
        ("delete", "kbase", "kb/new.txt", None),
    ]
    wait_for(lambda: drained(r, key), "both lists empty")


def test_unreadable_items_are_dropped(r: redis.Redis, key: str, start: Callable[..., Any]) -> None:
    wrong_type = json.loads(access_item("s3:ObjectCreated:Put", "kb%2Fx.txt"))
    wrong_type[0]["Event"][0]["s3"]["object"]["eTag"] = 42  # pydantic's error, not ours
    r.rpush(
        key,
        b"not json",
        b"\xff\xfe not utf-8",
        b'{"neither": "records nor event"}',
        json.dumps(wrong_type),
        access_item("s3:ObjectCreated:Put", "kb%2Fgood.txt", "g1"),
    )
    apply = Recorder()
    with capture_logs() as logs:
        start(key, apply)
        wait_for(lambda: len(apply.events) == 1 and drained(r, key), "the good item applied")
    assert summary(apply.events) == [("put", "kbase", "kb/good.txt", "g1")]
    assert apply.calls == 1
    dropped = [log for log in logs if log["event"] == "unreadable redis bucket event dropped"]
    assert len(dropped) == 4
    assert all(log["log_level"] == "warning" for log in dropped)


def test_stops_promptly(r: redis.Redis, key: str, start: Callable[..., Any]) -> None:
    apply = Recorder()
    consumer = start(key, apply)
    time.sleep(0.3)  # let it block in BLMOVE
    assert consumer.is_alive()
    began = time.monotonic()
    consumer.stopping.set()
    consumer.join(5)
    assert not consumer.is_alive()
    assert time.monotonic() - began < 3


def test_survives_an_unreachable_redis_and_still_stops(key: str, start: Callable[..., Any]) -> None:
    with capture_logs() as logs:
        consumer = start(key, Recorder(), url=f"redis://127.0.0.1:{free_port()}/0")
        wait_for(
            lambda: any(log["event"].startswith("redis event list unreachable") for log in logs),
            "a warning about the connection",
        )
    assert consumer.is_alive()
    began = time.monotonic()
    consumer.stopping.set()
    consumer.join(5)
    assert not consumer.is_alive()
    assert time.monotonic() - began < 3
