"""Every /api/v1 endpoint on SQLite and PostgreSQL: contracts, refusals, and read-back of writes."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pypdf
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from sarcokit.web import security
from sarcokit.web.db import transaction
from sarcokit.web.models import Patient, Visit
from web.support import PASSWORD, SEVERE_WOMAN, Clinic, add_patient, add_visit


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every clinic fixture hashes three passwords and every browser sign-in verifies one; at
    # argon2's production cost that dominates these tests. test_storage checks the real cost.
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


# definitions_sha256: the hash of the definition files that produced the result (issue 11).
RESULT_KEYS = {
    "id",
    "contract_version",
    "lang",
    "derived",
    "screening",
    "definitions",
    "secondary",
    "definitions_sha256",
}
CJK = range(0x4E00, 0xA000)


def _chinese(text: str) -> bool:
    return any(ord(c) in CJK for c in text)


def _error_field(response: Any) -> str:
    field: str = response.json()["error"]["field"]
    return field


def _patient_count(clinic: Clinic) -> int:
    with transaction(clinic.app.state.sessions) as db:
        return db.scalar(select(func.count()).select_from(Patient)) or 0


def _user_id(clinic: Clinic, role: str) -> int:
    users = clinic.api("admin").get("/api/v1/users").json()
    return next(int(u["id"]) for u in users if u["username"] == clinic.usernames[role])


# -- /assess ---------------------------------------------------------------------------------


def test_assess_returns_the_result_contract_for_the_awgs_example(clinic: Clinic) -> None:
    record = {"id": "w1", "sex": "female", "age": 75, **SEVERE_WOMAN}
    response = clinic.api("clinician").post("/api/v1/assess", json=record)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == RESULT_KEYS
    assert body["id"] == "w1"
    assert body["derived"]["asmi_kg_m2"] == 5.29
    severe = body["definitions"]["awgs2019"]
    assert severe["category"] == "severe_sarcopenia"
    assert severe["components"] == {
        "strength": "low",
        "muscle_quantity": "low",
        "physical_performance": "low",
    }
    # The clinic's default definitions, AWGS 2019 leading, when none is asked for.
    assert list(body["definitions"]) == ["awgs2019", "ewgsop2"]
    _assess_under_ewgsop2_only(clinic)
    _assess_in_chinese(clinic)


def _assess_under_ewgsop2_only(clinic: Clinic) -> None:
    # EWGSOP2 (Cruz-Jentoft 2019, Table 3): women's grip cut-off is < 16 kg, so 16.0 kg is
    # normal strength, and normal strength ends the algorithm at no sarcopenia.
    record = {"id": "w1", "sex": "female", "age": 75, **SEVERE_WOMAN}
    response = clinic.api("researcher").post("/api/v1/assess?definitions=ewgsop2", json=record)
    assert response.status_code == 200, response.text
    definitions = response.json()["definitions"]
    assert list(definitions) == ["ewgsop2"]
    assert definitions["ewgsop2"]["category"] == "no_sarcopenia"
    assert definitions["ewgsop2"]["components"]["strength"] == "normal"


def _assess_in_chinese(clinic: Clinic) -> None:
    record = {"id": "w1", "sex": "female", "age": 75, **SEVERE_WOMAN}
    english = clinic.api("admin").post("/api/v1/assess?lang=en", json=record).json()
    response = clinic.api("admin").post("/api/v1/assess?lang=zh-CN", json=record)
    assert response.status_code == 200, response.text
    reasons = response.json()["definitions"]["awgs2019"]["reasons"]
    assert reasons and all(_chinese(r) for r in reasons)
    assert any("严重肌少症" in r for r in reasons)
    assert not any(_chinese(r) for r in english["definitions"]["awgs2019"]["reasons"])
    # Categories are codes, not words, so the language changes only the prose.
    assert response.json()["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"


def _assess_refuses_a_unit_slip(clinic: Clinic) -> None:
    # 158 entered as metres is a height in centimetres; it must be refused, not assessed.
    record = {"id": "w1", "sex": "female", "age": 75, "height_m": 158}
    response = clinic.api("clinician").post("/api/v1/assess", json=record)
    assert response.status_code == 422
    assert _error_field(response) == "height_m"
    assert response.json()["error"]["value"] == 158


def _assess_refusals_speak_of_api_fields(clinic: Clinic) -> None:
    # Issue 12: an API error suggested the CLI flag `--sex-coding`. The API has no flags: its
    # errors name the JSON field and the values it takes.
    api = clinic.api("clinician")
    for record, field in (
        ({"id": "w1", "sex": 2, "age": 75}, "sex"),
        ({"id": "w1", "sex": "w", "age": 75}, "sex"),
        (
            {"id": "w1", "sex": "female", "age": 75, "grip_kg_trials": [16, 250]},
            "grip_kg_trials[2]",
        ),
    ):
        response = api.post("/api/v1/assess", json=record)
        assert response.status_code == 422, record
        error = response.json()["error"]
        assert error["field"] == field, error
        for problem in error["problems"]:
            text = f"{problem['message']} {problem['expected']}"
            assert "--" not in text and "sarcokit " not in text, text
        if field == "sex":
            assert "male" in error["expected"] and "female" in error["expected"], error


def _assess_refuses_an_unknown_field(clinic: Clinic) -> None:
    record = {"id": "w1", "sex": "female", "age": 75, "grip_strength": 20}
    response = clinic.api("clinician").post("/api/v1/assess", json=record)
    assert response.status_code == 422
    assert _error_field(response) == "grip_strength"


def _assess_refuses_bodies_that_are_not_an_object(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    for body in ([1, 2], "text", 3, None):
        response = api.post("/api/v1/assess", json=body)
        assert response.status_code == 422, body
        assert _error_field(response) == "body"
    broken = api.post(
        "/api/v1/assess", content=b'{"sex": "female",', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert _error_field(broken) == "body"


def _assess_refuses_an_unknown_definition(clinic: Clinic) -> None:
    record = {"id": "w1", "sex": "female", "age": 75, **SEVERE_WOMAN}
    response = clinic.api("clinician").post("/api/v1/assess?definitions=ewgsop3", json=record)
    assert response.status_code == 422
    assert _error_field(response) == "definitions"


def _assess_refuses_an_unknown_language(clinic: Clinic) -> None:
    record = {"id": "w1", "sex": "female", "age": 75, **SEVERE_WOMAN}
    response = clinic.api("clinician").post("/api/v1/assess?lang=fr", json=record)
    assert response.status_code == 422
    assert _error_field(response) == "language"


def test_assess_refusals_name_the_field(clinic: Clinic) -> None:
    _assess_refuses_a_unit_slip(clinic)
    _assess_refuses_an_unknown_field(clinic)
    _assess_refuses_bodies_that_are_not_an_object(clinic)
    _assess_refuses_an_unknown_definition(clinic)
    _assess_refuses_an_unknown_language(clinic)
    _assess_refusals_speak_of_api_fields(clinic)


# -- patients --------------------------------------------------------------------------------


def test_patient_create_read_update_round_trip(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    created = add_patient(api, "MRN-001", "Wang Fang", "female", "1940-07-15")
    assert created["record_number"] == "MRN-001"
    read = api.get(f"/api/v1/patients/{created['id']}")
    assert read.status_code == 200
    assert read.json() == created
    change = {
        "record_number": "MRN-001B",
        "name": "Wang Fang",
        "sex": "female",
        "date_of_birth": "1940-07-16",
    }
    updated = api.put(f"/api/v1/patients/{created['id']}", json=change)
    assert updated.status_code == 200, updated.text
    again = api.get(f"/api/v1/patients/{created['id']}").json()
    assert again == {"id": created["id"], **change}
    assert api.get("/api/v1/patients/999999").status_code == 404
    _duplicate_record_number_is_a_conflict(clinic)


def test_patient_search_by_record_number_and_name(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    first = add_patient(api, "MRN-1001", "Zhang Wei", "male", "1950-01-01")
    second = add_patient(api, "MRN-2002", "Chen Jing", "female", "1952-02-02")
    third = add_patient(api, "OTHER-3", "Liu Yang", "male", "1948-03-03")

    def found(query: str) -> set[int]:
        response = api.get("/api/v1/patients", params={"q": query})
        assert response.status_code == 200
        return {p["id"] for p in response.json()}

    assert found("MRN-1001") == {first["id"]}
    assert found("mrn-") == {first["id"], second["id"]}
    assert found("chen j") == {second["id"]}
    assert found("ZHANG") == {first["id"]}
    assert found("ang") == {first["id"], third["id"]}
    assert found("nobody") == set()
    assert len(found("")) == 3
    _patient_refusals_name_the_field(clinic)


def _duplicate_record_number_is_a_conflict(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    before = _patient_count(clinic)
    add_patient(api, "DUP-1")
    again = api.post(
        "/api/v1/patients",
        json={"record_number": "DUP-1", "name": "B", "sex": "male", "date_of_birth": "1950-01-01"},
    )
    assert again.status_code == 409
    other = add_patient(api, "DUP-2")
    clash = api.put(
        f"/api/v1/patients/{other['id']}",
        json={"record_number": "DUP-1", "name": "B", "sex": "male", "date_of_birth": "1950-01-01"},
    )
    assert clash.status_code == 409
    assert api.get(f"/api/v1/patients/{other['id']}").json()["record_number"] == "DUP-2"
    assert _patient_count(clinic) == before + 2


def _patient_refusals_name_the_field(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    before = _patient_count(clinic)
    good = {"record_number": "R1", "name": "A", "sex": "female", "date_of_birth": "1950-01-01"}
    cases = {
        "sex": {**good, "sex": "f"},
        "date_of_birth": {**good, "date_of_birth": "1950-13-01"},
        "name": {**good, "name": "   "},
        "record_number": {**good, "record_number": ""},
        "nickname": {**good, "nickname": "x"},
    }
    for field, body in cases.items():
        response = api.post("/api/v1/patients", json=body)
        assert response.status_code == 422, (field, response.text)
        assert _error_field(response) == field
    future = (date.today() + timedelta(days=1)).isoformat()
    response = api.post("/api/v1/patients", json={**good, "date_of_birth": future})
    assert response.status_code == 422
    assert _error_field(response) == "date_of_birth"
    broken = api.post(
        "/api/v1/patients", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert _error_field(broken) == "body"
    assert _patient_count(clinic) == before


# -- visits ----------------------------------------------------------------------------------


def test_visit_create_list_read_and_result(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api)
    created = add_visit(api, patient["id"])
    assert created["patient_id"] == patient["id"]
    assert created["visit_date"] == "2026-01-10"
    assert created["definitions"] == ["awgs2019", "ewgsop2"]
    assert created["result"]["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"
    assert created["result"]["definitions"]["ewgsop2"]["category"] == "no_sarcopenia"
    assert set(created["result"]) == RESULT_KEYS
    # The subject of the result is the patient record, whatever the visit says.
    assert created["result"]["id"] == str(patient["id"])

    listed = api.get(f"/api/v1/patients/{patient['id']}/visits")
    assert listed.status_code == 200
    assert [v["id"] for v in listed.json()] == [created["id"]]
    read = api.get(f"/api/v1/visits/{created['id']}")
    assert read.status_code == 200
    assert read.json() == created
    result = api.get(f"/api/v1/visits/{created['id']}/result")
    assert result.status_code == 200
    assert result.json() == created["result"]
    chinese = api.get(f"/api/v1/visits/{created['id']}/result?lang=zh-CN").json()
    assert all(_chinese(r) for r in chinese["definitions"]["awgs2019"]["reasons"])
    assert api.get("/api/v1/visits/999999").status_code == 404
    assert api.get("/api/v1/patients/999999/visits").status_code == 404
    _visits_are_listed_oldest_first(clinic)


def _visits_are_listed_oldest_first(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "ORDER-1")
    later = add_visit(api, patient["id"], visit_date="2026-06-01")
    earlier = add_visit(api, patient["id"], visit_date="2025-06-01")
    listed = api.get(f"/api/v1/patients/{patient['id']}/visits").json()
    assert [v["id"] for v in listed] == [earlier["id"], later["id"]]


def test_visit_refuses_fields_owned_by_the_patient_record(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api)
    for field, value in (("sex", "male"), ("age", 40), ("id", "other")):
        response = api.post(
            f"/api/v1/patients/{patient['id']}/visits",
            json={"visit_date": "2026-01-10", "measurements": {**SEVERE_WOMAN, field: value}},
        )
        assert response.status_code == 422, field
        assert _error_field(response) == field
    slip = api.post(
        f"/api/v1/patients/{patient['id']}/visits",
        json={"visit_date": "2026-01-10", "measurements": {"height_m": 158}},
    )
    assert slip.status_code == 422
    assert _error_field(slip) == "height_m"
    assert api.get(f"/api/v1/patients/{patient['id']}/visits").json() == []
    _visit_date_must_be_between_birth_and_today(clinic)


def _visit_date_must_be_between_birth_and_today(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "DATES-1", date_of_birth="1945-03-02")
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    for when in (tomorrow, "1945-03-01"):
        response = api.post(
            f"/api/v1/patients/{patient['id']}/visits",
            json={"visit_date": when, "measurements": SEVERE_WOMAN},
        )
        assert response.status_code == 422, when
        assert _error_field(response) == "visit_date"
    malformed = api.post(
        f"/api/v1/patients/{patient['id']}/visits",
        json={"visit_date": "10/01/2026", "measurements": SEVERE_WOMAN},
    )
    assert malformed.status_code == 422
    assert _error_field(malformed) == "visit_date"
    assert api.get(f"/api/v1/patients/{patient['id']}/visits").json() == []


def test_settings_change_the_definitions_of_new_visits(clinic: Clinic) -> None:
    _settings_refuse_unknown_or_no_definitions(clinic)
    admin, api = clinic.api("admin"), clinic.api("clinician")
    assert admin.get("/api/v1/settings").json() == {"definitions": ["awgs2019", "ewgsop2"]}
    patient = add_patient(api)
    before = add_visit(api, patient["id"], visit_date="2025-12-01")
    changed = admin.put("/api/v1/settings", json={"definitions": ["ewgsop2"]})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"definitions": ["ewgsop2"]}
    assert admin.get("/api/v1/settings").json() == {"definitions": ["ewgsop2"]}
    after = add_visit(api, patient["id"])
    assert after["definitions"] == ["ewgsop2"]
    assert list(after["result"]["definitions"]) == ["ewgsop2"]
    assert after["result"]["definitions"]["ewgsop2"]["category"] == "no_sarcopenia"
    # A visit keeps the definitions it was recorded under.
    kept = api.get(f"/api/v1/visits/{before['id']}").json()
    assert kept["definitions"] == ["awgs2019", "ewgsop2"]
    assert kept["result"]["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"


def _settings_refuse_unknown_or_no_definitions(clinic: Clinic) -> None:
    admin = clinic.api("admin")
    for definitions in (["ewgsop3"], [], ["ewgsop2", "nope"]):
        response = admin.put("/api/v1/settings", json={"definitions": definitions})
        assert response.status_code == 422, definitions
        assert _error_field(response) == "definitions"
    assert admin.get("/api/v1/settings").json() == {"definitions": ["awgs2019", "ewgsop2"]}


# -- the report ------------------------------------------------------------------------------


def _report_text(clinic: Clinic, record_number: str, query: str = "") -> str:
    api = clinic.api("clinician")
    visit = add_visit(api, add_patient(api, record_number)["id"])
    response = api.get(f"/api/v1/visits/{visit['id']}/report.pdf{query}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    pages = pypdf.PdfReader(io.BytesIO(response.content)).pages
    # Line breaks fall anywhere in extracted CJK text, so white space is dropped.
    return "".join("".join(page.extract_text() for page in pages).split())


def test_report_pdf_in_the_reader_language(clinic: Clinic) -> None:
    chinese = _report_text(clinic, "PDF-77", "?lang=zh-CN")
    assert "PDF-77" in chinese
    assert "严重肌少症" in chinese
    english = _report_text(clinic, "PDF-78")
    assert "PDF-78" in english
    assert "严重肌少症" not in english
    assert clinic.api("clinician").get("/api/v1/visits/999999/report.pdf").status_code == 404


def test_report_page_one_leads_with_the_lead_definition_and_the_file_is_named(
    clinic: Clinic,
) -> None:
    api = clinic.api("clinician")
    visit = add_visit(api, add_patient(api, "MRN 12/7")["id"], visit_date="2026-01-10")
    response = api.get(f"/api/v1/visits/{visit['id']}/report.pdf")
    assert response.status_code == 200
    # The record number, made safe for a file name, and the visit date.
    assert 'filename="sarcokit-MRN_12_7-2026-01-10.pdf"' in response.headers["content-disposition"]
    pages = pypdf.PdfReader(io.BytesIO(response.content)).pages
    first = " ".join(pages[0].extract_text().split())
    # The clinic's lead definition (AWGS 2019, the default) comes first with its category and
    # reasons; the other definitions, then the measurements, after it.
    assert first.index("AWGS 2019") < first.index("severe sarcopenia")
    assert "grip 16.0 kg < 18 kg (women) → low strength" in first
    assert "Start progressive resistance exercise." in first
    whole = " ".join(" ".join(p.extract_text() for p in pages).split())
    lead = whole.index("AWGS 2019")
    assert lead < whole.index("Other definitions") < whole.index("EWGSOP2")
    assert whole.index("EWGSOP2") < whole.index("Measurements")


# -- research export -------------------------------------------------------------------------


def test_export_is_de_identified_and_caps_age_at_90(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    old = add_patient(api, "OLD-1", "Very Old", "female", "1930-01-01")
    young = add_patient(api, "YNG-1", "Younger", "male", "1950-06-30")
    add_visit(api, old["id"], visit_date="2025-01-10")
    add_visit(api, old["id"], visit_date="2026-01-10")
    add_visit(api, young["id"], {"grip_kg": 30.0, "gait_speed_m_s": 1.1}, "2026-01-10")
    response = clinic.api("researcher").get("/api/v1/export")
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 3
    identifying = {"name", "record_number", "date_of_birth", "visit_date", "id", "patient_id"}
    for row in rows:
        assert not identifying & set(row), row
        flat = repr(row)
        for secret in ("OLD-1", "YNG-1", "Very Old", "Younger", "1930", "2025-01-10"):
            assert secret not in flat
    # Born 1930: 95 and 96 at the visits, reported as 90 (HIPAA Safe Harbor).
    old_rows = [r for r in rows if r["sex"] == "female"]
    assert [r["age"] for r in old_rows] == [90, 90]
    assert sorted(r["days_since_first_visit"] for r in old_rows) == [0, 365]
    assert len({r["subject"] for r in old_rows}) == 1
    young_row = next(r for r in rows if r["sex"] == "male")
    assert young_row["age"] == 75
    assert young_row["subject"] != old_rows[0]["subject"]
    assert old_rows[0]["awgs2019_category"] == "severe_sarcopenia"


# -- accounts and tokens ---------------------------------------------------------------------


def test_token_exchange(clinic: Clinic) -> None:
    client = clinic.client()
    username = clinic.usernames["clinician"]
    good = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert good.status_code == 201, good.text
    token = good.json()["token"]
    assert good.json()["token_type"] == "bearer"
    assert token not in clinic.tokens.values()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/patients", headers=headers).status_code == 200
    bad = client.post("/api/v1/auth/token", json={"username": username, "password": "wrong one"})
    assert bad.status_code == 401
    assert "token" not in bad.json()
    bad_token = {"Authorization": f"Bearer {token}x"}
    assert client.get("/api/v1/patients", headers=bad_token).status_code == 401


def test_token_exchange_is_throttled_after_five_failures(clinic: Clinic) -> None:
    client = clinic.client()
    username = clinic.usernames["clinician"]
    for _ in range(5):
        failed = client.post("/api/v1/auth/token", json={"username": username, "password": "no"})
        assert failed.status_code == 401
    blocked = client.post("/api/v1/auth/token", json={"username": username, "password": "no"})
    assert blocked.status_code == 429
    # Throttled means throttled: even the right password is refused inside the window.
    right = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert right.status_code == 429


def test_users_create_list_change_roles_and_deactivate(clinic: Clinic) -> None:
    _user_refusals(clinic)
    admin = clinic.api("admin")
    created = admin.post(
        "/api/v1/users",
        json={"username": "nurse.li", "password": "a long passphrase", "roles": ["clinician"]},
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert "password" not in user and "password_hash" not in user
    assert user["roles"] == "clinician" and user["active"] is True
    listed = admin.get("/api/v1/users").json()
    assert "nurse.li" in [u["username"] for u in listed]
    assert len(listed) == 4

    token = clinic.client().post(
        "/api/v1/auth/token", json={"username": "nurse.li", "password": "a long passphrase"}
    )
    assert token.status_code == 201
    nurse = clinic.client()
    nurse.headers["Authorization"] = f"Bearer {token.json()['token']}"
    assert nurse.get("/api/v1/patients").status_code == 200
    assert nurse.get("/api/v1/export").status_code == 403

    researcher = admin.patch(f"/api/v1/users/{user['id']}", json={"roles": ["researcher"]})
    assert researcher.status_code == 200
    assert researcher.json()["roles"] == "researcher"
    assert nurse.get("/api/v1/patients").status_code == 403
    assert nurse.get("/api/v1/export").status_code == 200

    off = admin.patch(f"/api/v1/users/{user['id']}", json={"active": False})
    assert off.status_code == 200
    assert off.json()["active"] is False
    assert nurse.get("/api/v1/export").status_code == 401
    relogin = clinic.client().post(
        "/api/v1/auth/token", json={"username": "nurse.li", "password": "a long passphrase"}
    )
    assert relogin.status_code == 401
    listed_after = {u["username"]: u for u in admin.get("/api/v1/users").json()}
    assert listed_after["nurse.li"]["active"] is False


def _user_refusals(clinic: Clinic) -> None:
    admin = clinic.api("admin")
    short = admin.post(
        "/api/v1/users", json={"username": "x1", "password": "short", "roles": ["clinician"]}
    )
    assert short.status_code == 422
    assert _error_field(short) == "password"
    both = admin.post(
        "/api/v1/users",
        json={"username": "x2", "password": "long enough pw", "roles": ["clinician", "researcher"]},
    )
    assert both.status_code == 422
    assert _error_field(both) == "roles"
    taken = admin.post(
        "/api/v1/users",
        json={
            "username": clinic.usernames["clinician"],
            "password": "long enough pw",
            "roles": ["clinician"],
        },
    )
    assert taken.status_code == 409
    myself = admin.patch(f"/api/v1/users/{_user_id(clinic, 'admin')}", json={"active": False})
    assert myself.status_code == 422
    assert _error_field(myself) == "active"
    assert admin.patch("/api/v1/users/999999", json={"active": False}).status_code == 404
    assert len(admin.get("/api/v1/users").json()) == 3


# -- audit -----------------------------------------------------------------------------------


def test_audit_records_who_read_a_patient(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api)
    assert api.get(f"/api/v1/patients/{patient['id']}").status_code == 200
    response = clinic.api("admin").get("/api/v1/audit")
    assert response.status_code == 200
    events = response.json()
    clinician_id = _user_id(clinic, "clinician")
    reads = [
        e
        for e in events
        if e["action"] == "patient.read"
        and e["entity"] == "patient"
        and e["entity_id"] == patient["id"]
    ]
    assert len(reads) == 1
    assert reads[0]["user_id"] == clinician_id
    created = [e for e in events if e["action"] == "patient.create"]
    assert [e["user_id"] for e in created] == [clinician_id]
    # Newest first: the read came after the registration.
    assert events.index(reads[0]) < events.index(created[0])
    # The audit trail itself must hold no patient data.
    assert "Li Hua" not in response.text and "A1" not in {e["detail"] for e in events}
    limited = clinic.api("admin").get("/api/v1/audit?limit=1").json()
    assert len(limited) == 1
    # Reading the audit log is itself audited: the newest row is the previous read of it.
    assert limited[0]["id"] == max(e["id"] for e in events) + 1
    assert limited[0]["action"] == "audit.read"


# -- the body limit --------------------------------------------------------------------------


def test_oversized_bodies_are_refused_and_nothing_is_stored(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api)
    before = _patient_count(clinic)
    huge = "x" * (256 * 1024 + 1)
    body = {"record_number": "BIG", "name": huge, "sex": "male", "date_of_birth": "1950-01-01"}
    response = api.post("/api/v1/patients", json=body)
    assert response.status_code == 413
    assert _error_field(response) == "body"
    assert _patient_count(clinic) == before

    def chunks() -> Any:
        # No Content-Length: the limit must hold while the body streams in.
        yield b'{"visit_date": "2026-01-10", "measurements": {"grip_kg": 20, "note": "'
        for _ in range(300):
            yield b"y" * 1024
        yield b'"}}'

    streamed = api.post(
        f"/api/v1/patients/{patient['id']}/visits",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert _error_field(streamed) == "body"
    streamed_assess = api.post(
        "/api/v1/assess", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed_assess.status_code == 413
    with transaction(clinic.app.state.sessions) as db:
        assert db.scalar(select(func.count()).select_from(Visit)) == 0
    # A body just under the limit is still read (and refused for its content, not its size).
    under = api.post("/api/v1/patients", json={**body, "name": "x" * (200 * 1024)})
    assert under.status_code == 422
    assert _error_field(under) == "name"
