"""Alembic environment for the RAG tables (`rag_*`); see `run_migrations_env`."""

from services.common.db import run_migrations_env
from services.rag import models  # noqa: F401  (registers the tables on SQLModel.metadata)

run_migrations_env("rag_")
