"""Re-encrypting stored secrets with the current key, so that old keys can be retired.

`FORGELINE_PREVIOUS_SECRET_KEYS` keeps old keys able to decrypt (services/common/crypto.py);
this rewrites each encrypted value with `FORGELINE_SECRET_KEY`, after which the old keys can
be dropped. Each service names its encrypted columns (`ENCRYPTED_COLUMNS` in its models);
`python -m services.supervisor.rotate_secrets` runs this over all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import InstrumentedAttribute, Mapped

from services.common.crypto import SecretBox
from services.common.db import session_scope
from services.common.errors import ForgelineError


@dataclass
class ColumnRotation:
    column: str  # "table.column"
    rotated: int = 0
    # Primary keys of values no key decrypts: left exactly as they were.
    unreadable: list[str] = field(default_factory=list)


def rotate_column(engine: Engine, box: SecretBox, mapped: Mapped[Any]) -> ColumnRotation:
    """Rewrite every value of the column with the current key, in one transaction.

    Each row is updated only if it still holds the value read, so a secret a running service
    replaces meanwhile is kept, not overwritten with the old one re-encrypted.
    """
    column = cast(InstrumentedAttribute[Any], mapped)  # what sqlmodel.col() gives
    table = column.class_.__table__
    [primary_key] = inspect(column.class_).primary_key
    result = ColumnRotation(f"{table.name}.{column.key}")
    with session_scope(engine) as db:
        rows = db.execute(
            select(primary_key, column).where(column.is_not(None), column != "")
        ).all()
        for row_id, ciphertext in rows:
            try:
                fresh = box.rotate(ciphertext)
            except ForgelineError:
                result.unreadable.append(str(row_id))
                continue
            db.execute(
                update(table)
                .where(primary_key == row_id, column == ciphertext)
                .values({column.key: fresh})
            )
            result.rotated += 1
    return result
