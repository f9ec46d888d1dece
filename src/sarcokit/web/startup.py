"""Opening the clinic's store: a damaged, vanished or foreign database is refused, never served."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import Engine, make_url, select
from sqlalchemy.exc import DBAPIError

from sarcokit.web.config import Settings, private_file
from sarcokit.web.db import (
    StoreError,
    head_revision,
    known_revisions,
    make_engine,
    migrate,
    schema_revision,
    session_factory,
    transaction,
)
from sarcokit.web.models import Setting

CLINIC_ID_KEY = "clinic_id"


def _where(url: str) -> str:
    """The database named without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    database = parsed.database
    assert database is not None
    return Path(database.removeprefix("file:"))


def _prepare_sqlite_file(path: Path, settings: Settings) -> None:
    held_data = path.exists() and path.stat().st_size > 0
    if not held_data and settings.clinic_id_path.exists():
        state = "is empty (0 bytes)" if path.exists() else "is missing"
        raise StoreError(
            f"The clinic's database {path} {state}, but this data directory belonged to clinic "
            f"{settings.clinic_id_path.read_text().strip()}. Restore the database from a backup; "
            f"to start a new, empty clinic instead, remove {settings.clinic_id_path}."
        )
    if not path.exists():
        # Created by the owner only: SQLite gives its -wal and -shm files the same mode.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _quick_check(engine: Engine, path: Path) -> None:
    try:
        with engine.connect() as connection:
            found = [row[0] for row in connection.exec_driver_sql("PRAGMA quick_check")]
    except DBAPIError as error:
        raise StoreError(
            f"The clinic's database {path} cannot be read as SQLite ({error.orig}). "
            "Restore it from a backup; it was not changed."
        ) from None
    if found != ["ok"]:
        raise StoreError(
            f"The clinic's database {path} is damaged (PRAGMA quick_check: "
            f"{'; '.join(str(f) for f in found[:3])}). Restore it from a backup; it was not "
            "changed."
        )


def _check_schema(engine: Engine, settings: Settings) -> str | None:
    try:
        current = schema_revision(engine)
    except DBAPIError as error:
        raise StoreError(
            f"The clinic's database {_where(settings.database_url)} cannot be read ({error.orig})."
        ) from None
    if current is None and settings.clinic_id_path.exists():
        raise StoreError(
            f"The clinic's database {_where(settings.database_url)} holds no clinic, but this "
            f"data directory belonged to clinic {settings.clinic_id_path.read_text().strip()}. "
            f"Restore the database from a backup; to start a new, empty clinic instead, remove "
            f"{settings.clinic_id_path}."
        )
    if current is not None and current not in known_revisions():
        raise StoreError(
            f"The clinic's database is at schema revision {current}, which this version of "
            f"sarcokit does not know (newest known: {head_revision()}). Run the sarcokit version "
            "that wrote it."
        )
    return current


def _migrate(engine: Engine, settings: Settings) -> None:
    owner = make_engine(settings.migration_url) if settings.migration_url else engine
    try:
        migrate(owner)
    except DBAPIError as error:
        raise StoreError(
            f"The clinic's database schema is not current and could not be migrated "
            f"({error.orig}). Run `sarcokit clinic migrate` with the owner's connection in "
            "SARCOKIT_MIGRATION_DATABASE_URL."
        ) from None
    finally:
        if owner is not engine:
            owner.dispose()


def _claim(engine: Engine, settings: Settings) -> None:
    """Tie the database and the data directory to one clinic id, or refuse a mismatch."""
    with transaction(session_factory(engine)) as db:
        stored = db.scalar(select(Setting).where(Setting.key == CLINIC_ID_KEY))
        if stored is None:
            stored = Setting(key=CLINIC_ID_KEY, value=secrets.token_hex(8))
            db.add(stored)
    clinic = str(stored.value)
    marker = settings.clinic_id_path
    if not marker.exists():
        private_file(marker, clinic)
    elif marker.read_text().strip() != clinic:
        raise StoreError(
            f"This data directory belongs to clinic {marker.read_text().strip()}, but the "
            f"database {_where(settings.database_url)} holds clinic {clinic}. Point "
            "SARCOKIT_DATABASE_URL and SARCOKIT_DATA_DIR at the same clinic."
        )


def open_store(settings: Settings) -> Engine:
    """The clinic's database, checked, at the newest schema; raises StoreError to refuse it."""
    path = sqlite_file(settings.database_url)
    if path is not None:
        _prepare_sqlite_file(path, settings)
    engine = make_engine(settings.database_url)
    try:
        if path is not None:
            _quick_check(engine, path)
        if _check_schema(engine, settings) != head_revision():
            _migrate(engine, settings)
        _claim(engine, settings)
    except BaseException:
        engine.dispose()
        raise
    return engine
