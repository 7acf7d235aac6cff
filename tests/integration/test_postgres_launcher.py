"""The PostgreSQL launcher gives a working, private server and takes it away afterwards."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.servers.postgres import run_postgres

pytestmark = pytest.mark.integration


def test_postgres_answers_through_sqlalchemy_and_is_gone_after(tmp_path: Path) -> None:
    with run_postgres(tmp_path) as url:
        assert url.startswith("postgresql://forgeline:forgeline@127.0.0.1:")
        assert url.endswith("/forgeline")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.begin() as conn:
                assert conn.execute(text("select 1")).scalar_one() == 1
                user, database = conn.execute(text("select current_user, current_database()")).one()
                assert (user, database) == ("forgeline", "forgeline")
                # The role owns its database: it can create what the migrations create.
                conn.execute(text("create table probe (id integer primary key)"))
                conn.execute(text("insert into probe values (1)"))
                assert conn.execute(text("select count(*) from probe")).scalar_one() == 1
                version = conn.execute(text("show server_version_num")).scalar_one()
                assert int(version) >= 150000
        finally:
            engine.dispose()

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()
    assert (tmp_path / "postgres.log").exists()
