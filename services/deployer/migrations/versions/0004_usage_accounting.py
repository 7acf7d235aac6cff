"""usage accounting: requests and tokens per owner, deployment, credential and UTC hour

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString
_COUNTERS = ("requests", "prompt_tokens", "completion_tokens", "aborted")


def upgrade() -> None:
    op.create_table(
        "deployer_usage",
        sa.Column("owner_id", _text(length=32), nullable=False),
        sa.Column("deployment_id", _text(length=32), nullable=False),
        sa.Column("credential_id", _text(length=32), nullable=False),
        sa.Column("hour", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _COUNTERS),
        sa.PrimaryKeyConstraint("owner_id", "deployment_id", "credential_id", "hour"),
    )
    with op.batch_alter_table("deployer_usage", schema=None) as batch_op:
        batch_op.create_index("ix_deployer_usage_owner_hour", ["owner_id", "hour"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deployer_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_deployer_usage_owner_hour")
    op.drop_table("deployer_usage")
