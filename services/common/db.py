"""Database engine, sessions, migrations and the owner filter every query goes through.

SQLite under the data folder by default; PostgreSQL (or anything SQLAlchemy speaks) through
`DATABASE_URL`. Each service owns its tables and its own Alembic history, kept in a
per-service version table so several services can share one database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine, select
from sqlmodel.sql.expression import SelectOfScalar

from services.common.settings import BaseServiceSettings

T = TypeVar("T", bound=SQLModel)


def create_db_engine(settings: BaseServiceSettings) -> Engine:
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            # WAL lets readers proceed during a write; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed on success, rolled back whole on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def owned(statement: SelectOfScalar[T], model: type[T], owner_id: str) -> SelectOfScalar[T]:
    """Restrict a select to the caller's rows; every tenant-owned query goes through here."""
    return statement.where(model.owner_id == owner_id)  # type: ignore[attr-defined]


def get_owned(db: Session, model: type[T], owner_id: str, row_id: str) -> T | None:
    """The caller's row with this id, or None: another tenant's row looks like a missing one."""
    statement = owned(select(model), model, owner_id)
    return db.exec(statement.where(model.id == row_id)).first()  # type: ignore[attr-defined]


def list_owned(db: Session, model: type[T], owner_id: str, *, newest_first: bool) -> list[T]:
    """All the caller's rows, by creation time."""
    created = model.created_at  # type: ignore[attr-defined]
    order = created.desc() if newest_first else created
    return list(db.exec(owned(select(model), model, owner_id).order_by(order)).all())


def run_migrations(engine: Engine, migrations_dir: Path, version_table: str) -> None:
    """Bring one service's tables to head (the 'prestart' step)."""
    # Imported here: only the services migrate, and Alembic costs the workers, which import
    # this module too, most of a second each at start.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["connection_engine"] = engine
    config.attributes["version_table"] = version_table
    command.upgrade(config, "head")


def run_migrations_env(table_prefix: str) -> None:
    """The body of every service's Alembic `env.py`.

    The engine comes from `run_migrations` (which got it from settings), so there is no
    alembic.ini and no second place that knows the database URL. Services share one database
    and one SQLModel metadata, so each history only looks at its own tables (`table_prefix`).
    """
    from alembic import context

    config = context.config
    engine = config.attributes["connection_engine"]
    own_tables = {name for name in SQLModel.metadata.tables if name.startswith(table_prefix)}

    def include_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
        return type_ != "table" or name in own_tables

    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            version_table=config.attributes["version_table"],
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
