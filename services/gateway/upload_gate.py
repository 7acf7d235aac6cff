"""Upload routes: who is calling, and how much they send, is settled before the body is read.

FastAPI reads (and spools to disk) a whole multipart body before any dependency runs, the
bearer-token check included, so without this anyone could fill the disk with uploads that
are refused only afterwards. This middleware sits in front of the upload routes and:

- validates the bearer token the way every route does (the gateway's token cache, then the
  auth service), answering 401 without reading a byte of the body;
- refuses a declared `Content-Length` over `max_request_bytes` with 413 at once, and stops
  reading an undeclared (chunked) body the moment it passes that size;
- leaves the validated principal in the token cache, where the route's own check finds it.

The per-file limit, the number of files and the user's quota are the route's
(services/gateway/uploads.py): they need the parsed request.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import ForgelineError, PayloadTooLarge, Unauthenticated
from services.gateway.errors import forgeline_error_response


class _TooLarge(BaseException):
    """Not an Exception: FastAPI turns any Exception raised while reading a body into 400."""


class UploadGate:
    def __init__(self, app: ASGIApp, *, paths: re.Pattern[str], max_request_bytes: int) -> None:
        self.app = app
        self.paths = paths
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not self.paths.fullmatch(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await self._authenticate(request)
            declared = request.headers.get("content-length")
            if declared is not None and (
                not declared.isdigit() or int(declared) > self.max_request_bytes
            ):
                raise self._too_large()
        except ForgelineError as error:
            await forgeline_error_response(request, error)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_request_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await forgeline_error_response(request, self._too_large())(scope, receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            "payload_too_large",
            f"One upload request is at most {self.max_request_bytes // (1024 * 1024)} MiB; "
            "send the files in several requests.",
        )

    async def _authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "not_authenticated", "Sign in, or send an API key as 'Authorization: Bearer <key>'."
            )
        token = token.strip()
        if len(token) > 4096:
            raise Unauthenticated("token_invalid", "The access token is not valid.")
        state = request.app.state
        principal = state.token_cache.get(token)
        if principal is None:
            principal = await state.auth.validate(token)
            state.token_cache.put(token, principal)
