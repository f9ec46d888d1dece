"""Ids are never reused on SQLite, and the audit log is hash-chained.

SQLite tables are rebuilt with AUTOINCREMENT (PostgreSQL's sequences never reuse an id). Each
audit row gets its place in the chain, the previous row's hash and its own; the rows already
written are chained in id order. `audit_head` holds the end of the chain.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Parents before children, so each rebuilt table's foreign keys point at a rebuilt table.
_TABLES = (
    "users",
    "api_tokens",
    "login_sessions",
    "login_failures",
    "patients",
    "visits",
    "visit_revisions",
    "audit_log",
)
_SQLITE_GUARDS = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
]
_POSTGRES_GUARDS = [
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]


def _drop_guards(sqlite: bool) -> None:
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")


def _create_guards(sqlite: bool) -> None:
    for statement in _SQLITE_GUARDS if sqlite else _POSTGRES_GUARDS:
        op.execute(statement)


def _chain_existing_rows() -> None:
    # The chain's hashing lives with the application; the rows written before this migration
    # are chained with the same function, in id order.
    from sarcokit.web.audit import GENESIS, chain_hash
    from sarcokit.web.models import AuditEvent

    bind = op.get_bind()
    log = sa.table(
        "audit_log",
        sa.column("id", sa.Integer),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("user_id", sa.Integer),
        sa.column("action", sa.String),
        sa.column("entity", sa.String),
        sa.column("entity_id", sa.Integer),
        sa.column("detail", sa.Text),
        sa.column("seq", sa.Integer),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    rows = bind.execute(sa.select(log).order_by(log.c.id)).all()
    prev = GENESIS
    for place, row in enumerate(rows, start=1):
        event = AuditEvent(
            at=row.at,
            user_id=row.user_id,
            action=row.action,
            entity=row.entity,
            entity_id=row.entity_id,
            detail=row.detail or "",
            seq=place,
        )
        digest = chain_hash(event, prev)
        bind.execute(
            sa.update(log)
            .where(log.c.id == row.id)
            .values(seq=place, prev_hash=prev, hash=digest, detail=row.detail or "")
        )
        prev = digest
    head = sa.table(
        "audit_head",
        sa.column("id", sa.Integer),
        sa.column("seq", sa.Integer),
        sa.column("hash", sa.String),
    )
    bind.execute(sa.insert(head).values(id=1, seq=len(rows), hash=prev))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _drop_guards(sqlite)
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.Integer, nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    _chain_existing_rows()
    for table in _TABLES if sqlite else ("audit_log",):
        # On SQLite every table is rebuilt with AUTOINCREMENT; sarcokit.web.db.migrate turns
        # foreign-key enforcement off around migrations and checks every reference afterwards,
        # as SQLite's table rebuild requires.
        with op.batch_alter_table(
            table,
            recreate="always" if sqlite else "auto",
            table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
        ) as batch:
            if table == "audit_log":
                batch.alter_column("seq", existing_type=sa.Integer, nullable=False)
                batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
                batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
                batch.create_unique_constraint("uq_audit_log_seq", ["seq"])
    _create_guards(sqlite)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _drop_guards(sqlite)
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_seq", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
    op.drop_table("audit_head")
    _create_guards(sqlite)
