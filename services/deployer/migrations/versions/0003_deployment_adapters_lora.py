"""deployment adapters (LoRA): how a version is served, and the adapters of a server

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 16:40:00
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
    with op.batch_alter_table("deployer_deployments", schema=None) as batch_op:
        # Every deployment made before this served merged weights.
        batch_op.add_column(
            sa.Column("weights", _text(length=16), nullable=False, server_default="merged")
        )
        batch_op.add_column(sa.Column("adapters", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("deployer_deployments", schema=None) as batch_op:
        batch_op.drop_column("adapters")
        batch_op.drop_column("weights")
