"""Alembic environment for the auth tables (`auth_*`); see `run_migrations_env`."""

from services.auth import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from services.common.db import run_migrations_env

run_migrations_env("auth_")
