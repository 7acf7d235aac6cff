"""Alembic environment for the indexer tables (`indexer_*`); see `run_migrations_env`."""

from services.common.db import run_migrations_env
from services.indexer import models  # noqa: F401  (registers the tables on SQLModel.metadata)

run_migrations_env("indexer_")
