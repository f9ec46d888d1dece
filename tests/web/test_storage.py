"""Storage on SQLite and PostgreSQL: migrations, pragmas, the append-only audit log, secrets."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from sarcokit.web.db import make_engine, transaction
from sarcokit.web.models import AuditEvent, Base, Patient, Visit
from sarcokit.web.store import PatientIn, create_patient, create_user
from web.support import PASSWORD, Clinic, add_patient, add_visit, make_app

TABLES = {
    "alembic_version",
    "api_tokens",
    "audit_log",
    "audit_head",
    "local_definitions",
    "login_failures",
    "login_sessions",
    "patients",
    "settings",
    "users",
    "visits",
    "visit_revisions",
    "visit_voids",
    "patient_identifiers",
    "smart_launches",
}


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("sarcokit.web").joinpath("migrations")))
    return config


def _head() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _version(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [
            row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))
        ]


def _audit_guards(engine: Engine) -> int:
    """How many triggers guard the audit log."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = (
                "SELECT count(*) FROM sqlite_master "
                "WHERE type = 'trigger' AND tbl_name = 'audit_log'"
            )
        else:
            query = (
                "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid = 'audit_log'::regclass"
            )
        return int(connection.execute(text(query)).scalar_one())


def _register(clinic: Clinic, record_number: str = "S1") -> int:
    # Born on a leap day: test_a_visit_round_trips_exactly reads the date back.
    patient = add_patient(
        clinic.api("clinician"), record_number, "Zhao Min", date_of_birth="1940-02-29"
    )
    patient_id: int = patient["id"]
    return patient_id


def test_migrations_run_from_empty_to_head_and_again(database_url: str, tmp_path: Path) -> None:
    empty = make_engine(database_url)
    assert inspect(empty).get_table_names() == []
    first = make_app(database_url, tmp_path / "var")
    try:
        engine: Engine = first.state.engine
        assert set(inspect(engine).get_table_names()) == TABLES
        assert _version(engine) == [_head()]
        # The models and the migrations describe the same schema.
        with engine.connect() as connection:
            drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert drift == []
        guards = _audit_guards(engine)
        assert guards >= 2
        with transaction(first.state.sessions) as db:
            user = create_user(db, None, "first_admin", "", PASSWORD, ["admin", "clinician"])
            create_patient(db, user, PatientIn("KEEP-1", "Kept", "male", date(1950, 5, 5)))

        # A restart (or a second worker) runs the migrations again on the same database.
        second = make_app(database_url, tmp_path / "var")
        try:
            again: Engine = second.state.engine
            assert _version(again) == [_head()]
            assert set(inspect(again).get_table_names()) == TABLES
            assert _audit_guards(again) == guards
            with transaction(second.state.sessions) as db:
                kept = db.scalars(select(Patient)).all()
                assert [(p.record_number, p.name) for p in kept] == [("KEEP-1", "Kept")]
                assert db.scalar(select(func.count()).select_from(AuditEvent)) == 2
        finally:
            second.state.engine.dispose()
    finally:
        first.state.engine.dispose()
        empty.dispose()


def test_sqlite_uses_wal_and_enforces_foreign_keys(sqlite_clinic: Clinic) -> None:
    engine: Engine = sqlite_clinic.app.state.engine
    # Every pooled connection gets the pragmas, not just the first one.
    connections = [engine.connect() for _ in range(3)]
    try:
        for connection in connections:
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() >= 1000
    finally:
        for connection in connections:
            connection.close()


def test_foreign_keys_are_enforced(clinic: Clinic) -> None:
    engine: Engine = clinic.app.state.engine
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO visits (patient_id, visit_date, measurements, result, definitions,"
                " engine_version, created_at, created_by) VALUES (999999, '2026-01-01', '{}',"
                " '{}', '[]', 'x', '2026-01-01 00:00:00', 1)"
            )
        )
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM visits")).scalar_one() == 0


