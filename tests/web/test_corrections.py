"""Correcting a visit: the new values are assessed, the old version is kept with who and why."""

from __future__ import annotations

from sqlalchemy import text

from web.support import SEVERE_WOMAN, Clinic, add_patient, add_visit, csrf_of


def test_a_correction_keeps_the_earlier_version(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    patient = add_patient(api, "COR-1")
    # Grip typed as 16 kg instead of 26 kg. AWGS 2019 (Chen 2020, Figure 1): women < 18 kg.
    visit = add_visit(api, patient["id"])
    assert visit["result"]["definitions"]["awgs2019"]["components"]["strength"] == "low"
    corrected = api.put(
        f"/api/v1/visits/{visit['id']}",
        json={
            "visit_date": "2026-01-10",
            "measurements": {**SEVERE_WOMAN, "grip_kg_trials": [25.5, 26.0]},
            "reason": "grip trials typed in the wrong row",
        },
    )
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    # 26 kg ≥ 18 kg: normal strength; low mass and slow gait remain, which AWGS 2019 calls
    # sarcopenia (low mass with low performance), no longer severe.
    awgs = body["result"]["definitions"]["awgs2019"]
    assert awgs["components"]["strength"] == "normal"
    assert awgs["category"] == "sarcopenia"
    assert body["measurements"]["grip_kg_trials"] == [25.5, 26.0]
    [earlier] = body["revisions"]
    assert earlier["measurements"]["grip_kg_trials"] == [15.5, 16.0]
    assert earlier["reason"] == "grip trials typed in the wrong row"
    read = api.get(f"/api/v1/visits/{visit['id']}").json()
    assert read["result"]["definitions"]["awgs2019"]["category"] == "sarcopenia"
    with clinic.app.state.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT result FROM visit_revisions WHERE visit_id = :v"), {"v": visit["id"]}
        ).scalar_one()
        actions = connection.execute(
            text("SELECT action FROM audit_log WHERE entity_id = :v AND entity = 'visit'"),
            {"v": visit["id"]},
        ).scalars()
        assert "visit.correct" in set(actions)
    assert "severe_sarcopenia" in str(stored)


def test_a_correction_needs_a_reason_and_valid_values(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    visit = add_visit(api, add_patient(api, "COR-2")["id"])
    url = f"/api/v1/visits/{visit['id']}"
    for body, field in (
        ({"visit_date": "2026-01-10", "measurements": SEVERE_WOMAN, "reason": " "}, "reason"),
        (
            {"visit_date": "2026-01-10", "measurements": {"height_m": 158}, "reason": "typo"},
            "height_m",
        ),
    ):
        refused = api.put(url, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == field
    assert api.get(url).json()["revisions"] == []
    assert (
        api.put(
            "/api/v1/visits/999999",
            json={"visit_date": "2026-01-10", "measurements": SEVERE_WOMAN, "reason": "x"},
        ).status_code
        == 404
    )


def test_the_correction_form_is_filled_with_the_saved_visit(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    visit = add_visit(api, add_patient(api, "COR-3")["id"])
    browser, token = sqlite_clinic.browser("clinician")
    form = browser.get(f"/visits/{visit['id']}/edit")
    assert form.status_code == 200
    assert 'name="grip_kg__1" aria-label' in form.text
    assert 'value="15.5"' in form.text and 'value="16"' in form.text
    assert 'value="150"' in form.text
    saved = browser.post(
        f"/visits/{visit['id']}/edit",
        data={
            "csrf_token": csrf_of(form.text),
            "reason": "height entered in the wrong unit",
            "visit_date": "2026-01-10",
            "height_m": "160",
            "height_m__unit": "height_cm",
            "grip_kg__1": "15.5",
            "grip_kg__2": "16",
            "grip_kg__unit": "grip_kg",
            "gait_speed_m_s": "0.7",
            "asm_kg": "11.9",
            "asm_method": "dxa",
        },
    )
    assert saved.status_code == 200, saved.text
    assert "Corrected 1 times" in saved.text
    # ASMI 11.9 / 1.6² = 4.65 kg/m², still < 5.4 (DXA, women): severe sarcopenia stays.
    assert 'data-category="severe_sarcopenia"' in saved.text
    assert token
