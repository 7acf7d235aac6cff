"""The named prompt templates of `/v1/chat/completions` (`"template"`), for the web client."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.chat_schemas import PromptTemplateOut, PromptTemplatesOut
from services.gateway.deps import CurrentPrincipal
from services.gateway.openapi import ERRORS
from services.gateway.prompt_templates import list_templates

router = APIRouter(tags=["chats"])


@router.get("/prompt-templates", response_model=PromptTemplatesOut, responses=ERRORS(401))
async def prompt_templates(principal: CurrentPrincipal) -> PromptTemplatesOut:
    """Templates to pass as `"template"` (with `"template_options"`) on /v1/chat/completions."""
    data = [PromptTemplateOut.model_validate(t) for t in list_templates()]
    return PromptTemplatesOut(data=data, count=len(data))
