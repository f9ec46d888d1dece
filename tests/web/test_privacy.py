"""Patient data stays out of logs and exports; every access to it is audited."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from web.support import Clinic, add_patient, add_visit

# Distinctive enough that any occurrence in a log or export can only be this patient's data.
NAME = "Qiyuan Zhuangzhou"
RECORD = "MRN-847261"
BORN = "1938-07-19"
SECOND = {"record_number": "MRN-550013", "name": "Oksana Vereshchagina", "sex": "female"}
VISIT_DATES = ("2024-11-05", "2025-06-17")


def _workflow(clinic: Clinic) -> tuple[int, int]:
    """Everything a clinic does with one patient, through the pages and the API."""
    browser, token = clinic.browser("clinician")
    created = browser.post(
        "/patients/new",
        data={
            "csrf_token": token,
            "record_number": RECORD,
            "name": NAME,
            "sex": "female",
            "date_of_birth": BORN,
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    patient_id = int(created.headers["location"].rsplit("/", 1)[1])
    for query in (NAME.split()[1], RECORD):
        found = browser.get("/patients", params={"q": query})
        assert found.status_code == 200 and NAME in found.text
    saved = browser.post(
        f"/patients/{patient_id}/visits/new",
        data={
            "csrf_token": token,
            "visit_date": VISIT_DATES[0],
            "height_m": "150",
            "height_m__unit": "height_cm",
            "grip_kg__1": "16.0",
            "gait_speed_m_s": "0.7",
            "asm_kg": "11.9",
            "asm_method": "dxa",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    visit_id = int(saved.headers["location"].rsplit("/", 1)[1])
    for page in (
        f"/patients/{patient_id}",
        f"/patients/{patient_id}/edit",
        f"/visits/{visit_id}",
        f"/visits/{visit_id}/report",
        f"/visits/{visit_id}/report.pdf",
    ):
        assert browser.get(page).status_code == 200, page

    api = clinic.api("clinician")
    for url in (
        f"/api/v1/patients?q={NAME.split()[0]}",
        f"/api/v1/patients/{patient_id}",
        f"/api/v1/patients/{patient_id}/visits",
        f"/api/v1/visits/{visit_id}",
        f"/api/v1/visits/{visit_id}/result",
        f"/api/v1/visits/{visit_id}/report.pdf",
    ):
        assert api.get(url).status_code == 200, url
    # A refused write echoes the value back to the caller; it must still not reach a log.
    duplicate = api.post(
        "/api/v1/patients",
        json={"record_number": RECORD, "name": NAME, "sex": "female", "date_of_birth": BORN},
    )
    assert duplicate.status_code == 409
    assert clinic.api("researcher").get("/api/v1/export").status_code == 200
    researcher, _ = clinic.browser("researcher")
    assert researcher.get("/research/export.csv").status_code == 200
    return patient_id, visit_id


# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for the root and every logger that exists, propagating or not."""
    caplog.set_level(logging.DEBUG)
    detached = []
    for name, found in list(logging.root.manager.loggerDict.items()):
        if isinstance(found, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
            if not found.propagate:
                found.addHandler(caplog.handler)
                detached.append(found)
    yield caplog
    for found in detached:
        found.removeHandler(caplog.handler)


def _from_the_application(record: logging.LogRecord) -> bool:
    """Whether the server could write this record.

    httpx is the test's own client (a browser in production). SQLAlchemy's "Row" dumps are the
    query results, printed only when its engine logger is forced to DEBUG, as here; its SQL
    statements and their parameters are still checked.
    """
    if record.name.startswith(("httpx", "httpcore")):
        return False
    return not (record.name.startswith("sqlalchemy.engine") and record.msg == "Row %r")


def _logged_text(record: logging.LogRecord) -> str:
    parts = [str(record.msg), repr(record.args), record.getMessage()]
    if record.exc_text:
        parts.append(record.exc_text)
    return "\n".join(parts)


def test_no_patient_data_in_any_log(
    sqlite_clinic: Clinic, every_log: pytest.LogCaptureFixture
) -> None:
    _workflow(sqlite_clinic)
    records = every_log.records
    # The access log ran for every request, naming route templates instead of concrete paths.
    access = [r.getMessage() for r in records if r.name == "sarcokit.web.access"]
    assert any(m.startswith("GET /patients/{patient_id} 200") for m in access), access
    assert any(m.startswith("GET /api/v1/visits/{visit_id}/report.pdf 200") for m in access)
    assert any(m.startswith("GET /patients 200") for m in access)
    secrets = [NAME, *NAME.split(), RECORD, BORN, BORN.replace("-", "")]
    # SQL statements were captured too, with their parameters hidden (the engine's setting).
    assert any(r.name.startswith("sqlalchemy.engine") and "INSERT" in str(r.msg) for r in records)
    for record in filter(_from_the_application, records):
        logged = _logged_text(record)
        for secret in secrets:
            assert secret.lower() not in logged.lower(), (record.name, logged[:300])


# -- audit --------------------------------------------------------------------------------------


def _audit(clinic: Clinic) -> list[dict[str, Any]]:
    with clinic.app.state.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, at, user_id, action, entity, entity_id, detail FROM audit_log")
        )
        return [dict(row._mapping) for row in rows]


