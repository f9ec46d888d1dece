"""The visit form's secondary-sarcopenia inputs reach the engine and their results are shown."""

from __future__ import annotations

import re

from web.support import Clinic, add_patient


def _visible(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_cirrhosis_visit_shows_ct_liver_bone_and_vitamin_d(sqlite_clinic: Clinic) -> None:
    browser, token = sqlite_clinic.browser("clinician")
    patient = add_patient(
        sqlite_clinic.api("clinician"), "LIV-1", "Liver Patient", "male", "1968-01-01"
    )
    form = browser.get(f"/patients/{patient['id']}/visits/new")
    # The optional section is folded until it holds an answer.
    assert "<details>" in form.text
    saved = browser.post(
        f"/patients/{patient['id']}/visits/new",
        data={
            "csrf_token": token,
            "visit_date": "2026-11-01",
            "height_m": "175",
            "height_m__unit": "height_cm",
            "conditions": "K74.60",
            "l3_muscle_area_cm2": "130",
            "bilirubin_mg_dl": "2.0",
            "bilirubin_mg_dl__unit": "bilirubin_mg_dl",
            "inr": "1.5",
            "creatinine_mg_dl": "1.2",
            "creatinine_mg_dl__unit": "creatinine_mg_dl",
            "dialysis_twice_past_week": "no",
            "bmd_t_score": "-2.8",
            "vitamin_d_ng_ml": "15",
            "vitamin_d_ng_ml__unit": "vitamin_d_ng_ml",
        },
    )
    assert saved.status_code == 200, saved.text
    text = _visible(saved.text)
    # L3 SMI = 130 cm² / 1.75² m² = 42.45 cm²/m²; Carey 2017 (Liver Transpl 23:625): men < 50.
    assert "CT: L3 skeletal muscle index 42.45 cm²/m²" in text
    assert "CT: low muscle (Carey 2017) yes" in text
    # MELD (UNOS; Kamath 2001): 10 × (0.957 ln 1.2 + 0.378 ln 2.0 + 1.120 ln 1.5 + 0.643)
    # = 10 × (0.1745 + 0.2620 + 0.4541 + 0.643) = 15.3, reported as 15.
    assert "MELD 15 " in text
    # WHO 1994: T-score ≤ −2.5 is osteoporosis; Holick 2011: 25(OH)D < 20 ng/mL is deficiency.
    assert "Bone density category (WHO) osteoporosis" in text
    assert "Vitamin D status deficient" in text
    assert "cirrhosis" in text


def test_a_visit_without_secondary_inputs_shows_no_secondary_block(sqlite_clinic: Clinic) -> None:
    browser, token = sqlite_clinic.browser("clinician")
    patient = add_patient(sqlite_clinic.api("clinician"), "PLAIN-1")
    saved = browser.post(
        f"/patients/{patient['id']}/visits/new",
        data={"csrf_token": token, "visit_date": "2026-11-01", "gait_speed_m_s": "0.7"},
    )
    assert saved.status_code == 200, saved.text
    assert "Secondary sarcopenia</h2>" not in saved.text