def test_the_audit_log_refuses_update_and_delete(clinic: Clinic) -> None:
    patient_id = _register(clinic)
    assert clinic.api("clinician").get(f"/api/v1/patients/{patient_id}").status_code == 200
    engine: Engine = clinic.app.state.engine

    def snapshot() -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM audit_log ORDER BY id"))
            return [tuple(row) for row in rows]

    before = snapshot()
    assert [row[3] for row in before][-2:] == ["patient.create", "patient.read"]
    refused = [
        "UPDATE audit_log SET action = 'nothing.happened'",
        "UPDATE audit_log SET detail = 'rewritten'",
        "UPDATE audit_log SET user_id = NULL",
        "UPDATE audit_log SET user_id = NULL WHERE action = 'patient.read'",
        "DELETE FROM audit_log WHERE action = 'patient.read'",
        "DELETE FROM audit_log",
    ]
    if engine.dialect.name == "postgresql":
        refused.append("TRUNCATE audit_log")
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    assert snapshot() == before
    # Appending still works.
    assert clinic.api("clinician").get(f"/api/v1/patients/{patient_id}").status_code == 200
    assert len(snapshot()) == len(before) + 1


def test_a_visit_round_trips_exactly(clinic: Clinic) -> None:
    patient_id = _register(clinic)
    measurements: dict[str, Any] = {
        "grip_kg_trials": [15.5, 16.0, 14.25],
        "gait_speed_m_s": 0.73,
        "height_cm": 150.5,
        "weight_kg": 48.3,
        "asm_kg": 11.9,
        "asm_method": "dxa",
        "calf_cm": 30.1,
        "chair_stand_5x_s": 14.6,
        "sppb": 7,
        "sarc_f_strength": 1,
        "sarc_f_assistance_walking": 0,
        "sarc_f_rise_from_chair": 2,
        "sarc_f_climb_stairs": 1,
        "sarc_f_falls": 0,
        "msra_hospitalised_last_year": "once",
        "msra_walks_1000m": True,
    }
    api = clinic.api("clinician")
    # A leap day, for a patient born on one.
    visit = add_visit(api, patient_id, measurements, "2024-02-29")
    assert visit["measurements"] == measurements
    read = api.get(f"/api/v1/visits/{visit['id']}").json()
    assert read["measurements"] == measurements
    assert read["visit_date"] == "2024-02-29"
    assert read["result"] == visit["result"]

    # Read back through a separate engine: what the database holds, not a cached object.
    engine = make_engine(clinic.app.state.settings.database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(Visit).where(Visit.id == visit["id"])).one()
            born = connection.execute(
                select(Patient.date_of_birth).where(Patient.id == patient_id)
            ).scalar_one()
        assert stored.measurements == measurements
        assert [type(v) for v in stored.measurements.values()] == [
            type(v) for v in measurements.values()
        ]
        assert stored.visit_date == date(2024, 2, 29)
        assert born == date(1940, 2, 29)
        assert stored.definitions == ["awgs2019", "ewgsop2"]
        # The result kept at saving is the one the clinician was shown.
        assert stored.result == visit["result"]
    finally:
        engine.dispose()


def test_concurrent_visits_are_all_kept(clinic: Clinic) -> None:
    patients = [_register(clinic, "C1"), _register(clinic, "C2")]
    threads, per_thread = 8, 10
    acknowledged: dict[int, float] = {}
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        api = clinic.api("clinician")
        start.wait()
        for n in range(per_thread):
            grip = round(10 + worker + n / 100, 2)
            try:
                response = api.post(
                    f"/api/v1/patients/{patients[(worker + n) % 2]}/visits",
                    json={"visit_date": "2026-01-10", "measurements": {"grip_kg": grip}},
                )
            except Exception as error:
                # A request that raised is a lost write too; it is reported below.
                with lock:
                    failures.append(f"{worker}/{n}: {error!r}")
                continue
            with lock:
                if response.status_code == 201:
                    acknowledged[response.json()["id"]] = grip
                else:
                    failures.append(f"{worker}/{n}: {response.status_code} {response.text}")

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in pool)
    assert failures == []
    assert len(acknowledged) == threads * per_thread
    with transaction(clinic.app.state.sessions) as db:
        stored = {v.id: v.measurements["grip_kg"] for v in db.scalars(select(Visit))}
        created = db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "visit.create")
        )
    assert stored == acknowledged
    assert created == threads * per_thread
    listed = [
        v["id"]
        for p in patients
        for v in clinic.api("clinician").get(f"/api/v1/patients/{p}/visits").json()
    ]
    assert sorted(listed) == sorted(acknowledged)


