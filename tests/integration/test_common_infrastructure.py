"""The shared helpers against the real embedded servers: S3 store and Celery on Redis."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr

from services.common.errors import InvalidInput
from services.common.queue import make_celery
from services.common.settings import BaseServiceSettings
from services.common.storage import ensure_bucket, owner_key, s3_client
from tests.integration.conftest import Stack


def _settings(stack: Stack) -> BaseServiceSettings:
    env = stack.platform.env
    creds = json.loads((stack.platform.data_dir / "s3-credentials.json").read_text())
    return BaseServiceSettings(
        redis_url=stack.platform.redis_url(3),
        s3_endpoint_url=f"http://127.0.0.1:{env['EMBEDDED_S3_PORT']}",
        s3_access_key_id=creds["access_key_id"],
        s3_secret_access_key=SecretStr(creds["secret_access_key"]),
    )


def test_objects_live_under_their_owner(stack: Stack) -> None:
    settings = _settings(stack)
    client = s3_client(settings)
    ensure_bucket(client, "infra-test")
    ensure_bucket(client, "infra-test")  # idempotent
    key = owner_key("user123", "datasets", "train.jsonl")
    assert key == "user123/datasets/train.jsonl"
    client.put_object(Bucket="infra-test", Key=key, Body=b'{"a": 1}\n')
    listed = client.list_objects_v2(Bucket="infra-test", Prefix="user123/")["Contents"]
    assert [o["Key"] for o in listed] == [key]
    assert client.get_object(Bucket="infra-test", Key=key)["Body"].read() == b'{"a": 1}\n'
    with pytest.raises(ClientError):
        s3_client(
            settings.model_copy(update={"s3_secret_access_key": SecretStr("wrong")})
        ).get_object(Bucket="infra-test", Key=key)


@pytest.mark.parametrize("part", ["..", "../other", "a/b", "", ".hidden", "x" * 300])
def test_owner_key_refuses_escapes(part: str) -> None:
    with pytest.raises(InvalidInput) as error:
        owner_key("user123", part)
    assert error.value.code == "invalid_object_name"


def test_celery_round_trip_on_the_embedded_redis(stack: Stack) -> None:
    app = make_celery("infra-test", _settings(stack))
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True

    @app.task(name=f"infra_test.add.{stack.backend}")
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        assert add.delay(2, 3).get(timeout=20) == 5
