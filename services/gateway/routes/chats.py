"""Chat sessions of the web client's history: create, list, read (with messages), rename,
delete, and append messages. `/v1/chat/completions` with `"chat_id"` records its question and
answer in one by itself. Another user's chat is a 404 `chat_not_found`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from forgeline.v1 import deployer_pb2

from services.gateway.chat_schemas import (
    ChatCreate,
    ChatMessageOut,
    ChatMessagesIn,
    ChatMessagesOut,
    ChatOut,
    ChatRename,
    ChatsOut,
    ChatWithMessages,
)
from services.gateway.deps import CurrentPrincipal, DeployerDep
from services.gateway.openapi import ERRORS

router = APIRouter(prefix="/chats", tags=["chats"])
ChatId = Annotated[str, Path(max_length=64)]


@router.post(
    "", response_model=ChatOut, status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 422, 503),
)  # fmt: skip
async def create_chat(
    body: ChatCreate, principal: CurrentPrincipal, deployer: DeployerDep
) -> ChatOut:
    """Start a chat; pass its `id` as `chat_id` to /v1/chat/completions to record into it."""
    reply = await deployer.call(
        "CreateChatSession",
        deployer_pb2.CreateChatSessionRequest(
            owner_id=principal.user.id, title=body.title or "", model=body.model or ""
        ),
    )
    return ChatOut.from_proto(reply)


@router.get("", response_model=ChatsOut, responses=ERRORS(401, 503))
async def list_chats(principal: CurrentPrincipal, deployer: DeployerDep) -> ChatsOut:
    reply = await deployer.call(
        "ListChatSessions", deployer_pb2.ListChatSessionsRequest(owner_id=principal.user.id)
    )
    data = [ChatOut.from_proto(s) for s in reply.sessions]
    return ChatsOut(data=data, count=len(data))


@router.get("/{chat_id}", response_model=ChatWithMessages, responses=ERRORS(401, 404, 503))
async def get_chat(
    chat_id: ChatId, principal: CurrentPrincipal, deployer: DeployerDep
) -> ChatWithMessages:
    """The chat with its messages, oldest first."""
    reply = await deployer.call(
        "GetChatSession",
        deployer_pb2.GetChatSessionRequest(owner_id=principal.user.id, id=chat_id),
    )
    return ChatWithMessages.from_proto(reply)


@router.patch("/{chat_id}", response_model=ChatOut, responses=ERRORS(401, 404, 422, 503))
async def rename_chat(
    chat_id: ChatId, body: ChatRename, principal: CurrentPrincipal, deployer: DeployerDep
) -> ChatOut:
    reply = await deployer.call(
        "RenameChatSession",
        deployer_pb2.RenameChatSessionRequest(
            owner_id=principal.user.id, id=chat_id, title=body.title
        ),
    )
    return ChatOut.from_proto(reply)


@router.delete(
    "/{chat_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
    responses=ERRORS(401, 404, 503),
)  # fmt: skip
async def delete_chat(chat_id: ChatId, principal: CurrentPrincipal, deployer: DeployerDep) -> None:
    """Delete the chat and all its messages."""
    await deployer.call(
        "DeleteChatSession",
        deployer_pb2.DeleteChatSessionRequest(owner_id=principal.user.id, id=chat_id),
    )


@router.post(
    "/{chat_id}/messages", response_model=ChatMessagesOut, status_code=status.HTTP_201_CREATED,
    responses=ERRORS(401, 404, 422, 503),
)  # fmt: skip
async def append_messages(
    chat_id: ChatId, body: ChatMessagesIn, principal: CurrentPrincipal, deployer: DeployerDep
) -> ChatMessagesOut:
    """Append messages the client recorded itself (in order)."""
    reply = await deployer.call(
        "AppendChatMessages",
        deployer_pb2.AppendChatMessagesRequest(
            owner_id=principal.user.id,
            session_id=chat_id,
            messages=[m.to_proto() for m in body.messages],
        ),
    )
    data = [ChatMessageOut.from_proto(m) for m in reply.messages]
    return ChatMessagesOut(data=data, count=len(data))
