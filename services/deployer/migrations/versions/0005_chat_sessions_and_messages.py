"""chat sessions and messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString
_time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "deployer_chat_sessions",
        sa.Column("id", _text(length=32), nullable=False),
        sa.Column("owner_id", _text(length=32), nullable=False),
        sa.Column("title", _text(length=200), nullable=False),
        sa.Column("model", _text(length=64), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployer_chat_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployer_chat_sessions_owner_id"), ["owner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deployer_chat_sessions_updated_at"), ["updated_at"], unique=False
        )
    op.create_table(
        "deployer_chat_messages",
        sa.Column("id", _text(length=32), nullable=False),
        sa.Column("session_id", _text(length=32), nullable=False),
        sa.Column("owner_id", _text(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", _text(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", _text(length=16), nullable=False),
        sa.Column("finish_reason", _text(length=32), nullable=False),
        sa.Column("model", _text(length=64), nullable=False),
        sa.Column("template", _text(length=32), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["deployer_chat_sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployer_chat_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployer_chat_messages_session", ["session_id", "position"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deployer_chat_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_deployer_chat_messages_session")
    op.drop_table("deployer_chat_messages")
    with op.batch_alter_table("deployer_chat_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployer_chat_sessions_updated_at"))
        batch_op.drop_index(batch_op.f("ix_deployer_chat_sessions_owner_id"))
    op.drop_table("deployer_chat_sessions")