def test_passwords_are_argon2id_hashes(clinic: Clinic) -> None:
    admin = clinic.api("admin")
    created = admin.post(
        "/api/v1/users",
        json={"username": "nurse.wu", "password": "first passphrase", "roles": ["clinician"]},
    )
    assert created.status_code == 201
    changed = admin.patch(
        f"/api/v1/users/{created.json()['id']}", json={"password": "second passphrase"}
    )
    assert changed.status_code == 200
    with clinic.app.state.engine.connect() as connection:
        hashes = dict(connection.execute(text("SELECT username, password_hash FROM users")).all())
    assert len(hashes) == 4
    hasher = PasswordHasher()
    for username, stored in hashes.items():
        assert stored.startswith("$argon2id$"), username
        # At least OWASP's minimum argon2id cost (19 MiB of memory, 2 passes).
        cost = dict(part.split("=") for part in stored.split("$")[3].split(","))
        assert int(cost["m"]) >= 19 * 1024 and int(cost["t"]) >= 2, (username, cost)
        assert PASSWORD not in stored and "passphrase" not in stored
    assert hasher.verify(hashes[clinic.usernames["clinician"]], PASSWORD)
    assert hasher.verify(hashes["nurse.wu"], "second passphrase")
    # Two accounts with the same password get different hashes (salted).
    assert hashes[clinic.usernames["admin"]] != hashes[clinic.usernames["clinician"]]


def _all_rows(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        rows: list[str] = []
        for table in inspect(engine).get_table_names():
            quoted = engine.dialect.identifier_preparer.quote(table)
            rows += [
                repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {quoted}"))
            ]
    return rows


def test_tokens_are_never_stored_in_clear(clinic: Clinic) -> None:
    issued = clinic.client().post(
        "/api/v1/auth/token",
        json={"username": clinic.usernames["researcher"], "password": PASSWORD},
    )
    assert issued.status_code == 201
    browser, _ = clinic.browser("clinician")
    session = browser.cookies.get("sarcokit_session")
    assert session
    secrets = [*clinic.tokens.values(), issued.json()["token"], session]
    rows = _all_rows(clinic.app.state.engine)
    assert rows
    for secret in secrets:
        assert not [row for row in rows if secret in row]
    # What is kept is the SHA-256 digest, which is how a presented token is recognised.
    with clinic.app.state.engine.connect() as connection:
        digests = set(connection.execute(text("SELECT token_hash FROM api_tokens")).scalars())
        sessions = set(connection.execute(text("SELECT token_hash FROM login_sessions")).scalars())
    for token in [*clinic.tokens.values(), issued.json()["token"]]:
        assert hashlib.sha256(token.encode()).hexdigest() in digests
    assert hashlib.sha256(session.encode()).hexdigest() in sessions


def test_an_existing_database_upgrades_without_losing_visits(
    database_url: str, tmp_path: Path
) -> None:
    """A clinic on the first schema (0001) keeps its visits when 0002 adds corrections."""
    old = make_engine(database_url)
    config = _config()
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with old.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, display_name, password_hash, roles, language,"
                " active, created_at) VALUES (1, 'u', 'U', 'x', 'clinician', 'en', TRUE, :t)"
            ),
            {"t": "2026-01-01 00:00:00+00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO patients (id, record_number, name, sex, date_of_birth, created_at,"
                " created_by) VALUES (1, 'OLD-1', 'Old', 'female', :b, :t, 1)"
            ),
            {"b": "1945-01-01", "t": "2026-01-01 00:00:00+00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO visits (id, patient_id, visit_date, measurements, result,"
                " definitions, engine_version, created_at, created_by)"
                " VALUES (1, 1, :d, :m, :r, :defs, '0.1.0', :t, 1)"
            ),
            {
                "d": "2026-01-10",
                "m": '{"grip_kg": 15.0}',
                "r": "{}",
                "defs": '["awgs2019"]',
                "t": "2026-01-10 00:00:00+00:00",
            },
        )
    assert _version(old) == ["0001"]
    old.dispose()
    app = make_app(database_url, tmp_path / "var")
    engine: Engine = app.state.engine
    assert _version(engine) == [_head()]
    assert "visit_revisions" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT measurements FROM visits WHERE id = 1")).scalar_one()
    # SQLite hands JSON back as text, PostgreSQL as a parsed value.
    value = json.loads(kept) if isinstance(kept, str) else kept
    assert value == {"grip_kg": 15.0}
    engine.dispose()
