"""trainer tables

Revision ID: 0001
Revises:
Create Date: 2026-11-29 09:37:57.233928
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trainer_datasets",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("owner_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("detected_format", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column(
            "detection_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False
        ),
        sa.Column("confirmed_format", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("valid_rows", sa.Integer(), nullable=False),
        sa.Column("problem_count", sa.Integer(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("token_stats", sa.JSON(), nullable=True),
        sa.Column("token_stats_note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("base_model", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("sequence_len", sa.Integer(), nullable=False),
        sa.Column("eval_fraction", sa.Float(), nullable=False),
        sa.Column("train_rows", sa.Integer(), nullable=False),
        sa.Column("eval_rows", sa.Integer(), nullable=False),
        sa.Column("failure_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failure_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name", name="uq_trainer_datasets_name"),
    )
    with op.batch_alter_table("trainer_datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trainer_datasets_owner_id"), ["owner_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("trainer_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trainer_datasets_owner_id"))

    op.drop_table("trainer_datasets")
