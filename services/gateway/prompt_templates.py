"""Named prompt templates for `/v1/chat/completions`: a caller adds `"template": <name>` (and
`"template_options": {...}`) to an ordinary chat request, and the gateway turns it into what the
deployment's server understands: a system prompt in front of the caller's messages and, for
extraction, OpenAI's `response_format` with a JSON schema, which vLLM enforces by guided
decoding (vLLM 0.32: `{"type": "json_schema", "json_schema": {"name", "description",
"schema", "strict"}}`).

Every template is one entry of `TEMPLATES`; `GET /api/v1/prompt-templates` lists them with
their options for the web client. Bad input is refused before anything is generated:
`unknown_template`, `invalid_template_options`, `unknown_template_option`,
`invalid_template_option`, `schema_required`, `invalid_schema`, `response_format_conflict`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from services.common.errors import InvalidInput

MAX_QA_TEXT_CHARS = 200_000
SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class TemplateOption:
    name: str
    type: str  # JSON type of the value: string | object
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    default: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "description": self.description,
            "choices": list(self.choices),
            "default": self.default,
        }


# A template's renderer: the checked options -> (system prompt, extra request fields).
Renderer = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    title: str
    description: str
    render: Renderer
    options: tuple[TemplateOption, ...] = field(default=())

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "options": [o.public() for o in self.options],
        }


# --- the templates ---------------------------------------------------------------------------

_LENGTHS = {
    "short": "in one or two sentences",
    "medium": "in one short paragraph",
    "long": "in a few paragraphs, covering every main point",
}


def _summarise(options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    length = _LENGTHS[options.get("length") or "medium"]
    return (
        "You summarise the text the user gives you, faithfully: keep its main points and "
        "its meaning, add nothing that is not in the text, and do not give your opinion. "
        f"Write the summary {length}.",
        {},
    )


def _extract(options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    schema = options.get("schema")
    if schema is None:
        raise InvalidInput(
            "schema_required",
            "The extract template needs the JSON schema of what to extract, in "
            "template_options.schema.",
        )
    check_schema(schema)
    name = options.get("name") or "extraction"
    if not SCHEMA_NAME.match(name):
        raise InvalidInput(
            "invalid_template_option",
            "template_options.name is 1 to 64 letters, digits, '_' or '-'.",
        )
    prompt = (
        "You extract information from the text the user gives you. Reply with a single JSON "
        "object that matches this JSON schema, filled only with facts stated in the text:\n"
        + json.dumps(schema, ensure_ascii=False)
    )
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": True},
    }
    return prompt, {"response_format": response_format}


def _qa(options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    prompt = (
        "You answer the user's question concisely, using only the given text. If the text "
        "does not contain the answer, say that it does not."
    )
    text = options.get("text")
    if text:
        if len(text) > MAX_QA_TEXT_CHARS:
            raise InvalidInput(
                "invalid_template_option",
                f"template_options.text is at most {MAX_QA_TEXT_CHARS} characters.",
            )
        prompt += f"\n\nText:\n{text}"
    else:
        prompt += " The text is in the user's message."
    return prompt, {}


TEMPLATES: dict[str, PromptTemplate] = {
    t.name: t
    for t in (
        PromptTemplate(
            name="summarise",
            title="Summarise",
            description="A faithful summary of the text in your message: its main points, "
            "nothing added.",
            render=_summarise,
            options=(
                TemplateOption(
                    "length",
                    "string",
                    "How long the summary is.",
                    choices=tuple(_LENGTHS),
                    default="medium",
                ),
            ),
        ),
        PromptTemplate(
            name="extract",
            title="Extract key-value pairs",
            description="The facts your schema asks for, taken from the text in your message, "
            "as JSON that always matches the schema (guided decoding).",
            render=_extract,
            options=(
                TemplateOption(
                    "schema",
                    "object",
                    'A JSON schema of an object, e.g. {"type": "object", "properties": '
                    '{"name": {"type": "string"}}, "required": ["name"]}.',
                    required=True,
                ),
                TemplateOption(
                    "name",
                    "string",
                    "A name for the schema (letters, digits, '_', '-').",
                    default="extraction",
                ),
            ),
        ),
        PromptTemplate(
            name="qa",
            title="Questions and answers",
            description="A concise answer to your question from the given text only.",
            render=_qa,
            options=(
                TemplateOption(
                    "text",
                    "string",
                    "The text to answer from; without it, put the text in your message.",
                ),
            ),
        ),
    )
}


# --- applying one ----------------------------------------------------------------------------


def check_schema(schema: object) -> None:
    """A JSON schema of an object, valid under its own (or the latest) draft."""
    if not isinstance(schema, dict):
        raise InvalidInput("invalid_schema", "template_options.schema must be a JSON object.")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(p) for p in error.path) or "(top level)"
        raise InvalidInput(
            "invalid_schema", f"template_options.schema is not a valid JSON schema at {where}: "
            f"{error.message}"
        ) from None  # fmt: skip
    if schema.get("type") != "object":
        raise InvalidInput(
            "invalid_schema",
            'template_options.schema must describe an object ("type": "object") whose '
            "properties are the keys to extract.",
        )


def template_named(name: object) -> PromptTemplate:
    if not isinstance(name, str) or name not in TEMPLATES:
        raise InvalidInput(
            "unknown_template",
            f"There is no prompt template named {name!r}; choose one of "
            f"{', '.join(sorted(TEMPLATES))} (GET /api/v1/prompt-templates).",
        )
    return TEMPLATES[name]


def _checked_options(template: PromptTemplate, raw: object) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput("invalid_template_options", "template_options must be a JSON object.")
    known = {o.name: o for o in template.options}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidInput(
            "unknown_template_option",
            f"The {template.name} template has no option {unknown[0]!r}; its options: "
            f"{', '.join(known) or 'none'}.",
        )
    for name, value in raw.items():
        option = known[name]
        if value is None:
            continue
        if option.type == "string" and not isinstance(value, str):
            raise InvalidInput(
                "invalid_template_option", f"template_options.{name} must be a string."
            )
        if option.choices and value not in option.choices:
            raise InvalidInput(
                "invalid_template_option",
                f"template_options.{name} is one of {', '.join(option.choices)}.",
            )
    return dict(raw)


def apply_template(name: object, options: object, body: dict[str, Any]) -> None:
    """Put the template into a chat request body (whose Forgeline fields are already out):
    its system prompt before the caller's messages, and its extra fields."""
    template = template_named(name)
    checked = _checked_options(template, options)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("invalid_request", "A template needs the conversation in 'messages'.")
    prompt, extra = template.render(checked)
    for key in extra:
        if body.get(key) is not None:
            raise InvalidInput(
                f"{key}_conflict",
                f"The {template.name} template sets {key!r} itself; leave it out of the request.",
            )
    body.update(extra)
    body["messages"] = with_system_prompt(messages, prompt)


def with_system_prompt(messages: list[Any], prompt: str) -> list[Any]:
    """The template's system prompt first. A caller's own leading system message is kept,
    after it, in the same message: many chat templates accept only one system message."""
    first = messages[0]
    if isinstance(first, dict) and first.get("role") == "system":
        content = first.get("content")
        if isinstance(content, str) and content.strip():
            return [{**first, "content": f"{prompt}\n\n{content}"}, *messages[1:]]
        if not content:
            return [{**first, "content": prompt}, *messages[1:]]
    return [{"role": "system", "content": prompt}, *messages]


def list_templates() -> list[dict[str, Any]]:
    return [t.public() for t in TEMPLATES.values()]
