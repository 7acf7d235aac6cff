"""The first administrator comes from a one-time setup code, and only one ever does; who else
may register follows the operator's policy (issue 14, item 6).

These run the auth service's own code against a fresh database of each kind (a schema of
its own on the session's PostgreSQL), not a platform: each case needs an instance with no
administrator yet, and a platform start costs about twenty seconds.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from services.auth import accounts, crud
from services.auth.context import AuthContext
from services.auth.models import ROLE_ADMIN, ROLE_MEMBER
from services.auth.server import build_context
from services.auth.settings import AuthSettings
from services.auth.setup_codes import ensure_setup_code
from services.common.db import session_scope
from services.common.errors import ForgelineError, PermissionDenied
from tests.factories import random_email, random_password

pytestmark = pytest.mark.both_databases

MakeContext = Callable[..., AuthContext]


@pytest.fixture
def make_context(database_url: str | None, tmp_path: Path) -> Iterator[MakeContext]:
    """An auth context on an empty database; keyword arguments are AuthSettings."""
    url = None
    if database_url:
        schema = f"first_admin_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{database_url}?options=-csearch_path%3D{schema}"
    contexts: list[AuthContext] = []

    def make(**settings: Any) -> AuthContext:
        ctx = build_context(
            AuthSettings(
                data_dir=tmp_path,
                database_url=url,
                secret_key=Fernet.generate_key().decode(),
                redis_url="redis://127.0.0.1:1/0",  # revocations are best effort: unused here
                **settings,
            )
        )
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.engine.dispose()


def _register(ctx: AuthContext, email: str | None = None, setup_code: str = "") -> Any:
    return accounts.register(
        ctx, email=email or random_email(), password=random_password(), setup_code=setup_code
    )


def _error(call: Callable[[], object]) -> ForgelineError:
    with pytest.raises(ForgelineError) as caught:
        call()
    return caught.value


def test_the_first_account_without_the_setup_code_is_a_member(make_context: MakeContext) -> None:
    # Hostile: whoever reaches a new instance first used to become its administrator.
    ctx = make_context()
    ensure_setup_code(ctx.engine, ctx.settings.setup_code_file)
    assert _register(ctx).role == ROLE_MEMBER


def test_the_setup_code_makes_one_administrator_once(make_context: MakeContext) -> None:
    ctx = make_context()
    code_file = ctx.settings.setup_code_file
    code = ensure_setup_code(ctx.engine, code_file)
    assert code and code_file.read_text().strip() == code
    assert code_file.stat().st_mode & 0o777 == 0o600
    # A restart keeps offering the same code while it is unused.
    assert ensure_setup_code(ctx.engine, code_file) == code

    wrong = _error(lambda: _register(ctx, "mallory@example.com", setup_code="guessed"))
    assert isinstance(wrong, PermissionDenied) and wrong.code == "invalid_setup_code"
    owner = _register(ctx, "owner@example.com", setup_code=code)
    assert owner.role == ROLE_ADMIN
    assert not code_file.exists()  # used up: nothing left to steal from the data folder

    again = _error(lambda: _register(ctx, "second@example.com", setup_code=code))
    assert again.code == "invalid_setup_code"
    # Nothing half-written: the refused registrations left no account behind.
    with session_scope(ctx.engine) as db:
        for email in ("mallory@example.com", "second@example.com"):
            assert crud.get_user_by_email(db, email=email) is None
    # Once there is an administrator, no new code is made, even by the operator's command.
    assert ensure_setup_code(ctx.engine, code_file, fresh=True) is None


def test_a_fresh_code_from_the_operator_replaces_the_old_one(make_context: MakeContext) -> None:
    ctx = make_context()
    old = ensure_setup_code(ctx.engine, ctx.settings.setup_code_file)
    new = ensure_setup_code(ctx.engine, ctx.settings.setup_code_file, fresh=True)
    assert old and new and new != old
    assert _error(lambda: _register(ctx, setup_code=old)).code == "invalid_setup_code"
    assert _register(ctx, setup_code=new).role == ROLE_ADMIN


def test_registrations_racing_with_the_setup_code_make_one_administrator(
    make_context: MakeContext,
) -> None:
    ctx = make_context()
    code = ensure_setup_code(ctx.engine, ctx.settings.setup_code_file)
    assert code
    racers = 6
    start = threading.Barrier(racers)
    outcomes: list[str] = []

    def race() -> None:
        start.wait()
        try:
            outcomes.append(_register(ctx, setup_code=code).role)
        except ForgelineError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(outcomes) == [ROLE_ADMIN] + ["invalid_setup_code"] * (racers - 1)


def test_closed_registration_refuses_everyone_but_the_setup_code(
    make_context: MakeContext,
) -> None:
    ctx = make_context(registration_mode="closed")
    code = ensure_setup_code(ctx.engine, ctx.settings.setup_code_file)
    refused = _error(lambda: _register(ctx))
    assert isinstance(refused, PermissionDenied) and refused.code == "registration_closed"
    assert "administrator" in refused.message
    assert _register(ctx, setup_code=code or "").role == ROLE_ADMIN


@pytest.mark.parametrize(
    ("email", "allowed"),
    [
        ("ana@example.com", True),
        ("ANA@Example.com", True),  # compared normalised
        ("bob@acme.com", True),
        ("eve@example.com", False),
        ("eve@notacme.com", False),  # a domain is matched whole, not by its ending
        ("eve@acme.com.evil.io", False),
        ("eve@sub.acme.com", False),
    ],
)
def test_invited_registration_takes_listed_addresses_and_domains(
    make_context: MakeContext, email: str, allowed: bool
) -> None:
    ctx = make_context(registration_mode="invited", registration_invited="ana@example.com acme.com")
    if allowed:
        assert _register(ctx, email).role == ROLE_MEMBER
    else:
        assert _error(lambda: _register(ctx, email)).code == "registration_not_invited"


def test_the_used_setup_code_is_refused_through_the_gateway(
    stack: Any, client: httpx.Client
) -> None:
    # The stack's administrator registered with the code its console printed.
    admin = client.get("/api/v1/me", headers=stack.admin.headers).json()
    assert admin["role"] == ROLE_ADMIN
    answer = client.post(
        "/api/v1/auth/register",
        json={"email": random_email(), "password": random_password(), "setup_code": "x" * 32},
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "invalid_setup_code"
    assert not (stack.platform.data_dir / "auth" / "setup-code").exists()
