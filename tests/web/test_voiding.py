"""A visit entered by mistake is voided, never deleted: out of lists, charts and exports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from web.support import Clinic, add_patient, add_visit

WRONG = {"grip_kg": 40.0, "gait_speed_m_s": 1.4}


def test_a_voided_visit_leaves_lists_charts_and_export_but_is_kept(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "V1", "Void Test")
    kept = add_visit(api, patient["id"], visit_date="2026-01-10")
    wrong = add_visit(api, patient["id"], WRONG, visit_date="2026-02-10")
    url = f"/api/v1/visits/{wrong['id']}/void"
    # A reason is required, and named when missing.
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        refused = api.post(url, json=body)
        assert refused.status_code == 422, body
        assert refused.json()["error"]["field"] == "reason"
    voided = api.post(url, json={"reason": "entered for the wrong patient"})
    assert voided.status_code == 200, voided.text
    assert voided.json()["voided"]["reason"] == "entered for the wrong patient"
    again = api.post(url, json={"reason": "twice"})
    assert again.status_code == 409
    # Gone from the visit list, the history and the export...
    listed = api.get(f"/api/v1/patients/{patient['id']}/visits").json()
    assert [v["id"] for v in listed] == [kept["id"]]
    export = clinic.api("researcher").get("/api/v1/export").json()
    assert len(export) == 1 and export[0].get("grip_kg") != 40.0
    browser, _ = clinic.browser("clinician")
    page = browser.get(f"/patients/{patient['id']}").text
    assert f'href="/visits/{wrong["id"]}"' not in page
    assert "2026-02-10" not in page
    # ...but kept, and cannot be corrected back into use.
    direct = api.get(f"/api/v1/visits/{wrong['id']}")
    assert direct.status_code == 200 and direct.json()["voided"] is not None
    corrected = api.put(
        f"/api/v1/visits/{wrong['id']}",
        json={"visit_date": "2026-02-10", "measurements": WRONG, "reason": "undo"},
    )
    assert corrected.status_code == 409
    with clinic.app.state.engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM visits")).scalar_one()
        audited = connection.execute(
            text("SELECT detail FROM audit_log WHERE action = 'visit.void' AND entity_id = :v"),
            {"v": wrong["id"]},
        ).all()
    assert stored == 2
    # Audited, without the reason (it may name clinical facts).
    assert [row[0] for row in audited] == [f"patient {patient['id']}"]
    # Administrators still see it, with who voided it and why.
    seen = clinic.api("admin").get("/api/v1/voided-visits")
    assert seen.status_code == 200
    [entry] = seen.json()
    assert entry["id"] == wrong["id"] and entry["measurements"] == WRONG
    assert entry["voided"]["reason"] == "entered for the wrong patient"
    admin_page, _ = clinic.browser("admin")
    listing = admin_page.get("/admin/voided")
    assert listing.status_code == 200 and "entered for the wrong patient" in listing.text


def test_the_void_form_requires_a_reason(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    patient = add_patient(api, "V2")
    visit = add_visit(api, patient["id"])
    browser, token = sqlite_clinic.browser("clinician")
    form = browser.get(f"/visits/{visit['id']}/void")
    assert form.status_code == 200 and 'name="reason"' in form.text
    assert f'href="/visits/{visit["id"]}/void"' in browser.get(f"/visits/{visit['id']}").text
    missing = browser.post(f"/visits/{visit['id']}/void", data={"csrf_token": token})
    assert missing.status_code == 422 and 'data-field="reason"' in missing.text
    assert len(api.get(f"/api/v1/patients/{patient['id']}/visits").json()) == 1
    done = browser.post(
        f"/visits/{visit['id']}/void",
        data={"csrf_token": token, "reason": "test entry"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/patients/{patient['id']}"
    assert api.get(f"/api/v1/patients/{patient['id']}/visits").json() == []
    shown = browser.get(f"/visits/{visit['id']}")
    assert "test entry" in shown.text and f"/visits/{visit['id']}/edit" not in shown.text


def test_a_visit_recording_nothing_is_refused(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "E1")
    empties: list[dict[str, Any]] = [
        {},
        {"grip_kg": None, "gait_speed_m_s": ""},
        {"grip_kg_trials": []},
    ]
    for empty in empties:
        refused = api.post(
            f"/api/v1/patients/{patient['id']}/visits",
            json={"visit_date": "2026-01-10", "measurements": empty},
        )
        assert refused.status_code == 422, (empty, refused.text)
        error = refused.json()["error"]
        assert error["field"] == "measurements"
        assert "at least one measurement" in error["message"]
    assert api.get(f"/api/v1/patients/{patient['id']}/visits").json() == []
