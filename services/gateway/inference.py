"""The OpenAI-compatible surface's plumbing: errors in OpenAI's shape, the short-lived cache
of `model` -> server, and the streamed pass-through to the server.

Streaming is a pass-through of raw bytes: each chunk vLLM sends is written to the client as
it arrives, and the next one is read only once the client has taken it (back-pressure). When
the client goes away, the upstream request is closed, and vLLM aborts the generation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import anyio
import httpx
from fastapi.responses import JSONResponse
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.gateway.stream_tap import OutcomeHook, StreamTap

OPENAI_PREFIX = "/v1"
# Streams must reach the client as written: no caching, no proxy buffering.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_TYPES = {
    HTTPStatus.UNAUTHORIZED: "authentication_error",
    HTTPStatus.FORBIDDEN: "permission_error",
    HTTPStatus.NOT_FOUND: "invalid_request_error",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limit_error",
}


def error_type(status: int) -> str:
    if status in _TYPES:
        return _TYPES[HTTPStatus(status)]
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """OpenAI's error envelope: what its clients parse into `APIStatusError`s."""
    return {"error": {"message": message, "type": error_type(status), "param": None, "code": code}}


def openai_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(openai_error_body(status, code, message), status, headers=headers)


def is_openai_path(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


@dataclass(frozen=True)
class Upstream:
    deployment_id: str
    url: str  # ends in /v1
    served_name: str
    # The server's own key (services/deployer/server_keys.py), sent as a bearer token.
    api_key: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


class UseRecorder:
    """Tells the deployer a deployment was used (its idle clock restarts), at most once per
    `interval` seconds per deployment: a chat makes one call a minute, not one per request."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}

    def due(self, deployment_id: str) -> bool:
        now = self.clock()
        last = self._last.get(deployment_id)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) > 10_000:  # forget old entries rather than grow without end
            self._last = {k: v for k, v in self._last.items() if now - v < self.interval}
        self._last[deployment_id] = now
        return True


class ModelCache:
    """Resolved (owner, model) -> server, for a few seconds: a chat turn makes one call to the
    deployer, not one per request. Only ready servers are cached, and a server that stops
    answering is forgotten at once."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, Upstream]] = {}

    def get(self, owner_id: str, model: str) -> Upstream | None:
        entry = self._entries.get((owner_id, model))
        if entry is None:
            return None
        if self.clock() >= entry[0]:
            del self._entries[(owner_id, model)]
            return None
        return entry[1]

    def put(self, owner_id: str, model: str, upstream: Upstream) -> None:
        if self.ttl > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[(owner_id, model)] = (self.clock() + self.ttl, upstream)

    def forget(self, owner_id: str, model: str) -> None:
        self._entries.pop((owner_id, model), None)

    async def resolve(
        self, owner_id: str, model: str, lookup: Callable[[], Awaitable[Upstream]]
    ) -> Upstream:
        found = self.get(owner_id, model)
        if found is None:
            found = await lookup()
            self.put(owner_id, model, found)
        return found


class RelayedStream(StreamingResponse):
    """A streamed answer relayed until either side ends: the client disconnecting cancels
    the relay. `finish` then always runs, even while being cancelled: it closes the source
    (which aborts the generation) and reports the outcome."""

    async def finish(self) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def relay() -> None:
                    with contextlib.suppress(OSError):  # the client went away mid-write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(relay)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            # Shielded: this runs while being cancelled, and must still close the source.
            with anyio.CancelScope(shield=True):
                await self.finish()


class UpstreamStream(RelayedStream):
    """Relay an upstream streamed response chunk by chunk; closing the upstream request
    makes vLLM abort the generation."""

    def __init__(
        self,
        upstream: httpx.Response,
        *,
        keep_usage_event: bool = True,
        collect_text: bool = True,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self.upstream = upstream
        self.tap = StreamTap(
            upstream.aiter_raw(), keep_usage_event=keep_usage_event, collect_text=collect_text
        )
        self.on_outcome = on_outcome
        super().__init__(
            aiter(self.tap),
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type", "text/event-stream"),
            headers=SSE_HEADERS,
        )

    async def finish(self) -> None:
        await self.upstream.aclose()
        if self.on_outcome is not None:
            await self.on_outcome(self.tap.finish())
