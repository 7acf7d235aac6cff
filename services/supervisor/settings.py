"""What `make run` needs to know: ports, and whether to start the embedded servers."""

from __future__ import annotations

from services.common.settings import BaseServiceSettings


class SupervisorSettings(BaseServiceSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    public_url: str | None = None  # default: http://<gateway_host>:<gateway_port>
    auth_grpc_port: int = 50051
    rag_grpc_port: int = 50052
    indexer_grpc_port: int = 50053
    indexer_webhook_port: int = 8091
    trainer_grpc_port: int = 50054
    deployer_grpc_port: int = 50055
    # Only used when REDIS_URL / S3_ENDPOINT_URL are not set. SeaweedFS also takes the
    # 12 ports just above the S3 port.
    embedded_redis_port: int = 6390
    # A ceiling on the embedded Valkey's memory. Past it, writes fail loudly (noeviction)
    # rather than silently dropping queued jobs or events.
    embedded_redis_maxmemory: str = "1gb"
    embedded_s3_port: int = 8333
    embedded_chroma_port: int = 8360
