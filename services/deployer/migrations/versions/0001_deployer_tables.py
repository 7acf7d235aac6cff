"""deployer tables

Revision ID: 0001
Revises:
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString
_time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "deployer_deployments",
        sa.Column("id", _text(length=32), nullable=False),
        sa.Column("owner_id", _text(length=32), nullable=False),
        sa.Column("name", _text(length=64), nullable=False),
        sa.Column("base_model", _text(length=100), nullable=False),
        sa.Column("model_version_id", _text(length=32), nullable=False),
        sa.Column("target", _text(length=16), nullable=False),
        sa.Column("state", _text(length=16), nullable=False),
        sa.Column("status_message", _text(length=500), nullable=False),
        sa.Column("failure_code", _text(length=64), nullable=False),
        sa.Column("failure_reason", _text(length=2000), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("failed_restarts", sa.Integer(), nullable=False),
        sa.Column("host", _text(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("processes", sa.JSON(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("starting_at", _time(), nullable=True),
        sa.Column("ready_at", _time(), nullable=True),
        sa.Column("stopped_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployer_deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployer_deployments_owner_id"), ["owner_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_deployer_deployments_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deployer_deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployer_deployments_state"))
        batch_op.drop_index(batch_op.f("ix_deployer_deployments_owner_id"))
    op.drop_table("deployer_deployments")
