"""The AWS path: S3 event notifications through SQS (moto server as AWS), with events lost
on purpose and healed by reconcile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest

from tests.factories import make_user
from tests.integration.kb_helpers import create_kb, documents, retrieve, wait_for_documents
from tests.servers.moto import run_moto
from tests.servers.platform import Platform, platform_env, run_platform

AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class AwsStack:
    platform: Platform
    s3: Any
    sqs: Any
    events_queue: str
    unread_queue: str

    def notify(self, queue_url: str) -> None:
        """Point the bucket's event notifications at a queue."""
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.s3.put_bucket_notification_configuration(
            Bucket="forgeline",
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arn["Attributes"]["QueueArn"],
                        "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    }
                ]
            },
        )


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsStack]:
    work = tmp_path_factory.mktemp("aws")
    with run_moto(work / "moto") as moto:
        kwargs = {"endpoint_url": moto, "region_name": "us-east-1", "aws_access_key_id": "test",
                  "aws_secret_access_key": "test"}  # fmt: skip
        s3 = boto3.client("s3", **kwargs)
        sqs = boto3.client("sqs", **kwargs)
        s3.create_bucket(Bucket="forgeline")
        events = sqs.create_queue(QueueName="forgeline-events")["QueueUrl"]
        unread = sqs.create_queue(QueueName="nobody-reads-this")["QueueUrl"]
        env = platform_env(
            work / "data",
            S3_ENDPOINT_URL=moto,
            S3_ACCESS_KEY_ID="test",
            S3_SECRET_ACCESS_KEY="test",
            INDEXER_SQS_QUEUE_URL=events,
            INDEXER_SQS_ENDPOINT_URL=moto,
            **AWS,
        )
        with run_platform(work / "data", env) as platform:
            yield AwsStack(platform, s3, sqs, events, unread)


def test_s3_events_through_sqs_keep_the_index_in_sync(aws: AwsStack) -> None:
    aws.notify(aws.events_queue)
    with httpx.Client(base_url=aws.platform.url, timeout=30) as client:
        user = make_user(client)
        kb = create_kb(client, user)
        key = kb["prefix"] + "handbook.txt"
        aws.s3.put_object(Bucket="forgeline", Key=key, Body=b"Holidays: 25 days a year.")
        first = wait_for_documents(
            client, user, kb["id"], lambda d: d.get("handbook.txt", {}).get("state") == "indexed"
        )["handbook.txt"]
        aws.s3.put_object(Bucket="forgeline", Key=key, Body=b"Holidays: 30 days a year.")
        wait_for_documents(
            client,
            user,
            kb["id"],
            lambda d: (
                d.get("handbook.txt", {}).get("state") == "indexed"
                and d["handbook.txt"]["etag"] != first["etag"]
            ),
        )
        assert "30 days" in retrieve(client, user, kb["id"], "how many holidays")[0]["snippet"]
        aws.s3.delete_object(Bucket="forgeline", Key=key)
        wait_for_documents(client, user, kb["id"], lambda d: "handbook.txt" not in d)


def test_lost_events_are_healed_by_reconcile(aws: AwsStack) -> None:
    aws.notify(aws.unread_queue)  # events go where nobody reads them: lost on purpose
    with httpx.Client(base_url=aws.platform.url, timeout=30) as client:
        user = make_user(client)
        kb = create_kb(client, user)
        aws.s3.put_object(
            Bucket="forgeline", Key=kb["prefix"] + "policy.txt", Body=b"Remote work: two days."
        )
        time.sleep(5)
        assert documents(client, user, kb["id"]) == []  # nothing heard of it
        report = client.post(f"/api/v1/kbs/{kb['id']}/reconcile", headers=user.headers)
        assert report.json()["queued_for_indexing"] == 1
        wait_for_documents(
            client, user, kb["id"], lambda d: d.get("policy.txt", {}).get("state") == "indexed"
        )
        assert retrieve(client, user, kb["id"], "remote work")[0]["document"] == "policy.txt"
    aws.notify(aws.events_queue)
