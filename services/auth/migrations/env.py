"""Alembic environment for the auth tables.

The engine comes from `services.common.db.run_migrations` (which got it from settings), so
there is no alembic.ini and no second place that knows the database URL.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from services.auth import models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
engine = config.attributes["connection_engine"]
version_table = config.attributes.get("version_table", "alembic_version_auth")
AUTH_TABLES = {name for name in SQLModel.metadata.tables if name.startswith("auth_")}


def include_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
    # Other services share the database and the metadata; only auth's tables are ours.
    return type_ != "table" or name in AUTH_TABLES


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        version_table=version_table,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
