"""documents keyed by knowledge base, bucket and key; the settings they were indexed with

Two knowledge bases may now watch the same attached bucket, so the unique key gains kb_id.
The old constraint was created without a name, which no portable ALTER can drop; the table
is rebuilt instead (rows are kept).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "id, owner_id, kb_id, bucket, key, name, etag, indexed_etag, size, state, failure_code, "
    "failure_reason, chunks, pages, updated_at"
)


def _create(table: str, unique: tuple[str, ...], *, signature: bool) -> None:
    string = sqlmodel.sql.sqltypes.AutoString
    columns = [
        sa.Column("id", string(length=32), nullable=False),
        sa.Column("owner_id", string(length=32), nullable=False),
        sa.Column("kb_id", string(length=32), nullable=False),
        sa.Column("bucket", string(length=255), nullable=False),
        sa.Column("key", string(length=1024), nullable=False),
        sa.Column("name", string(length=1024), nullable=False),
        sa.Column("etag", string(length=128), nullable=False),
        sa.Column("indexed_etag", string(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("state", string(length=16), nullable=False),
        sa.Column("failure_code", string(length=64), nullable=True),
        sa.Column("failure_reason", string(length=1024), nullable=True),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    ]
    if signature:
        columns.append(
            sa.Column("indexed_signature", string(length=160), nullable=False, server_default="")
        )
    op.create_table(
        table,
        *columns,
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint(*unique, name=f"uq_{table}_object"),
    )


def _rebuild(unique: tuple[str, ...], *, signature: bool) -> None:
    _create("indexer_documents_new", unique, signature=signature)
    op.execute(
        # COLUMNS is a constant of this file, not input.
        f"INSERT INTO indexer_documents_new ({COLUMNS}) SELECT {COLUMNS} FROM indexer_documents"  # noqa: S608
    )
    op.drop_index("ix_indexer_documents_kb_id", table_name="indexer_documents")
    op.drop_index("ix_indexer_documents_owner_id", table_name="indexer_documents")
    op.drop_table("indexer_documents")
    op.rename_table("indexer_documents_new", "indexer_documents")
    op.create_index("ix_indexer_documents_kb_id", "indexer_documents", ["kb_id"])
    op.create_index("ix_indexer_documents_owner_id", "indexer_documents", ["owner_id"])


def upgrade() -> None:
    _rebuild(("kb_id", "bucket", "key"), signature=True)


def downgrade() -> None:
    _rebuild(("bucket", "key"), signature=False)
