"""Correcting a visit: the new values are assessed, the old version is kept with who and why."""

from __future__ import annotations

import io
import re

import pypdf
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
    assert "Corrected once; the earlier version is kept" in saved.text
    # The correction says who, when and why, and what changed, field by field.
    assert re.search(
        r"Corrected on \d{4}-\d\d-\d\d \d\d:\d\d UTC by Clinician because: "
        r"height entered in the wrong unit",
        saved.text,
    )
    assert _diff_rows(saved.text) == [("Height", "150 cm", "160 cm")]
    # ASMI 11.9 / 1.6² = 4.65 kg/m², still < 5.4 (DXA, women): severe sarcopenia stays.
    assert 'data-category="severe_sarcopenia"' in saved.text
    assert token


def _diff_rows(page: str, correction: int = 1) -> list[tuple[str, str, str]]:
    """(field, before, after) of one correction's diff table (1 = the first correction)."""
    found = re.search(
        rf'<section class="correction" data-correction="{correction}">(.*?)</section>', page, re.S
    )
    assert found, page
    rows = re.findall(r"<tr[^>]*><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", found.group(1))
    plain = [tuple(re.sub(r"<[^>]+>", "", cell).strip() for cell in row) for row in rows]
    return [(a, b, c) for a, b, c in plain]


def test_a_second_correction_shows_the_category_it_changed_in_the_readers_language(
    sqlite_clinic: Clinic,
) -> None:
    api = sqlite_clinic.api("clinician")
    visit = add_visit(api, add_patient(api, "COR-4")["id"])
    url = f"/api/v1/visits/{visit['id']}"
    first = {**SEVERE_WOMAN, "gait_speed_m_s": 0.75}
    assert (
        api.put(
            url, json={"visit_date": "2026-01-10", "measurements": first, "reason": "gait re-timed"}
        ).status_code
        == 200
    )
    # Grip 30 kg is not low for a woman (AWGS 2019: < 18 kg), gait and ASMI still are: the
    # category goes from severe sarcopenia to sarcopenia.
    second = {**first, "grip_kg_trials": [30.0]}
    assert (
        api.put(
            url,
            json={"visit_date": "2026-01-11", "measurements": second, "reason": "grip re-measured"},
        ).status_code
        == 200
    )
    browser, token = sqlite_clinic.browser("clinician")
    page = browser.get(f"/visits/{visit['id']}").text
    assert "Corrected 2 times; earlier versions are kept" in page
    assert _diff_rows(page, 1) == [("Usual gait speed", "0.7 m/s", "0.75 m/s")]
    assert _diff_rows(page, 2) == [
        ("Visit date", "2026-01-10", "2026-01-11"),
        ("Grip strength", "15.5 / 16 kg", "30 kg"),
        ("AWGS 2019 (hospital / research)", "severe sarcopenia", "sarcopenia"),
    ]
    # The printed report says it was corrected, by whom and why (newest first).
    pdf = api.get(f"/api/v1/visits/{visit['id']}/report.pdf?lang=en")
    assert pdf.status_code == 200
    printed = " ".join(
        page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages
    )
    printed = " ".join(printed.split())
    assert "by Clinician because: grip re-measured" in printed
    assert "by Clinician because: gait re-timed" in printed
    where = f"/visits/{visit['id']}"
    browser.post(
        "/account/language", data={"csrf_token": token, "language": "zh-CN", "next": where}
    )
    chinese = browser.get(where).text
    assert "已更正 2 次；先前的版本均已保留" in chinese
    assert "于" in chinese and "更正，原因：grip re-measured" in chinese
    rows = _diff_rows(chinese, 2)
    assert rows[-1][1:] == ("严重肌少症", "肌少症"), rows
