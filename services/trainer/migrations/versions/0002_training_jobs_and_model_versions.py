"""training jobs and model versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 09:48:52.931275
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trainer_jobs",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("owner_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("base_model", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("dataset_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("preset", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("config_yaml", sa.Text(), nullable=False),
        sa.Column("benchmark", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("benchmark_sample", sa.Integer(), nullable=False),
        sa.Column("wandb_online", sa.Boolean(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("failure_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failure_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column(
            "callback_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("compute_ref", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("max_steps", sa.Integer(), nullable=False),
        sa.Column("last_loss", sa.Float(), nullable=True),
        sa.Column("last_eval_loss", sa.Float(), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_checkpoint_step", sa.Integer(), nullable=False),
        sa.Column("evaluation", sa.JSON(), nullable=True),
        sa.Column("model_version_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trainer_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trainer_jobs_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trainer_jobs_state"), ["state"], unique=False)

    op.create_table(
        "trainer_model_versions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("owner_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("base_model", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("dataset_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("config_yaml", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("adapter_prefix", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("merged_prefix", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trainer_model_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trainer_model_versions_job_id"), ["job_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_trainer_model_versions_owner_id"), ["owner_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("trainer_model_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trainer_model_versions_owner_id"))
        batch_op.drop_index(batch_op.f("ix_trainer_model_versions_job_id"))

    op.drop_table("trainer_model_versions")
    with op.batch_alter_table("trainer_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trainer_jobs_state"))
        batch_op.drop_index(batch_op.f("ix_trainer_jobs_owner_id"))

    op.drop_table("trainer_jobs")
