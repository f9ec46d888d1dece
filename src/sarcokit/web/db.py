"""Database connections and migrations, identical for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during a write; the busy timeout queues writers instead of failing.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL, foreign keys and a busy timeout."""
    # Bound parameters hold names and record numbers: keep them out of SQL logs and of the text
    # of database errors, which end up in tracebacks in the server log.
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
            pool_size=16,
            max_overflow=4,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # At most 30 connections per process as before, all kept once opened: a request holds two
    # at once (its session and the bearer-token lookup), so under 50 clients a pool of 10 (and
    # even of 20) overflowed at every burst, opening a server process per overflow (~5-20 ms)
    # and closing it again at once: 52 connections opened in a 30 s load run (issue 9).
    return create_engine(
        url, pool_size=30, max_overflow=0, pool_pre_ping=True, hide_parameters=True
    )


class StoreError(RuntimeError):
    """The database must not be served: damaged, empty where a clinic was, or of another schema."""


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("sarcokit.web").joinpath("migrations")))
    return config


def head_revision() -> str:
    """The newest schema revision this version of sarcokit knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every schema revision this version of sarcokit knows."""
    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def schema_revision(engine: Engine) -> str | None:
    """The database's schema revision, or None for a database without the clinic's schema."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration, in one transaction.

    On SQLite, rebuilding a table needs foreign-key enforcement off (it cannot change inside a
    transaction); every reference is checked before the migration commits. BEGIN IMMEDIATE
    makes the DDL transactional and lets one process at a time migrate.
    """
    config = _alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                if sqlite:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise StoreError(f"the migration left {len(broken)} broken references")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def grant_runtime(engine: Engine, role: str) -> None:
    """Let a PostgreSQL role run the clinic without owning it: the audit log only grows.

    The role may read and write the clinic's tables but only SELECT and INSERT on audit_log,
    no DELETE on local_definitions, and only read alembic_version. Not being the owner, it
    cannot alter, disable or drop the audit log's triggers, nor truncate or drop the table.
    """
    from sarcokit.web.models import Base

    if engine.dialect.name != "postgresql":
        raise StoreError("a separate runtime role needs PostgreSQL; SQLite has no roles")
    if not role.replace("_", "").isalnum():
        raise StoreError(f"role {role!r} is not a plain identifier (letters, digits, '_')")
    quote = engine.dialect.identifier_preparer.quote
    grants = {name: "SELECT, INSERT, UPDATE, DELETE" for name in Base.metadata.tables}
    grants["audit_log"] = "SELECT, INSERT"
    # Uploaded definition versions are retired, never removed (visits are traced to them).
    grants["local_definitions"] = "SELECT, INSERT, UPDATE"
    grants["alembic_version"] = "SELECT"
    with engine.begin() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {quote(role)}")
        for table, privileges in grants.items():
            connection.exec_driver_sql(f"REVOKE ALL ON {quote(table)} FROM {quote(role)}")
            connection.exec_driver_sql(f"GRANT {privileges} ON {quote(table)} TO {quote(role)}")
        connection.exec_driver_sql(
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quote(schema)} TO {quote(role)}"
        )
