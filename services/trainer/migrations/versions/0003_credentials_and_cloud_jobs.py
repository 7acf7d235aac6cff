"""credentials and cloud jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 12:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "trainer_credentials",
        sa.Column("id", _text(length=32), nullable=False),
        sa.Column("owner_id", _text(length=32), nullable=False),
        sa.Column("name", _text(length=200), nullable=False),
        sa.Column("kind", _text(length=16), nullable=False),
        sa.Column("location", _text(length=64), nullable=False),
        sa.Column("hint", _text(length=200), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("checked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "name", name="uq_trainer_credentials_name"),
    )
    op.create_index("ix_trainer_credentials_owner_id", "trainer_credentials", ["owner_id"])
    with op.batch_alter_table("trainer_jobs") as batch:
        batch.add_column(
            sa.Column("credential_id", _text(length=32), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("instance_type", _text(length=64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("launched_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.add_column(
            sa.Column("node_result", _text(length=16), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("hub_dataset", _text(length=200), nullable=False, server_default="")
        )
    with op.batch_alter_table("trainer_model_versions") as batch:
        batch.add_column(
            sa.Column("hub_dataset", _text(length=200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("trainer_model_versions") as batch:
        batch.drop_column("hub_dataset")
    with op.batch_alter_table("trainer_jobs") as batch:
        batch.drop_column("hub_dataset")
        batch.drop_column("node_result")
        batch.drop_column("launched_at")
        batch.drop_column("instance_type")
        batch.drop_column("credential_id")
    op.drop_index("ix_trainer_credentials_owner_id", table_name="trainer_credentials")
    op.drop_table("trainer_credentials")
