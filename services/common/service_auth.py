"""Services answer only each other: a per-installation service token on every gRPC call.

The internal APIs take owner ids on trust (`CreateApiKey(user_id=...)`, listings by owner,
decrypted node keys): that trust is right only if the caller is the gateway, which took the
owner id from the principal it validated, or another service. So every call carries
`authorization: Bearer <token>`, and every server refuses a call without it (the standard
health service excepted: the supervisor and load balancers probe it). The token is
`FORGELINE_SERVICE_TOKEN`; `make run` generates one per data folder, as it does the secret
key. It is a shared secret, not mutual TLS: it stops anyone who can reach a port but not
read the installation's settings, which is the threat on one machine and inside a VPC.
"""

from __future__ import annotations

import collections
import hmac
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from grpc.aio import ClientCallDetails, UnaryStreamClientInterceptor, UnaryUnaryClientInterceptor
from pydantic import SecretStr

HEALTH_PREFIX = "/grpc.health.v1.Health/"
_HEADER = "authorization"


def bearer(token: SecretStr | str) -> str:
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    if not value:
        raise RuntimeError(
            "FORGELINE_SERVICE_TOKEN is not set: the services authenticate each other with "
            "it (`make run` generates one in the data folder)."
        )
    return f"Bearer {value}"


# --- clients -------------------------------------------------------------------------------


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class ServiceToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds the token to every call of a blocking channel."""

    def __init__(self, token: SecretStr | str) -> None:
        self._header = (_HEADER, bearer(token))

    def _details(self, details: Any) -> _Details:
        metadata = [*(details.metadata or ()), self._header]
        return _Details(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)


def _with_token(details: ClientCallDetails, header: tuple[str, str]) -> ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), header)
    return details._replace(metadata=metadata)


class _AsyncUnaryUnaryToken(UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_token(details, self._header), request)


class _AsyncUnaryStreamToken(UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_token(details, self._header), request)


class AsyncServiceToken:
    """The same for a grpc.aio channel, which takes one interceptor per kind of call."""

    @staticmethod
    def both(token: SecretStr | str) -> list[Any]:
        header = (_HEADER, bearer(token))
        return [_AsyncUnaryUnaryToken(header), _AsyncUnaryStreamToken(header)]


# --- servers -------------------------------------------------------------------------------


def _deny(request: Any, context: grpc.ServicerContext) -> None:
    context.set_trailing_metadata((("forgeline-error-code", "service_unauthenticated"),))
    context.abort(
        grpc.StatusCode.UNAUTHENTICATED,
        "This service answers only the platform's own services (the service token).",
    )


def _deny_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
    _deny(request, context)
    yield from ()


class ServiceTokenCheck(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call without the installation's token, before the servicer runs."""

    def __init__(self, token: SecretStr | str) -> None:
        self._expected = bearer(token).encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if details.method.startswith(HEALTH_PREFIX):
            return continuation(details)
        given = next((v for k, v in (details.invocation_metadata or ()) if k == _HEADER), "")
        given_bytes = given.encode() if isinstance(given, str) else bytes(given)
        if hmac.compare_digest(given_bytes, self._expected):
            return continuation(details)
        handler = continuation(details)
        if handler is None:
            return None
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _deny_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            _deny,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
