"""The tap on streamed answers: bytes pass untouched and at once; text and token counts are
added up; the usage-only event reaches only clients that asked for it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from services.gateway.stream_tap import StreamTap, ask_for_usage, read_whole


def _event(payload: object) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _chunk(text: str, completion_tokens: int, finish: str | None = None) -> bytes:
    return _event(
        {
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 7, "completion_tokens": completion_tokens},
        }
    )


USAGE_ONLY = _event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
DONE = b"data: [DONE]\n\n"


async def _relay(
    chunks: list[bytes], keep_usage_event: bool, collect_text: bool = True
) -> tuple[list[bytes], StreamTap]:
    async def upstream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    tap = StreamTap(upstream(), keep_usage_event=keep_usage_event, collect_text=collect_text)
    return [piece async for piece in tap], tap


def test_events_pass_one_by_one_and_the_outcome_adds_up() -> None:
    chunks = [_chunk("Hel", 1), _chunk("lo", 2, "stop"), USAGE_ONLY, DONE]
    relayed, tap = asyncio.run(_relay(chunks, keep_usage_event=True))
    assert relayed == chunks
    outcome = tap.finish()
    assert (outcome.text, outcome.prompt_tokens, outcome.completion_tokens) == ("Hello", 7, 2)
    assert outcome.finish_reason == "stop" and not outcome.aborted


@pytest.mark.parametrize("collect_text", [True, False])
def test_the_usage_event_is_dropped_when_the_client_did_not_ask(collect_text: bool) -> None:
    chunks = [_chunk("Hi", 1, "stop"), USAGE_ONLY, DONE]
    relayed, _ = asyncio.run(_relay(chunks, keep_usage_event=False, collect_text=collect_text))
    assert relayed == [chunks[0], DONE]


def test_without_the_text_the_counts_come_from_the_last_counted_event() -> None:
    chunks = [_chunk("Hel", 1), _chunk("lo", 2, "stop"), USAGE_ONLY, DONE]
    relayed, tap = asyncio.run(_relay(chunks, keep_usage_event=True, collect_text=False))
    assert relayed == chunks
    outcome = tap.finish()
    assert (outcome.text, outcome.prompt_tokens, outcome.completion_tokens) == ("", 7, 2)
    assert not outcome.aborted
    _, cut = asyncio.run(_relay(chunks[:1], keep_usage_event=False, collect_text=False))
    assert cut.finish().aborted and cut.finish().completion_tokens == 1


def test_events_split_across_reads_are_joined_before_they_are_passed() -> None:
    whole = _chunk("Hi", 1) + DONE
    pieces = [whole[:10], whole[10:25], whole[25:]]
    relayed, tap = asyncio.run(_relay(pieces, keep_usage_event=False))
    assert b"".join(relayed) == whole
    assert all(piece.endswith(b"\n\n") for piece in relayed)
    assert tap.finish().text == "Hi"


def test_a_stream_cut_short_is_marked_aborted_with_the_tokens_so_far() -> None:
    _, tap = asyncio.run(_relay([_chunk("a", 1), _chunk("b", 2)], keep_usage_event=False))
    outcome = tap.finish()
    assert outcome.aborted and outcome.completion_tokens == 2 and outcome.text == "ab"


@pytest.mark.parametrize("collect_text", [True, False])
def test_streamed_errors_always_reach_the_client(collect_text: bool) -> None:
    error = _event({"error": {"message": "boom", "code": 500}, "usage": None, "choices": []})
    relayed, _ = asyncio.run(_relay([error], keep_usage_event=False, collect_text=collect_text))
    assert relayed == [error]


def test_the_request_asks_for_running_counts_and_remembers_what_the_client_wanted() -> None:
    body: dict[str, object] = {"stream": True}
    assert ask_for_usage(body) is False
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert ask_for_usage({"stream_options": {"include_usage": True}}) is True


def test_a_whole_answer_is_read_for_chat_and_for_text_completions() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 4}
    chat = {"choices": [{"message": {"content": "yes"}, "finish_reason": "stop"}], "usage": usage}
    text = {"choices": [{"text": "no", "finish_reason": "length"}], "usage": usage}
    assert read_whole(json.dumps(chat).encode()).text == "yes"
    outcome = read_whole(json.dumps(text).encode())
    assert (outcome.text, outcome.finish_reason, outcome.completion_tokens) == ("no", "length", 4)
    assert read_whole(b"not json").completion_tokens == 0
