"""Input no JSON or form should carry gets a named 4xx in the documented shape, nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from sarcokit.web import report
from web.support import SEVERE_WOMAN, Clinic, add_patient, add_visit

SHAPE = {"field", "value", "expected", "message", "problems"}
DEEP = 5000

# A grip strength no JSON document for the clinic may hold, as raw JSON text. Python's json
# module reads the first five (NaN and infinities are not JSON; 1e309 overflows to infinity;
# an integer of 400 digits overflows every float), keeps the last of duplicate keys, keeps
# lone surrogates, and overflows the stack on deep nesting.
HOSTILE_VALUES = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e309": "1e309",
    "-1e309": "-1e309",
    "400 digits": "1" * 400,
    "deep nesting": "[" * DEEP + "]" * DEEP,
    "lone surrogate": '"\\ud800"',
}


def _record(value: str) -> str:
    return '{"sex": "female", "age": 70, "grip_kg": ' + value + "}"


def _measurements(value: str) -> str:
    return '{"visit_date": "2026-01-10", "measurements": {"grip_kg": ' + value + "}}"


DUPLICATE_RECORD = '{"sex": "female", "age": 70, "grip_kg": 30, "grip_kg": 12}'
DUPLICATE_VISIT = '{"visit_date": "2026-01-10", "measurements": {"grip_kg": 30, "grip_kg": 12}}'


def _send(api: TestClient, method: str, url: str, body: str) -> httpx.Response:
    response: httpx.Response = api.request(
        method, url, content=body.encode(), headers={"content-type": "application/json"}
    )
    return response


def _refused(response: httpx.Response, label: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == 422, (label, response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error"}, label
    error: dict[str, Any] = body["error"]
    assert set(error) >= SHAPE, (label, error)
    assert error["field"], (label, error)
    if field is not None:
        assert error["field"] == field, (label, error["field"])
    return error


def _state(clinic: Clinic, patient_id: int) -> Any:
    api = clinic.api("clinician")
    return (
        api.get("/api/v1/patients").json(),
        api.get(f"/api/v1/patients/{patient_id}/visits").json(),
    )


def test_hostile_json_is_refused_by_name_and_nothing_is_stored(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "H1", "Hostile Test")
    visit = add_visit(api, patient["id"])
    before = _state(clinic, patient["id"])
    cases: list[tuple[str, str, str, str]] = []
    for label, value in HOSTILE_VALUES.items():
        cases += [
            (label, "POST", "/api/v1/assess", _record(value)),
            (label, "POST", f"/api/v1/patients/{patient['id']}/visits", _measurements(value)),
            (
                label,
                "PUT",
                f"/api/v1/visits/{visit['id']}",
                _measurements(value)[:-1] + ', "reason": "x"}',
            ),
            (
                label,
                "POST",
                "/api/v1/patients",
                '{"record_number": "H2", "name": '
                + value
                + ', "sex": "male", "date_of_birth": "1950-01-01"}',
            ),
        ]
    cases += [
        ("duplicate", "POST", "/api/v1/assess", DUPLICATE_RECORD),
        ("duplicate", "POST", f"/api/v1/patients/{patient['id']}/visits", DUPLICATE_VISIT),
        (
            "duplicate",
            "PUT",
            f"/api/v1/visits/{visit['id']}",
            DUPLICATE_VISIT[:-1] + ', "reason": "x"}',
        ),
        (
            "duplicate",
            "POST",
            "/api/v1/patients",
            '{"record_number": "H2", "record_number": "H3", "name": "N", "sex": "male",'
            ' "date_of_birth": "1950-01-01"}',
        ),
    ]
    for label, method, url, body in cases:
        error = _refused(_send(api, method, url, body), f"{label} {method} {url}")
        # The field is named where it sits in the body (deep nesting names the body).
        if label == "deep nesting":
            expected = {"body"}
        elif url == "/api/v1/patients":
            expected = {"record_number"} if label == "duplicate" else {"name"}
        else:
            expected = {"grip_kg", "measurements.grip_kg"}
        assert error["field"] in expected, (label, url, error)
    assert _state(clinic, patient["id"]) == before


def test_values_are_checked_inside_lists_and_keys_too(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    trials = _send(api, "POST", "/api/v1/assess", '{"sex": "male", "grip_kg_trials": [30, NaN]}')
    assert _refused(trials, "trial")["field"] == "grip_kg_trials.1"
    key = _send(api, "POST", "/api/v1/assess", '{"sex": "male", "\\udc00": 1}')
    _refused(key, "surrogate key")
    not_utf8 = api.post(
        "/api/v1/assess", content=b'{"sex": "\xff"}', headers={"content-type": "application/json"}
    )
    assert _refused(not_utf8, "not UTF-8")["field"] == "body"


def test_no_route_answers_in_another_error_shape(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    answers = {
        "unknown route": api.get("/api/v1/no-such-thing"),
        "unknown method": api.delete("/api/v1/assess"),
        "bad path id": api.get("/api/v1/patients/not-a-number"),
        "missing patient": api.get("/api/v1/patients/999999"),
        "no token": clinic.client().get("/api/v1/patients"),
        "wrong role": clinic.api("researcher").get("/api/v1/patients"),
        "bad query": clinic.api("admin").get("/api/v1/audit", params={"limit": "NaN"}),
        "missing body": api.post("/api/v1/patients"),
    }
    for label, response in answers.items():
        assert 400 <= response.status_code < 500, (label, response.status_code)
        body = response.json()
        assert "detail" not in body, (label, body)
        assert set(body["error"]) >= SHAPE, (label, body)
    assert answers["unknown route"].status_code == 404
    assert answers["unknown method"].status_code == 405
    # An unknown page is the clinic's page, not JSON.
    page = clinic.client().get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("NaN", "“NaN” is not a number."),
        ("Infinity", "“Infinity” is not a number."),
        # 1e309 overflows to infinity: for a clinician, that is no number either.
        ("1e309", "“1e309” is not a number."),
        ("9" * 400, ""),
    ],
)
def test_the_visit_form_names_a_hostile_value_beside_its_input(
    sqlite_clinic: Clinic, value: str, why: str
) -> None:
    patient = add_patient(sqlite_clinic.api("clinician"), "F1")
    browser, token = sqlite_clinic.browser("clinician")
    page = browser.post(
        f"/patients/{patient['id']}/visits/new",
        data={"csrf_token": token, "visit_date": "2026-01-10", "grip_kg__1": value},
    )
    assert page.status_code == 422, page.text[:300]
    assert 'data-field="grip_kg' in page.text
    assert why in page.text
    assert (
        sqlite_clinic.api("clinician").get(f"/api/v1/patients/{patient['id']}/visits").json() == []
    )


def test_forms_refuse_duplicate_fields_and_bytes_that_are_not_utf8(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    patient = add_patient(api, "F2")
    browser, token = sqlite_clinic.browser("clinician")
    form = "application/x-www-form-urlencoded"
    duplicate = browser.post(
        f"/patients/{patient['id']}/visits/new",
        content=f"csrf_token={token}&visit_date=2026-01-10&gait_speed_m_s=0.7&gait_speed_m_s=1.3",
        headers={"content-type": form},
    )
    assert duplicate.status_code == 422
    assert 'data-field="gait_speed_m_s"' in duplicate.text
    # A lone surrogate cannot be UTF-8: the browser's bytes for it (ED A0 80) are refused.
    surrogate = browser.post(
        "/patients/new",
        content=(
            f"csrf_token={token}&record_number=F3&name=%ED%A0%80&sex=male&date_of_birth=1950-01-01"
        ),
        headers={"content-type": form},
    )
    assert surrogate.status_code == 422
    assert 'data-field="name"' in surrogate.text
    twice = browser.post(
        "/patients/new",
        content=(
            f"csrf_token={token}&record_number=F4&record_number=F5&name=N&sex=male"
            "&date_of_birth=1950-01-01"
        ),
        headers={"content-type": form},
    )
    assert twice.status_code == 422 and 'data-field="record_number"' in twice.text
    assert [p["record_number"] for p in api.get("/api/v1/patients").json()] == ["F2"]
    assert api.get(f"/api/v1/patients/{patient['id']}/visits").json() == []
    # Other forms are refused whole, with a 422 page.
    account = browser.post(
        "/account/tokens",
        content=f"csrf_token={token}&name=a&name=b",
        headers={"content-type": form},
    )
    assert account.status_code == 422


# -- free text, conditions, bounded work --------------------------------------------------------


def test_free_text_has_length_limits(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "T1")
    visit = add_visit(api, patient["id"])
    long_name = api.post(
        "/api/v1/patients",
        json={
            "record_number": "T2",
            "name": "n" * 201,
            "sex": "male",
            "date_of_birth": "1950-01-01",
        },
    )
    assert _refused(long_name, "name")["field"] == "name"
    long_number = api.post(
        "/api/v1/patients",
        json={"record_number": "T" * 65, "name": "N", "sex": "male", "date_of_birth": "1950-01-01"},
    )
    assert _refused(long_number, "record")["field"] == "record_number"
    reason = api.put(
        f"/api/v1/visits/{visit['id']}",
        json={"visit_date": "2026-01-10", "measurements": SEVERE_WOMAN, "reason": "r" * 501},
    )
    assert _refused(reason, "reason")["field"] == "reason"
    admin = clinic.api("admin")
    display = admin.post(
        "/api/v1/users",
        json={
            "username": "long.name",
            "display_name": "d" * 201,
            "password": "long enough pw",
            "roles": ["clinician"],
        },
    )
    assert _refused(display, "display")["field"] == "display_name"
    token_name = clinic.client().post(
        "/api/v1/auth/token",
        json={"username": clinic.usernames["clinician"], "password": "x", "name": "t" * 101},
    )
    assert _refused(token_name, "token name")["field"] == "name"
    assert len(api.get("/api/v1/patients").json()) == 1


def test_conditions_are_recognised_codes_or_names_and_never_exported_as_typed(
    clinic: Clinic,
) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "C1", "Condition Test")
    typed = api.post(
        f"/api/v1/patients/{patient['id']}/visits",
        json={
            "visit_date": "2026-01-10",
            "measurements": {"grip_kg": 15, "conditions": ["K74.6", "lives with daughter Mei"]},
        },
    )
    error = _refused(typed, "conditions", "conditions")
    assert "cirrhosis" in error["expected"]
    assert api.get(f"/api/v1/patients/{patient['id']}/visits").json() == []
    assessed = api.post(
        "/api/v1/assess", json={"sex": "male", "age": 70, "conditions": "COPD; my neighbour's cat"}
    )
    _refused(assessed, "assess conditions", "conditions")
    # Recognised codes and names are kept; the export holds the engine's ids only.
    add_visit(api, patient["id"], {"grip_kg": 15, "conditions": ["K74.6", "Liver Cirrhosis"]})
    export = clinic.api("researcher").get("/api/v1/export")
    assert export.status_code == 200
    [row] = export.json()
    assert row["conditions"] == "cirrhosis"
    assert "K74.6" not in export.text and "Liver Cirrhosis" not in export.text


def test_grip_trials_are_bounded_and_the_schema_says_so(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "G1")
    many = {"grip_kg_trials": [20.0] * 11}
    assessed = api.post("/api/v1/assess", json={"sex": "male", "age": 70, **many})
    assert _refused(assessed, "assess trials")["field"] == "grip_kg_trials"
    stored = api.post(
        f"/api/v1/patients/{patient['id']}/visits",
        json={"visit_date": "2026-01-10", "measurements": many},
    )
    assert _refused(stored, "visit trials")["field"] == "grip_kg_trials"
    assert api.get(f"/api/v1/patients/{patient['id']}/visits").json() == []
    ten = api.post("/api/v1/assess", json={"sex": "male", "age": 70, "grip_kg_trials": [20.0] * 10})
    assert ten.status_code == 200
    schema = clinic.client().get("/api/v1/openapi.json").json()
    body = schema["paths"]["/api/v1/assess"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["grip_kg_trials"]["maxItems"] == 10


def test_pdf_rendering_is_bounded_in_time_and_size(
    sqlite_clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = sqlite_clinic.api("clinician")
    visit = add_visit(api, add_patient(api, "P1")["id"])
    url = f"/api/v1/visits/{visit['id']}/report.pdf"
    release = __import__("threading").Event()

    def stuck(html: str, base_url: str) -> bytes:
        release.wait(30)
        return b"%PDF-late"

    monkeypatch.setattr(report, "_write_pdf", stuck)
    monkeypatch.setattr(report, "PDF_TIMEOUT_S", 0.5)
    monkeypatch.setattr(report, "PDF_QUEUE_S", 0.1)
    slow = api.get(url)
    assert slow.status_code == 503
    assert slow.json()["error"]["field"] == "report"
    # Both renderers are held by stuck renderings now: the next request is refused at once.
    api.get(url)
    busy = api.get(url)
    assert busy.status_code == 503 and "busy" in busy.json()["error"]["message"]
    release.set()
    monkeypatch.setattr(report, "_write_pdf", lambda html, base_url: b"%PDF" + b"0" * 4096)
    monkeypatch.setattr(report, "PDF_MAX_BYTES", 1024)
    monkeypatch.setattr(report, "PDF_QUEUE_S", 10.0)
    large = api.get(url)
    assert large.status_code == 413 and large.json()["error"]["field"] == "report"
    page = sqlite_clinic.browser("clinician")[0].get(f"/visits/{visit['id']}/report.pdf")
    assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")


def test_nothing_carrying_patient_data_may_be_cached(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "N1")
    visit = add_visit(api, patient["id"])
    browser, _ = clinic.browser("clinician")
    responses = {
        "page": browser.get(f"/patients/{patient['id']}"),
        "visit page": browser.get(f"/visits/{visit['id']}"),
        "json": api.get(f"/api/v1/visits/{visit['id']}"),
        "pdf": api.get(f"/api/v1/visits/{visit['id']}/report.pdf"),
        "export": clinic.api("researcher").get("/api/v1/export"),
        "error": api.get("/api/v1/patients/999999"),
        "login": clinic.client().get("/login"),
    }
    for label, response in responses.items():
        assert response.headers.get("cache-control") == "no-store", label
    assert responses["pdf"].status_code == 200
    assert "no-store" not in clinic.client().get("/static/style.css").headers.get(
        "cache-control", ""
    )
