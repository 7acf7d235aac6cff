"""Event sources: the webhook endpoints (SeaweedFS, MinIO, any S3-format sender) and the SQS
queue that AWS S3 notifications arrive on."""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Callable
from typing import Any

import boto3
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from services.common.logging import get_logger
from services.indexer.events import (
    BucketEvent,
    EventParseError,
    parse_minio_event,
    parse_s3_event,
    parse_seaweedfs_event,
)

log = get_logger(__name__)
Apply = Callable[[list[BucketEvent]], int]

PARSERS: dict[str, Callable[[bytes], list[BucketEvent]]] = {
    "seaweedfs": parse_seaweedfs_event,
    "minio": parse_minio_event,
    "s3": parse_s3_event,
}


def webhook_app(apply: Apply, *, token: str) -> FastAPI:
    app = FastAPI(title="Forgeline indexer webhooks", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.head("/events/{source}")
    async def probe(source: str) -> JSONResponse:
        # MinIO checks that a webhook target answers before it posts to it.
        return JSONResponse({}, 200 if source in PARSERS else 404)

    @app.post("/events/{source}")
    async def receive(
        source: str, request: Request, authorization: str | None = Header(None)
    ) -> JSONResponse:
        if token:
            allowed = hmac.compare_digest(authorization or "", f"Bearer {token}")
        else:  # no shared secret configured: only senders on this machine
            host = request.client.host if request.client else ""
            allowed = bool(host) and ipaddress.ip_address(host).is_loopback
        if not allowed:
            return JSONResponse({"error": {"code": "forbidden", "message": "Not allowed."}}, 403)
        parser = PARSERS.get(source)
        if parser is None:
            return JSONResponse({"error": {"code": "unknown_source", "message": source}}, 404)
        try:
            events = parser(await request.body())
        except EventParseError as error:
            # Acknowledge: a sender retrying a body we can never read would only clog it.
            log.warning("unreadable bucket event", source=source, error=str(error))
            return JSONResponse({"accepted": 0, "ignored": "unreadable"}, 202)
        return JSONResponse({"accepted": apply(events)}, 202)

    return app


class SqsPoller(threading.Thread):
    """Long-polls the queue; a message is deleted only once its events are recorded."""

    def __init__(
        self, queue_url: str, apply: Apply, *, endpoint_url: str | None, region: str
    ) -> None:
        super().__init__(name="sqs-poller", daemon=True)
        self.queue_url = queue_url
        self.apply = apply
        self.sqs: Any = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                reply = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5
                )
            except Exception as error:
                log.warning("sqs receive failed; retrying", error=str(error))
                self.stopping.wait(2)
                continue
            for message in reply.get("Messages", []):
                try:
                    self.apply(parse_s3_event(message["Body"]))
                except EventParseError as error:
                    log.warning("unreadable sqs message dropped", error=str(error))
                except Exception:
                    log.exception("could not record events; the message will come back")
                    continue
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
