"""Prompt templates: what the deployment's server receives for each, and every bad input
refused with its code before anything is generated."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.errors import InvalidInput
from services.gateway.chat_extras import FORGELINE_FIELDS, take_extras
from services.gateway.prompt_templates import TEMPLATES, list_templates

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "tutor", "messages": [{"role": "user", "content": "Ann is 31."}], **extra}


def test_summarise_puts_a_faithful_summary_prompt_first() -> None:
    body = _body(template="summarise", template_options={"length": "short"})
    extras = take_extras(body, "chat/completions")
    assert extras.template == "summarise"
    system, user = body["messages"]
    assert system["role"] == "system" and "faithful" in system["content"]
    assert "one or two sentences" in system["content"]
    assert user == {"role": "user", "content": "Ann is 31."}
    assert not set(FORGELINE_FIELDS) & set(body)  # nothing of ours reaches vLLM


def test_extract_asks_vllm_for_the_schema_by_guided_decoding() -> None:
    body = _body(template="extract", template_options={"schema": SCHEMA, "name": "person"})
    take_extras(body, "chat/completions")
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": SCHEMA, "strict": True},
    }
    assert '"age"' in body["messages"][0]["content"]


def test_qa_answers_from_the_given_text_and_keeps_the_callers_system_prompt() -> None:
    body = {
        "model": "tutor",
        "messages": [
            {"role": "system", "content": "Be polite."},
            {"role": "user", "content": "How old is Ann?"},
        ],
        "template": "qa",
        "template_options": {"text": "Ann is 31."},
    }
    take_extras(body, "chat/completions")
    assert len(body["messages"]) == 2  # one system message: many chat templates want that
    system = body["messages"][0]["content"]
    assert "concisely" in system and "Ann is 31." in system and system.endswith("Be polite.")


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"template": "poem"}, "unknown_template"),
        ({"template": "extract"}, "schema_required"),
        ({"template": "extract", "template_options": {"schema": {"type": 7}}}, "invalid_schema"),
        ({"template": "extract", "template_options": {"schema": "{}"}}, "invalid_schema"),
        (
            {"template": "extract", "template_options": {"schema": {"type": "string"}}},
            "invalid_schema",
        ),
        (
            {
                "template": "extract",
                "template_options": {"schema": SCHEMA},
                "response_format": {"type": "json_object"},
            },
            "response_format_conflict",
        ),
        ({"template": "summarise", "template_options": {"tone": "x"}}, "unknown_template_option"),
        (
            {"template": "summarise", "template_options": {"length": "huge"}},
            "invalid_template_option",
        ),
        ({"template": "summarise", "template_options": []}, "invalid_template_options"),
        ({"template_options": {"length": "short"}}, "template_required"),
        ({"answer_from_doc": True}, "knowledge_base_required"),
        ({"answer_from_doc": True, "knowledge_base": [1]}, "invalid_knowledge_base"),
        (
            {"answer_from_doc": True, "knowledge_base": "kb", "template": "qa"},
            "template_not_supported",
        ),
        ({"chat_id": 12}, "invalid_chat_id"),
    ],
)
def test_bad_template_and_field_input_is_refused(extra: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        take_extras(_body(**extra), "chat/completions")
    assert caught.value.code == code
    assert caught.value.message


def test_completions_refuse_chat_only_fields_and_ignore_empty_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        take_extras({"model": "m", "prompt": "x", "template": "qa"}, "completions")
    assert caught.value.code == "chat_completions_only"
    body = {"model": "m", "prompt": "x", "answer_from_doc": False}
    assert take_extras(body, "completions").chat_id == ""
    assert body == {"model": "m", "prompt": "x"}


def test_answer_from_doc_reads_one_or_several_knowledge_bases() -> None:
    one = take_extras(_body(answer_from_doc=True, knowledge_base="kb1"), "chat/completions")
    assert one.knowledge_bases == ("kb1",)
    body = _body(answer_from_doc=True, knowledge_base=["a", "b", "a"], chat_id="c1")
    several = take_extras(body, "chat/completions")
    assert several.knowledge_bases == ("a", "b") and several.chat_id == "c1"
    with pytest.raises(InvalidInput) as caught:
        take_extras(
            {"model": "m", "messages": [], "answer_from_doc": True, "knowledge_base": "kb"},
            "chat/completions",
        )
    assert caught.value.code == "question_required"


def test_the_registry_lists_every_template_with_its_options() -> None:
    listed = {t["name"]: t for t in list_templates()}
    assert set(listed) == set(TEMPLATES) == {"summarise", "extract", "qa"}
    schema = next(o for o in listed["extract"]["options"] if o["name"] == "schema")
    assert schema["required"] and schema["type"] == "object"
    assert all(t["title"] and t["description"] for t in listed.values())
