"""One error type for the whole platform, with a stable machine-readable `code`.

A `ForgelineError` raised in a gRPC servicer travels to the gateway as a gRPC status plus
trailing metadata, and comes out of the gateway as `{"error": {"code", "message"}}` with
the matching HTTP status. Messages are sentences for a person; codes are for programs.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

import grpc

CODE_METADATA_KEY = "forgeline-error-code"
RETRY_AFTER_METADATA_KEY = "forgeline-retry-after"


class ForgelineError(Exception):
    http_status: ClassVar[HTTPStatus] = HTTPStatus.BAD_REQUEST
    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, code: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def to_body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInput(ForgelineError):
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(ForgelineError):
    http_status = HTTPStatus.UNAUTHORIZED
    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ForgelineError):
    http_status = HTTPStatus.FORBIDDEN
    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class NotFound(ForgelineError):
    http_status = HTTPStatus.NOT_FOUND
    grpc_status = grpc.StatusCode.NOT_FOUND


class Conflict(ForgelineError):
    http_status = HTTPStatus.CONFLICT
    grpc_status = grpc.StatusCode.ALREADY_EXISTS


class RateLimited(ForgelineError):
    http_status = HTTPStatus.TOO_MANY_REQUESTS
    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED


class PayloadTooLarge(ForgelineError):
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    grpc_status = grpc.StatusCode.OUT_OF_RANGE


class Unavailable(ForgelineError):
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    grpc_status = grpc.StatusCode.UNAVAILABLE


_BY_GRPC_STATUS: dict[grpc.StatusCode, type[ForgelineError]] = {
    cls.grpc_status: cls
    for cls in (
        InvalidInput,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        Conflict,
        RateLimited,
        PayloadTooLarge,
        Unavailable,
    )
}


def grpc_trailers(error: ForgelineError) -> tuple[tuple[str, str], ...]:
    trailers = [(CODE_METADATA_KEY, error.code)]
    if error.retry_after is not None:
        trailers.append((RETRY_AFTER_METADATA_KEY, str(error.retry_after)))
    return tuple(trailers)


def from_grpc(
    status: grpc.StatusCode | None,
    details: str | None,
    trailers: tuple[tuple[str, str | bytes], ...] | None,
    *,
    service: str,
) -> ForgelineError:
    """Turn a failed gRPC call back into the error the servicer raised."""
    meta = {key: value for key, value in (trailers or ()) if isinstance(value, str)}
    code = meta.get(CODE_METADATA_KEY)
    if code is None or status is None:
        # Not one of ours: the service is down, timed out, or crashed. Say so plainly.
        return Unavailable(
            f"{service}_unavailable",
            f"The {service} service is not reachable right now. Please try again shortly.",
        )
    retry_after = meta.get(RETRY_AFTER_METADATA_KEY)
    cls = _BY_GRPC_STATUS.get(status, ForgelineError)
    return cls(code, details or code, retry_after=int(retry_after) if retry_after else None)
