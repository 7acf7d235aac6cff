"""Alembic environment for the trainer tables (`trainer_*`); see `run_migrations_env`."""

from services.common.db import run_migrations_env
from services.trainer import models  # noqa: F401  (registers the tables on SQLModel.metadata)

run_migrations_env("trainer_")
