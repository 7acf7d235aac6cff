"""Alembic environment for the deployer tables (`deployer_*`); see `run_migrations_env`."""

from services.common.db import run_migrations_env
from services.deployer import models  # noqa: F401  (registers the tables on SQLModel.metadata)

run_migrations_env("deployer_")
