"""cloud deployments: credential, machine, price, key, idle clock, why it stopped

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString
_time = sqlmodel.sql.sqltypes.UTCDateTime
_COLUMNS = (
    ("credential_id", 32),
    ("compute_ref", 200),
    ("instance_type", 64),
    ("api_key_encrypted", 500),
    ("stop_reason", 32),
)


def upgrade() -> None:
    with op.batch_alter_table("deployer_deployments", schema=None) as batch_op:
        for name, length in _COLUMNS:
            batch_op.add_column(
                sa.Column(name, _text(length=length), nullable=False, server_default="")
            )
        batch_op.add_column(
            sa.Column("usd_per_hour", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("idle_minutes", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("last_used_at", _time(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployer_deployments", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("idle_minutes")
        batch_op.drop_column("usd_per_hour")
        for name, _ in reversed(_COLUMNS):
            batch_op.drop_column(name)
