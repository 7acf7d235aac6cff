"""The JSON nesting ceiling: depth counted without parsing, brackets inside strings ignored."""

from __future__ import annotations

import json

from services.gateway.middleware import json_depth


def test_depth_of_ordinary_bodies() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}
    assert json_depth(json.dumps(chat).encode()) == 5
    assert json_depth(b"{}") == 1
    assert json_depth(b'"just a string"') == 0


def test_brackets_in_strings_do_not_count() -> None:
    tricky = json.dumps({"content": "[[[[{{{{ \\" + '" ]]]] [[[[' * 50}).encode()
    assert json_depth(tricky) == 1


def test_a_hostile_nest_is_measured_quickly() -> None:
    assert json_depth(b"[" * 200_000 + b"]" * 200_000) == 200_000
