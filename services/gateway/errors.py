"""Every error leaves the gateway as `{"error": {"code", "message"}}` with the right status."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.errors import ForgelineError
from services.common.logging import get_logger
from services.gateway.inference import is_openai_path, openai_error

log = get_logger(__name__)

_HTTP_CODES = {
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    # The OpenAI-compatible routes answer in OpenAI's error shape, which its clients parse.
    if request is not None and is_openai_path(request.url.path):
        return openai_error(status, code, message, headers)
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _describe(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
    return f"{where}: {first.get('msg', 'is not valid')}"


async def _forgeline_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ForgelineError)
    return forgeline_error_response(request, exc)


def forgeline_error_response(request: Request, exc: ForgelineError) -> JSONResponse:
    """The envelope for one of our errors (also for middleware, which runs outside the
    exception handlers)."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    if exc.http_status == HTTPStatus.UNAUTHORIZED:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return error_response(exc.http_status, exc.code, exc.message, headers, request)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", _describe(exc), request=request)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, message = _HTTP_CODES.get(
        exc.status_code,
        (HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_"), str(exc.detail)),
    )
    return error_response(exc.status_code, code, message, exc.headers, request)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", path=request.url.path)
    return error_response(
        500, "internal_error", "Something went wrong on our side.", request=request
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ForgelineError, _forgeline_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
