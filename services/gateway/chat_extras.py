"""Forgeline's own fields on the OpenAI-compatible API, read and taken out of the body before
it goes to the deployment's server (vLLM refuses fields it does not know):

- `answer_from_doc` + `knowledge_base`: answer from your documents (grounded_chat.py);
- `template` + `template_options`: a named prompt template (prompt_templates.py);
- `chat_id`: record the exchange in one of your chat sessions (chat_history.py).

They apply to `/v1/chat/completions` only; `/v1/completions` refuses them
(`chat_completions_only`). `knowledge_base` is read only with `answer_from_doc: true`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidInput
from services.gateway.chat_history import CHAT_ENDPOINT, chat_id_of
from services.gateway.grounded_chat import knowledge_base_ids, question_of
from services.gateway.prompt_templates import apply_template

FORGELINE_FIELDS = ("answer_from_doc", "knowledge_base", "template", "template_options", "chat_id")


@dataclass(frozen=True)
class ChatExtras:
    chat_id: str = ""
    knowledge_bases: tuple[str, ...] = ()  # not empty: answer from these documents
    template: str = ""


def _given(value: Any) -> bool:
    return value is not None and value is not False and value != "" and value != {}


def take_extras(body: dict[str, Any], endpoint: str) -> ChatExtras:
    """Take Forgeline's fields out of `body` (in place), check them, and apply a template."""
    raw = {name: body.pop(name) for name in FORGELINE_FIELDS if name in body}
    if endpoint != CHAT_ENDPOINT:
        used = [name for name, value in raw.items() if _given(value)]
        if used:
            raise InvalidInput(
                "chat_completions_only",
                f"{used[0]!r} works on /v1/chat/completions only, not on /v1/{endpoint}.",
            )
        return ChatExtras()
    chat_id = chat_id_of(raw["chat_id"]) if raw.get("chat_id") is not None else ""
    from_doc = raw.get("answer_from_doc")
    if from_doc is not None and not isinstance(from_doc, bool):
        raise InvalidInput("invalid_request", "'answer_from_doc' is true or false.")
    template = raw.get("template")
    if from_doc:
        if template is not None:
            raise InvalidInput(
                "template_not_supported",
                "Prompt templates do not apply to answers from documents (answer_from_doc), "
                "which have their own grounded prompt; leave 'template' out.",
            )
        kb_ids = knowledge_base_ids(raw.get("knowledge_base"))
        question_of(body.get("messages"))
        return ChatExtras(chat_id=chat_id, knowledge_bases=tuple(kb_ids))
    if template is not None:
        apply_template(template, raw.get("template_options"), body)
        return ChatExtras(chat_id=chat_id, template=str(template))
    if _given(raw.get("template_options")):
        raise InvalidInput(
            "template_required",
            "template_options need a 'template' (GET /api/v1/prompt-templates).",
        )
    return ChatExtras(chat_id=chat_id)
