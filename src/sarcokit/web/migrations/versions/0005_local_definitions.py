"""Local definition files uploaded by administrators, every version kept.

A row is never removed and its text never rewritten (database triggers refuse both): a visit
records the SHA-256 of the definitions that produced it, and the text must stay findable by
it. Retiring a version sets `retired_at` once; it cannot be undone in place (upload again).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
_MESSAGE = "local_definitions keeps every version unchanged"
_SQLITE_GUARDS = [
    "CREATE TRIGGER local_definitions_no_delete BEFORE DELETE ON local_definitions "
    f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END",
    "CREATE TRIGGER local_definitions_no_rewrite BEFORE UPDATE OF "
    "id, definition_id, text, sha256, uploaded_by, uploaded_at ON local_definitions "
    f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END",
    "CREATE TRIGGER local_definitions_retire_once BEFORE UPDATE OF retired_at, retired_by "
    "ON local_definitions WHEN OLD.retired_at IS NOT NULL "
    f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END",
]
_POSTGRES_GUARDS = [
    "CREATE FUNCTION local_definitions_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP <> 'UPDATE' OR OLD.retired_at IS NOT NULL "
    "OR NEW.id <> OLD.id OR NEW.definition_id <> OLD.definition_id "
    "OR NEW.text <> OLD.text OR NEW.sha256 <> OLD.sha256 "
    "OR NEW.uploaded_by <> OLD.uploaded_by OR NEW.uploaded_at <> OLD.uploaded_at "
    f"THEN RAISE EXCEPTION '{_MESSAGE}'; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER local_definitions_no_change BEFORE UPDATE OR DELETE ON local_definitions "
    "FOR EACH ROW EXECUTE FUNCTION local_definitions_keep()",
    "CREATE TRIGGER local_definitions_no_truncate BEFORE TRUNCATE ON local_definitions "
    "FOR EACH STATEMENT EXECUTE FUNCTION local_definitions_keep()",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "local_definitions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("definition_id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("uploaded_at", _TZ, nullable=False),
        sa.Column("retired_at", _TZ, nullable=True),
        sa.Column("retired_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_local_definitions_definition", "local_definitions", ["definition_id", "sha256"]
    )
    for statement in _SQLITE_GUARDS if sqlite else _POSTGRES_GUARDS:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for name in ("no_delete", "no_rewrite", "retire_once"):
            op.execute(f"DROP TRIGGER IF EXISTS local_definitions_{name}")
    op.drop_table("local_definitions")
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS local_definitions_keep()")
