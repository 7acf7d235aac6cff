"""The one-time setup code that makes the first administrator.

Registering is open (or limited, see `registration.py`), so "the first account becomes the
administrator" would hand the instance to whoever reaches it first, and two registrations at
once could both win. Instead, while no administrator exists, the auth service keeps one
setup code: its hash in the database, the code itself in a 0600 file under the data folder
that `make run` prints as a link. Registering with it makes an administrator and uses it up,
in one conditional UPDATE (exactly one of two racing registrations wins).

Where no console shows it (compose, a cloud install), the operator asks for a fresh code:
`python -m services.auth.setup_codes` in the auth container.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from pathlib import Path

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.auth.models import ROLE_ADMIN, SetupCode, User
from services.auth.settings import AuthSettings
from services.common.db import session_scope
from services.common.private_files import write_private
from services.common.timestamps import utcnow

MAX_CODE_LENGTH = 128


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def has_administrator(db: Session) -> bool:
    return db.exec(select(User.id).where(User.role == ROLE_ADMIN).limit(1)).first() is not None


def ensure_setup_code(engine: Engine, code_file: Path, *, fresh: bool = False) -> str | None:
    """The code that makes the first administrator, or None once one exists (its file is
    then removed). Kept across restarts; `fresh` replaces it (the operator's command)."""
    with session_scope(engine) as db:
        if has_administrator(db):
            code_file.unlink(missing_ok=True)
            return None
        if not fresh and code_file.exists():
            code = code_file.read_text().strip()
            stored = db.get(SetupCode, _hash(code))
            if stored is not None and stored.used_at is None:
                return code
        # Only one code is ever valid: a new one replaces any that was not used.
        db.execute(delete(SetupCode).where(col(SetupCode.used_at).is_(None)))
        code = secrets.token_urlsafe(24)
        db.add(SetupCode(code_hash=_hash(code)))
        db.flush()
        # Written before the commit: a crash in between leaves a file whose code is not in
        # the database, which the next start simply replaces.
        write_private(code_file, code + "\n")
        return code


def claim_setup_code(db: Session, *, code: str, user_id: str) -> bool:
    """Use the code up for `user_id`; False when it is unknown or someone used it first."""
    if not code or len(code) > MAX_CODE_LENGTH:
        return False
    result = db.execute(
        update(SetupCode)
        .where(col(SetupCode.code_hash) == _hash(code), col(SetupCode.used_at).is_(None))
        .values(used_at=utcnow(), used_by=user_id)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def main() -> int:
    """Print a fresh setup code for the first administrator (the operator's command)."""
    from services.auth.server import MIGRATIONS, VERSION_TABLE
    from services.common.db import create_db_engine, run_migrations

    settings = AuthSettings()
    engine = create_db_engine(settings)
    run_migrations(engine, MIGRATIONS, VERSION_TABLE)
    code = ensure_setup_code(engine, settings.setup_code_file, fresh=True)
    if code is None:
        sys.stdout.write(
            "This Forgeline already has an administrator; they manage accounts in People.\n"
        )
        return 1
    sys.stdout.write(
        "Create the administrator account with this setup code (it works once):\n"
        f"  {code}\n"
        'Open the web client at /signin#setup=<code>, or send it as "setup_code" to\n'
        "POST /api/v1/auth/register.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