def _user_ids(clinic: Clinic) -> dict[str, int]:
    users = clinic.api("admin").get("/api/v1/users").json()
    return {u["username"]: u["id"] for u in users}


def test_every_patient_read_and_write_is_audited_with_user_and_time(clinic: Clinic) -> None:
    # The fixture's own events (accounts, hashed at full argon2 cost) may be seconds older on a
    # loaded machine: the times are checked for the events of the workflow below.
    before = {e["id"] for e in _audit(clinic)}
    started = datetime.now(UTC) - timedelta(seconds=1)
    patient_id, visit_id = _workflow(clinic)
    finished = datetime.now(UTC) + timedelta(seconds=1)
    ids = _user_ids(clinic)
    clinician, researcher = ids["clinician_user"], ids["researcher_user"]
    events = _audit(clinic)

    def done(action: str, user: int, entity_id: int | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in events
            if e["action"] == action
            and e["user_id"] == user
            and (entity_id is None or e["entity_id"] == entity_id)
        ]

    assert done("patient.create", clinician, patient_id)
    assert done("patient.read", clinician, patient_id)
    # Two page searches and one API search.
    assert len(done("patient.search", clinician)) >= 3
    assert done("visit.create", clinician, visit_id)
    assert done("visit.read", clinician, visit_id)
    # The printable page, its PDF and the API's PDF.
    assert len(done("visit.report", clinician, visit_id)) >= 3
    assert len(done("export.deidentified", researcher)) >= 2
    for event in events:
        moment = event["at"]
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        assert event["id"] in before or started <= moment <= finished, event
        assert event["user_id"] is not None, event
        # The audit says who touched which record, never what the record says or was searched.
        stored = f"{event['entity']} {event['detail']}".lower()
        for secret in (NAME, *NAME.split(), RECORD, BORN):
            assert secret.lower() not in stored, event


# -- de-identified export -----------------------------------------------------------------------


def test_the_research_export_is_deidentified_with_stable_pseudonyms(sqlite_clinic: Clinic) -> None:
    clinician = sqlite_clinic.api("clinician")
    first = add_patient(clinician, RECORD, NAME, date_of_birth=BORN)["id"]
    # Born 1930-03-04, 95 at the visit: Safe Harbor keeps ages under 90 only, so 90 is shown.
    second = add_patient(
        clinician, SECOND["record_number"], SECOND["name"], date_of_birth="1930-03-04"
    )["id"]
    add_visit(clinician, first, visit_date=VISIT_DATES[0])
    add_visit(clinician, first, visit_date=VISIT_DATES[1])
    add_visit(clinician, second, visit_date=VISIT_DATES[1])

    api = sqlite_clinic.api("researcher").get("/api/v1/export")
    assert api.status_code == 200
    researcher, _ = sqlite_clinic.browser("researcher")
    download = researcher.get("/research/export.csv")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    csv_rows = list(csv.DictReader(io.StringIO(download.text)))

    forbidden = [
        NAME,
        *NAME.split(),
        RECORD,
        BORN,
        "1930-03-04",
        SECOND["record_number"],
        SECOND["name"],
        *VISIT_DATES,
    ]
    for body in (api.text, download.text):
        for secret in forbidden:
            assert secret.lower() not in body.lower(), secret
    for rows in (api.json(), csv_rows):
        assert len(rows) == 3
        for row in rows:
            assert not {"name", "record_number", "date_of_birth", "visit_date", "patient_id"} & set(
                row
            )
        ages = sorted(int(row["age"]) for row in rows)
        # 1938-07-19 → 86 on 2024-11-05 and on 2025-06-17; the second patient is capped at 90.
        assert ages == [86, 86, 90]
        by_age = {int(row["age"]): row["subject"] for row in rows}
        firsts = [row["subject"] for row in rows if int(row["age"]) == 86]
        assert firsts[0] == firsts[1], "one patient, one pseudonym across visits"
        assert by_age[90] != firsts[0], "two patients, two pseudonyms"
        for subject in {row["subject"] for row in rows}:
            assert subject not in (str(first), str(second))
        days = sorted(int(row["days_since_first_visit"]) for row in rows if int(row["age"]) == 86)
        # Intervals replace dates: 5 Nov 2024 → 5 Jun 2025 is 30+31+31+28+31+30+31 = 212 days,
        # then 12 more to 17 Jun: 224.
        assert days == [0, 224]
    assert {r["subject"] for r in api.json()} == {r["subject"] for r in csv_rows}
