"""gRPC channels with the installation's service token, a default deadline and trace
propagation.

Every call carries `authorization: Bearer <service token>` (services/common/service_auth.py):
the services answer only each other. The OpenTelemetry interceptors write W3C `traceparent`
into call metadata, so the callee's spans join the caller's trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import ClientCallDetails, UnaryUnaryClientInterceptor
from opentelemetry.instrumentation.grpc import aio_client_interceptors, client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
from pydantic import SecretStr

from services.common.service_auth import AsyncServiceToken, ServiceToken


class DefaultDeadline(UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Give every call a deadline unless the caller set one: a stuck peer must not hang us."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    async def intercept_unary_unary(
        self,
        continuation: Callable[[ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: ClientCallDetails,
        request: Any,
    ) -> Any:
        if client_call_details.timeout is None:
            client_call_details = client_call_details._replace(timeout=self._seconds)
        return await continuation(client_call_details, request)


def aio_channel(
    address: str, *, deadline_seconds: float, token: SecretStr | str
) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        interceptors=[
            *AsyncServiceToken.both(token),
            DefaultDeadline(deadline_seconds),
            *aio_client_interceptors(),  # type: ignore[no-untyped-call]
        ],
        options=[("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)],
    )


def sync_channel(address: str, *, token: SecretStr | str) -> grpc.Channel:
    """A blocking channel, for workers (Celery) that are not async. Pass `timeout=` per call."""
    channel = grpc.insecure_channel(address, options=[("grpc.keepalive_time_ms", 30_000)])
    channel = grpc.intercept_channel(channel, ServiceToken(token))
    # OpenTelemetry's sync interceptor has its own channel wrapper, not grpc.intercept_channel.
    return intercept_channel(channel, client_interceptor())  # type: ignore[no-untyped-call]
