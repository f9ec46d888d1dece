"""Identifier keys (unique, case- and width-insensitive), voided visits, throttle purposes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("sarcokit.web")

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def _key(text: str) -> str:
    # identity.identity_key of identity.identifier, frozen here as this migration applied it
    # (stored values are not refused now: they were accepted when entered).
    normal = unicodedata.normalize("NFKC", text)
    normal = "".join(c for c in normal if c not in _ZERO_WIDTH).strip()
    return unicodedata.normalize("NFKC", normal.casefold())


def _fill_keys(table: str, source: str, target: str, entity: str) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text(f"SELECT id, {source} FROM {table} ORDER BY id")).all()
    taken: set[str] = set()
    for ident, value in rows:
        key = _key(value)
        if key in taken:
            # Two existing records that are now the same identifier: both are kept, the later
            # one under a key no input can produce (U+0001 is refused on input), and named in
            # the log (by id only) for an administrator to merge or renumber.
            log.warning(
                "%s %d has the same %s as an earlier one once normalised; renumber it",
                entity,
                ident,
                source,
            )
            key = f"{key}\u0001{ident}"
        taken.add(key)
        connection.execute(
            sa.text(f"UPDATE {table} SET {target} = :key WHERE id = :id"), {"key": key, "id": ident}
        )


def upgrade() -> None:
    op.add_column(
        "patients", sa.Column("record_key", sa.String(255), nullable=False, server_default="")
    )
    _fill_keys("patients", "record_number", "record_key", "patient")
    op.create_index("ix_patients_record_key", "patients", ["record_key"], unique=True)
    op.add_column(
        "users", sa.Column("username_key", sa.String(255), nullable=False, server_default="")
    )
    _fill_keys("users", "username", "username_key", "user")
    op.create_index("ix_users_username_key", "users", ["username_key"], unique=True)
    op.add_column(
        "login_failures",
        sa.Column("purpose", sa.String(16), nullable=False, server_default="sign_in"),
    )
    op.create_table(
        "visit_voids",
        sa.Column("visit_id", sa.Integer, sa.ForeignKey("visits.id"), primary_key=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("visit_voids")
    with op.batch_alter_table("login_failures") as batch:
        batch.drop_column("purpose")
    op.drop_index("ix_users_username_key", "users")
    op.drop_index("ix_patients_record_key", "patients")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("username_key")
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("record_key")
