"""What a generation amounted to, read off the answer on its way to the client: the text
produced and the tokens counted by the server, for usage accounting and chat history.

A streamed answer is read event by event as it is relayed: each complete server-sent event
is passed on at once, untouched, so the client sees no added buffering. The gateway asks the
server for running token counts (`stream_options.continuous_usage_stats`), so even a stream
the client abandons half-way is counted. The last, usage-only event (no choices) is dropped
unless the client asked for it itself: OpenAI clients only expect it then.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """One generation: what the model wrote and the tokens it cost, as the server counted."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    text: str = ""
    finish_reason: str = ""
    aborted: bool = False  # the client went away, or the server broke off, before the end
    # Answers from documents (answer_from_doc): the sources cited, as the client got them.
    citations: list[dict[str, Any]] = field(default_factory=list)


OutcomeHook = Callable[[Outcome], Awaitable[None]]


@dataclass(frozen=True)
class Generation:
    """Who asked which deployment for what: handed with its outcome to every listener."""

    owner_id: str
    credential_id: str  # the API key's id, or the session's for an access token
    deployment_id: str
    model: str  # the name the caller used
    endpoint: str  # "chat/completions" or "completions"
    body: dict[str, Any]  # the request as the caller sent it (Forgeline's own fields too)


# Usage accounting and chat history listen here; one failing never touches another, nor
# the answer, which the client already has.
OutcomeListener = Callable[[Generation, Outcome], Awaitable[None]]


def ask_for_usage(body: dict[str, Any]) -> bool:
    """Make a streamed request report token counts as it goes; returns whether the client
    itself asked for the final usage event (it is dropped otherwise)."""
    options = body.get("stream_options")
    options = dict(options) if isinstance(options, dict) else {}
    client_wants_usage = bool(options.get("include_usage"))
    options["include_usage"] = True
    options["continuous_usage_stats"] = True
    body["stream_options"] = options
    return client_wants_usage


def read_whole(content: bytes) -> Outcome:
    """The outcome of a non-streamed answer (chat or text completion)."""
    outcome = Outcome()
    try:
        answer = json.loads(content)
    except ValueError:
        return outcome
    if isinstance(answer, dict):
        _take_usage(outcome, answer.get("usage"))
        choice = _first_choice(answer)
        if choice is not None:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else choice.get("text")
            outcome.text = text if isinstance(text, str) else ""
            outcome.finish_reason = str(choice.get("finish_reason") or "")
    return outcome


class StreamTap:
    """Relays an SSE body event by event while adding up its token counts, and its text when
    `collect_text` (only chat history needs it).

    Without the text, an event is not parsed on the way: the counts are running totals, so
    the last event that carries them is parsed once at the end. The relay then costs a few
    byte searches per token, which matters when one gateway relays many streams."""

    def __init__(
        self, upstream: AsyncIterator[bytes], *, keep_usage_event: bool, collect_text: bool = True
    ) -> None:
        self.upstream = upstream
        self.keep_usage_event = keep_usage_event
        self.collect_text = collect_text
        self.outcome = Outcome(aborted=True)  # until the server says it is done
        self._parts: list[str] = []
        self._pending = b""
        self._last_counted = b""  # the last event with token counts, when not parsing each

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.upstream:
            self._pending += chunk
            events, separator, self._pending = self._pending.rpartition(b"\n\n")
            if not separator:
                continue
            passed = [event for event in events.split(b"\n\n") if self._read(event)]
            if passed:
                yield b"\n\n".join(passed) + b"\n\n"
        if self._pending.strip() and self._read(self._pending):
            yield self._pending

    def finish(self) -> Outcome:
        if self._last_counted:
            self._parse(self._last_counted)
        self.outcome.text = "".join(self._parts)
        return self.outcome

    def _read(self, event: bytes) -> bool:
        """Take what the event says; whether it goes on to the client."""
        if self.collect_text:
            return self._parse(event)
        if event.startswith(b"data: [DONE]"):
            self.outcome.aborted = False
            return True
        if b'"usage"' in event:
            self._last_counted = event
            no_choices = b'"choices":[]' in event or b'"choices": []' in event
            if no_choices and b'"error"' not in event:
                return self.keep_usage_event
        return True

    def _parse(self, event: bytes) -> bool:
        data = _data_of(event)
        if data is None:
            return True
        if data == "[DONE]":
            self.outcome.aborted = False
            return True
        try:
            payload = json.loads(data)
        except ValueError:
            return True
        if not isinstance(payload, dict):
            return True
        _take_usage(self.outcome, payload.get("usage"))
        choice = _first_choice(payload)
        if choice is None:
            # The final usage event, or an error the server streams: errors always pass.
            return self.keep_usage_event or "usage" not in payload or "error" in payload
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str):
            self._parts.append(text)
        if choice.get("finish_reason"):
            self.outcome.finish_reason = str(choice["finish_reason"])
        return True


def _data_of(event: bytes) -> str | None:
    lines = [
        line[5:].lstrip() for line in event.decode(errors="replace").splitlines()
        if line.startswith("data:")
    ]  # fmt: skip
    return "\n".join(lines) if lines else None


def _first_choice(payload: dict[str, Any]) -> dict[str, Any] | None:
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _take_usage(outcome: Outcome, usage: object) -> None:
    if isinstance(usage, dict):
        outcome.prompt_tokens = int(usage.get("prompt_tokens") or outcome.prompt_tokens)
        outcome.completion_tokens = int(usage.get("completion_tokens") or outcome.completion_tokens)
