"""The clinic's main path on both databases: register, record a visit, read the result."""

from __future__ import annotations

from web.support import Clinic, add_patient, add_visit


def test_severe_sarcopenia_under_awgs2019_via_the_api(clinic: Clinic) -> None:
    # The AWGS 2019 worked example (support.SEVERE_WOMAN, add_visit's default measurements).
    api = clinic.api("clinician")
    patient = add_patient(api, "A1", "Li Hua")
    visit = add_visit(api, patient["id"])
    assert visit["result"]["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"
