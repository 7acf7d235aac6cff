"""Settings of the indexer (on top of the shared ones)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import BaseServiceSettings


class IndexerSettings(BaseServiceSettings):
    indexer_grpc_bind: str = "127.0.0.1:50053"
    # Where bucket webhooks (SeaweedFS, MinIO) are received.
    indexer_webhook_host: str = "127.0.0.1"
    indexer_webhook_port: int = 8091
    # Shared secret MinIO/SeaweedFS webhooks must send as `Authorization: Bearer ...`;
    # empty: accept from loopback only.
    indexer_webhook_token: str = ""
    # AWS S3 event notifications arrive through this SQS queue when set.
    indexer_sqs_queue_url: str | None = None
    indexer_sqs_endpoint_url: str | None = None  # moto or a local SQS; unset: AWS
    max_document_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    # A document still `pending` after this long is queued again by the reconcile pass.
    stale_pending_seconds: int = 300
    reconcile_interval_seconds: int = 600
    # Attached buckets are listed this often: many users' buckets send us no events at all.
    attached_reconcile_interval_seconds: int = 60
    embed_batch_size: int = 32
    # Redis URL MinIO's Redis notification target (format=access) writes to; unset: off.
    indexer_minio_redis_url: str | None = None
    # The list key configured on that target (MinIO's `key`); its `KEY:processing` list is ours.
    indexer_minio_redis_key: str = "forgeline-bucket-events"
