"""Chat sessions through the deployer's RPCs on a real SQLite database (migrated to head):
messages come back in order, a session takes its first question as its title, another
user's session is missing, and bad messages are refused with a code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from forgeline.v1 import deployer_pb2 as pb
from sqlalchemy.engine import Engine

from services.common.db import create_db_engine, run_migrations
from services.common.errors import InvalidInput, NotFound
from services.deployer.chats import ChatRpcs, title_from
from services.deployer.server import MIGRATIONS, VERSION_TABLE
from services.deployer.settings import DeployerSettings


class Rpcs(ChatRpcs):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine


@pytest.fixture
def rpcs(tmp_path: Path) -> Iterator[Rpcs]:
    engine = create_db_engine(DeployerSettings(data_dir=tmp_path))
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    yield Rpcs(engine)
    engine.dispose()


CTX: Any = None


def _append(rpcs: Rpcs, owner: str, chat: str, *messages: pb.ChatMessage) -> list[pb.ChatMessage]:
    request = pb.AppendChatMessagesRequest(owner_id=owner, session_id=chat, messages=messages)
    return list(rpcs.AppendChatMessages(request, CTX).messages)


def test_a_chat_keeps_its_messages_in_order_with_citations(rpcs: Rpcs) -> None:
    chat = rpcs.CreateChatSession(pb.CreateChatSessionRequest(owner_id="ann"), CTX)
    assert chat.title == "" and chat.message_count == 0
    _append(rpcs, "ann", chat.id, pb.ChatMessage(role="user", content="How many  holidays?"))
    citation = pb.ChatCitation(number=1, kb_id="kb", document="handbook.txt", page_start=1)
    _append(
        rpcs,
        "ann",
        chat.id,
        pb.ChatMessage(
            role="assistant", content="27 days [1].", model="tutor", citations=[citation]
        ),
    )
    _append(rpcs, "ann", chat.id, pb.ChatMessage(role="user", content="And in August?"))
    _append(rpcs, "ann", chat.id, pb.ChatMessage(role="assistant", content="Clo", status="stopped"))

    got = rpcs.GetChatSession(pb.GetChatSessionRequest(owner_id="ann", id=chat.id), CTX)
    assert [(m.role, m.content) for m in got.messages] == [
        ("user", "How many  holidays?"),
        ("assistant", "27 days [1]."),
        ("user", "And in August?"),
        ("assistant", "Clo"),
    ]
    assert got.title == "How many holidays?"  # the first question, as the title
    assert got.model == "tutor" and got.message_count == 4
    assert got.messages[1].citations[0].document == "handbook.txt"
    assert [m.status for m in got.messages] == ["complete", "complete", "complete", "stopped"]

    listed = rpcs.ListChatSessions(pb.ListChatSessionsRequest(owner_id="ann"), CTX).sessions
    assert [s.id for s in listed] == [chat.id] and not listed[0].messages
    renamed = rpcs.RenameChatSession(
        pb.RenameChatSessionRequest(owner_id="ann", id=chat.id, title="  Holidays "), CTX
    )
    assert renamed.title == "Holidays"


def test_another_users_chat_is_missing(rpcs: Rpcs) -> None:
    chat = rpcs.CreateChatSession(pb.CreateChatSessionRequest(owner_id="ann", title="mine"), CTX)
    for call in (
        lambda: rpcs.GetChatSession(pb.GetChatSessionRequest(owner_id="bob", id=chat.id), CTX),
        lambda: rpcs.RenameChatSession(
            pb.RenameChatSessionRequest(owner_id="bob", id=chat.id, title="x"), CTX
        ),
        lambda: rpcs.DeleteChatSession(
            pb.DeleteChatSessionRequest(owner_id="bob", id=chat.id), CTX
        ),
        lambda: _append(rpcs, "bob", chat.id, pb.ChatMessage(role="user", content="hi")),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.code == "chat_not_found"
    assert rpcs.ListChatSessions(pb.ListChatSessionsRequest(owner_id="bob"), CTX).sessions == []
    rpcs.DeleteChatSession(pb.DeleteChatSessionRequest(owner_id="ann", id=chat.id), CTX)
    with pytest.raises(NotFound):
        rpcs.GetChatSession(pb.GetChatSessionRequest(owner_id="ann", id=chat.id), CTX)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (pb.ChatMessage(role="robot", content="x"), "invalid_message_role"),
        (pb.ChatMessage(role="user", content="x", status="lost"), "invalid_message_status"),
    ],
)
def test_bad_messages_are_refused(rpcs: Rpcs, message: pb.ChatMessage, code: str) -> None:
    chat = rpcs.CreateChatSession(pb.CreateChatSessionRequest(owner_id="ann"), CTX)
    with pytest.raises(InvalidInput) as caught:
        _append(rpcs, "ann", chat.id, message)
    assert caught.value.code == code
    with pytest.raises(InvalidInput) as caught:
        rpcs.RenameChatSession(pb.RenameChatSessionRequest(owner_id="ann", id=chat.id), CTX)
    assert caught.value.code == "invalid_chat_title"


def test_a_long_first_question_makes_a_short_title() -> None:
    title = title_from("word " * 50)
    assert len(title) <= 81 and title.endswith("…")
