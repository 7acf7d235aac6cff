"""Build and run a gRPC server the same way in every service.

Every server also serves the standard health service (grpcio-health-checking), traces
calls with OpenTelemetry, and turns a `ForgelineError` into a gRPC status whose trailing
metadata carries the stable error code.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.instrumentation.grpc import server_interceptor
from pydantic import SecretStr

from services.common.errors import ForgelineError, grpc_trailers
from services.common.logging import get_logger
from services.common.service_auth import ServiceTokenCheck

log = get_logger(__name__)


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Map domain errors to statuses; hide the details of unexpected ones."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method

        def fail(error: Exception, context: grpc.ServicerContext) -> None:
            if isinstance(error, ForgelineError):
                context.set_trailing_metadata(grpc_trailers(error))
                context.abort(error.grpc_status, error.message)
            log.exception("unhandled error in rpc", method=method)
            context.set_trailing_metadata((("forgeline-error-code", "internal_error"),))
            context.abort(grpc.StatusCode.INTERNAL, "Something went wrong on our side.")

        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def guarded(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return unary(request, context)
                except Exception as error:
                    fail(error, context)

            return grpc.unary_unary_rpc_method_handler(
                guarded,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            streaming = handler.unary_stream

            def guarded_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from streaming(request, context)
                except Exception as error:
                    fail(error, context)

            return grpc.unary_stream_rpc_method_handler(
                guarded_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def build_server(
    add_servicers: Iterable[Callable[[grpc.Server], None]],
    bind: str,
    *,
    service_token: SecretStr | str,
    max_workers: int = 16,
) -> tuple[grpc.Server, health.HealthServicer, int]:
    """Returns the server, its health servicer and the bound port (bind may use port 0).
    Only calls with the installation's service token reach the servicers."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=[
            ServiceTokenCheck(service_token),
            server_interceptor(),  # type: ignore[no-untyped-call]
            ErrorInterceptor(),
        ],
        options=[("grpc.so_reuseport", 0)],
    )
    for add in add_servicers:
        add(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(bind)
    if port == 0:
        raise RuntimeError(f"could not bind gRPC server to {bind}")
    return server, health_servicer, port


def serve_until_signalled(
    server: grpc.Server,
    health_servicer: health.HealthServicer,
    *,
    grace_seconds: float = 5.0,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then drain in-flight calls for up to `grace_seconds`."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    stopping.wait()
    health_servicer.enter_graceful_shutdown()
    server.stop(grace_seconds).wait()
    if on_stop is not None:
        on_stop()
