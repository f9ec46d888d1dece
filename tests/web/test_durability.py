"""Writes are acknowledged only once committed; a damaged or vanished store is refused; ids are
never reused; the audit trail is fail-closed, hash-chained and, on PostgreSQL, beyond the reach
of the clinic's own database role."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from sarcokit.web.audit import verify
from sarcokit.web.config import Settings
from sarcokit.web.db import StoreError, make_engine, session_factory
from sarcokit.web.models import AuditEvent, Visit
from sarcokit.web.startup import open_store
from web.support import (
    PASSWORD,
    POSTGRES_URL,
    Clinic,
    add_patient,
    add_visit,
    build_clinic,
    make_app,
)

SARCOKIT = str(Path(sys.executable).parent / "sarcokit")


def _count(engine: Engine, model: type[Any]) -> int:
    with session_factory(engine)() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


def _fail_statements(engine: Engine, prefix: str) -> None:
    """Make every statement starting with `prefix` fail as a lost connection would."""

    @event.listens_for(engine, "before_cursor_execute")
    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(prefix):
            raise OperationalError(statement[:40], None, Exception("injected fault"))


# -- acknowledged only once committed -------------------------------------------------------


def test_a_write_whose_commit_fails_is_not_acknowledged(clinic: Clinic) -> None:
    # Before the fix the commit ran after the response: this answered 201 and stored nothing.
    api = clinic.api("clinician")
    patient = add_patient(api)
    engine: Engine = clinic.app.state.engine
    visits_before = _count(engine, Visit)

    @event.listens_for(engine, "commit")
    def lose_commit(conn: Any) -> None:
        raise OperationalError("COMMIT", None, Exception("injected: the disk is full"))

    response = api.post(
        f"/api/v1/patients/{patient['id']}/visits",
        json={"visit_date": "2026-01-10", "measurements": {"grip_kg": 20.0}},
    )
    event.remove(engine, "commit", lose_commit)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["field"] == "database"
    assert _count(engine, Visit) == visits_before


def test_a_read_whose_audit_row_cannot_be_written_is_refused(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api)
    browser, _ = clinic.browser("clinician")
    engine: Engine = clinic.app.state.engine
    _fail_statements(engine, "INSERT INTO AUDIT_LOG")
    response = api.get(f"/api/v1/patients/{patient['id']}")
    assert response.status_code == 503, response.text
    assert response.json()["error"]["field"] == "database"
    assert "Li Hua" not in response.text
    page = browser.get(f"/patients/{patient['id']}")
    assert page.status_code == 503
    assert "Li Hua" not in page.text


def test_a_read_only_database_refuses_audited_reads_and_writes(
    clinic: Clinic, database_url: str, tmp_path: Path
) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api)
    clinic.app.state.engine.dispose()
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        read_only = f"{database_url}%20-cdefault_transaction_read_only%3Don"
    app = make_app(read_only, tmp_path / "var")
    try:
        from fastapi.testclient import TestClient

        reader = TestClient(app)
        reader.headers["Authorization"] = api.headers["Authorization"]
        read = reader.get(f"/api/v1/patients/{patient['id']}")
        assert read.status_code == 503, read.text
        assert "Li Hua" not in read.text
        write = reader.post(
            "/api/v1/patients",
            json={
                "record_number": "B2",
                "name": "Wang",
                "sex": "male",
                "date_of_birth": "1950-02-02",
            },
        )
        assert write.status_code == 503, write.text
    finally:
        app.state.engine.dispose()


# -- ids ----------------------------------------------------------------------------------


def test_an_id_is_never_given_again(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    add_patient(api, "A1")
    second = add_patient(api, "A2")
    engine: Engine = clinic.app.state.engine
    # A row that vanished (as an unacknowledged insert would) must not free its id.
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM patients WHERE id = :id"), {"id": second["id"]})
    third = add_patient(api, "A3")
    assert third["id"] > second["id"]


# -- the store is checked before it is served -------------------------------------------------


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(database_url=url, data_dir=data_dir)


def test_a_damaged_sqlite_file_is_refused(
    sqlite_clinic: Clinic, sqlite_url: str, tmp_path: Path
) -> None:
    add_patient(sqlite_clinic.api("clinician"))
    sqlite_clinic.app.state.engine.dispose()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    with session_factory(make_engine(sqlite_url))() as db:
        db.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    size = path.stat().st_size
    with path.open("r+b") as handle:
        # Overwrite the second page (a table's b-tree page) with noise.
        handle.seek(4096)
        handle.write(secrets.token_bytes(min(4096, size - 4096)))
    with pytest.raises(StoreError, match=r"damaged|cannot be read"):
        open_store(_settings(sqlite_url, tmp_path / "var"))


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clinic.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match="cannot be read as SQLite"):
        open_store(_settings(f"sqlite:///{path}", tmp_path / "var"))
    assert path.read_bytes() == b"this is not SQLite" * 100


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_a_vanished_sqlite_file_is_not_replaced_by_an_empty_clinic(
    sqlite_clinic: Clinic, sqlite_url: str, tmp_path: Path, how: str
) -> None:
    sqlite_clinic.app.state.engine.dispose()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    if how == "empty":
        path.touch()
    with pytest.raises(StoreError, match="Restore the database from a backup"):
        open_store(_settings(sqlite_url, tmp_path / "var"))
    assert not path.exists() or path.stat().st_size == 0


def test_an_emptied_postgresql_schema_is_not_served_as_a_new_clinic(tmp_path: Path) -> None:
    from web.support import _postgres_schema_url

    urls = _postgres_schema_url()
    url = next(urls)
    try:
        build_clinic(url, tmp_path / "var").app.state.engine.dispose()
        admin = create_engine(url)
        with admin.begin() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        with pytest.raises(StoreError, match="holds no clinic"):
            open_store(_settings(url, tmp_path / "var"))
    finally:
        for _ in urls:
            pass


def test_a_database_of_another_clinic_is_refused(database_url: str, tmp_path: Path) -> None:
    build_clinic(database_url, tmp_path / "one").app.state.engine.dispose()
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "clinic-id").write_text("0123456789abcdef")
    with pytest.raises(StoreError, match="belongs to clinic 0123456789abcdef"):
        open_store(_settings(database_url, tmp_path / "two"))


def test_a_schema_newer_than_this_sarcokit_is_refused(database_url: str, tmp_path: Path) -> None:
    build_clinic(database_url, tmp_path / "var").app.state.engine.dispose()
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 9999"):
        open_store(_settings(database_url, tmp_path / "var"))


def test_serve_stops_with_the_message_on_a_damaged_store(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "clinic-id").write_text("feedfacefeedface")
    environment = {**os.environ, "SARCOKIT_DATA_DIR": str(data)}
    environment.pop("SARCOKIT_DATABASE_URL", None)
    done = subprocess.run(
        [SARCOKIT, "clinic", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "is missing" in done.stderr and "feedfacefeedface" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (data / "sarcokit.db").exists()


def test_files_holding_data_and_secrets_are_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    old = os.umask(0o022)
    try:
        from sarcokit.web.config import settings_from_env

        settings = settings_from_env(data)
        app = make_app(settings.database_url, data)
        from fastapi.testclient import TestClient

        TestClient(app).get("/setup")
        with TestClient(app) as client:
            client.get("/login")
        from sarcokit.web.config import secret_file

        secret_file(settings.export_key_path)
        app.state.engine.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = ["sarcokit.db", "setup-code", "export-key", "clinic-id"]
    for name in files:
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    for leftover in data.glob("sarcokit.db-*"):
        assert stat.S_IMODE(leftover.stat().st_mode) == 0o600, leftover.name


# -- the audit trail --------------------------------------------------------------------------


def _workflow(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api)
    visit = add_visit(api, patient["id"])
    api.get(f"/api/v1/visits/{visit['id']}")
    api.get("/api/v1/patients", params={"q": "li"})


def test_the_audit_chain_holds_after_a_workflow(clinic: Clinic) -> None:
    _workflow(clinic)
    with session_factory(clinic.app.state.engine)() as db:
        report = verify(db)
    assert report.intact, report.reason
    assert report.rows >= 5


def _tamper(engine: Engine, statement: str) -> None:
    """What an attacker holding the SQLite file can do: drop the guards and change rows."""
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_log_no_update"))
        connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        connection.execute(text(statement))


@pytest.mark.parametrize(
    ("statement", "broken"),
    [
        ("UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 3", 3),
        ("UPDATE audit_log SET user_id = NULL WHERE seq = 2", 2),
        ("DELETE FROM audit_log WHERE seq = 4", 5),
    ],
)
def test_verify_audit_finds_an_edited_sqlite_row(
    sqlite_clinic: Clinic, statement: str, broken: int
) -> None:
    _workflow(sqlite_clinic)
    engine: Engine = sqlite_clinic.app.state.engine
    _tamper(engine, statement)
    with session_factory(engine)() as db:
        report = verify(db)
        expected = db.scalar(select(AuditEvent.id).where(AuditEvent.seq == broken))
    assert not report.intact
    assert report.broken_at == expected, report.reason


def test_verify_audit_finds_rows_removed_from_the_end(sqlite_clinic: Clinic) -> None:
    _workflow(sqlite_clinic)
    engine: Engine = sqlite_clinic.app.state.engine
    _tamper(engine, "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)")
    with session_factory(engine)() as db:
        report = verify(db)
    assert not report.intact and "rows removed" in report.reason


def test_verify_audit_command_names_the_broken_row(sqlite_clinic: Clinic, sqlite_url: str) -> None:
    _workflow(sqlite_clinic)
    environment = {**os.environ, "SARCOKIT_DATABASE_URL": sqlite_url}
    command = [SARCOKIT, "clinic", "verify-audit"]
    intact = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
    assert intact.returncode == 0, intact.stderr
    assert "intact" in intact.stdout
    _tamper(sqlite_clinic.app.state.engine, "UPDATE audit_log SET action = 'x' WHERE seq = 2")
    broken = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
    assert broken.returncode == 1
    assert "BROKEN" in broken.stderr and "changed" in broken.stderr


def _actions(engine: Engine) -> list[tuple[str, str]]:
    with session_factory(engine)() as db:
        return [
            (e.action, e.detail) for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]


def test_sign_in_sign_out_failures_denials_audit_reads_and_search_are_audited(
    clinic: Clinic,
) -> None:
    engine: Engine = clinic.app.state.engine
    browser, csrf = clinic.browser("clinician")
    browser.post("/logout", data={"csrf_token": csrf})
    clinic.client().post(
        "/api/v1/auth/token",
        json={"username": clinic.usernames["admin"], "password": "my secret guess"},
    )
    assert clinic.api("researcher").get("/api/v1/patients").status_code == 403
    clinic.api("admin").get("/api/v1/audit")
    api = clinic.api("clinician")
    first, second = add_patient(api, "S1", "Zhou"), add_patient(api, "S2", "Zhao")
    api.get("/api/v1/patients", params={"q": "zh"})
    actions = _actions(engine)
    names = [a for a, _ in actions]
    for expected in (
        "auth.sign_in",
        "auth.sign_out",
        "auth.failure",
        "access.denied",
        "audit.read",
    ):
        assert expected in names, (expected, names)
    searches = [d for a, d in actions if a == "patient.search"]
    assert searches[-1] == f"2 shown: {second['id']},{first['id']}"
    # The trail keeps no search text and nothing that was typed as a password.
    assert all("my secret guess" not in d and "zh" not in d for _, d in actions)


# -- PostgreSQL: the clinic's own role cannot rewrite the audit log ---------------------------


@pytest.fixture
def owner_and_runtime(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A schema owned by one role, and a second role the clinic runs as."""
    suffix = secrets.token_hex(4)
    owner, runtime, schema = f"sk_owner_{suffix}", f"sk_app_{suffix}", f"sk_roles_{suffix}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE ROLE {owner} LOGIN"))
        connection.execute(text(f"CREATE ROLE {runtime} LOGIN"))
        connection.execute(text(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}"))
        connection.execute(text(f"GRANT CONNECT, TEMPORARY ON DATABASE test TO {owner}"))
    base = POSTGRES_URL.replace("postgres@", "{}@")
    option = f"?options=-csearch_path%3D{schema}"
    try:
        yield base.format(owner) + option, base.format(runtime) + option
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            connection.execute(text(f"DROP OWNED BY {owner}, {runtime}"))
            connection.execute(text(f"DROP ROLE {owner}"))
            connection.execute(text(f"DROP ROLE {runtime}"))
        admin.dispose()


def test_the_runtime_role_cannot_remove_audit_rows_or_triggers(
    owner_and_runtime: tuple[str, str], tmp_path: Path
) -> None:
    owner_url, runtime_url = owner_and_runtime
    environment = {
        **os.environ,
        "SARCOKIT_DATABASE_URL": runtime_url,
        "SARCOKIT_MIGRATION_DATABASE_URL": owner_url,
        "SARCOKIT_DATA_DIR": str(tmp_path / "var"),
    }
    name = runtime_url.split("//")[1].split("@")[0]
    migrated = subprocess.run(
        [SARCOKIT, "clinic", "migrate", "--grant-to", name],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    # The clinic runs, as the runtime role, and writes its audit rows.
    settings = Settings(
        database_url=runtime_url, data_dir=tmp_path / "var", migration_url=owner_url
    )
    from sarcokit.web.app import create_app

    app = create_app(settings)
    from sarcokit.web.db import transaction
    from sarcokit.web.store import create_user

    with transaction(app.state.sessions) as db:
        create_user(db, None, "admin_user", "Admin", PASSWORD, ["admin"])
    app.state.engine.dispose()
    attacks = [
        "UPDATE audit_log SET detail = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
        "DROP TRIGGER audit_log_no_change ON audit_log",
        "DROP TABLE audit_log CASCADE",
        "DROP FUNCTION audit_log_append_only() CASCADE",
        "ALTER TABLE audit_log RENAME TO audit_old",
        "UPDATE alembic_version SET version_num = '0001'",
        # Uploaded definition versions are kept: a visit is traced to the text by its hash.
        "DELETE FROM local_definitions",
        "TRUNCATE local_definitions",
        "DROP TRIGGER local_definitions_no_change ON local_definitions",
        "SET session_replication_role = replica",
    ]
    runtime = create_engine(runtime_url)
    for attack in attacks:
        refused = r"permission denied|must be owner|superuser"
        with pytest.raises(DBAPIError, match=refused), runtime.begin() as connection:
            connection.execute(text(attack))
    with runtime.begin() as connection:
        rows = connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
        connection.execute(
            text(
                "INSERT INTO audit_log (at, action, entity, detail, seq, prev_hash, hash) "
                "VALUES (now(), 'forged', 'x', '', 999, 'x', 'x')"
            )
        )
    runtime.dispose()
    assert rows >= 1
    # A forged row can be appended, but it does not fit the chain.
    with session_factory(make_engine(owner_url))() as db:
        assert not verify(db).intact
