"""The clinic's main path on both databases: register, record a visit, read the result."""

from __future__ import annotations

import gc

import pytest

from web.support import Clinic, add_patient, add_visit


def test_severe_sarcopenia_under_awgs2019_via_the_api(clinic: Clinic) -> None:
    # The AWGS 2019 worked example (support.SEVERE_WOMAN, add_visit's default measurements).
    api = clinic.api("clinician")
    patient = add_patient(api, "A1", "Li Hua")
    visit = add_visit(api, patient["id"])
    assert visit["result"]["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"


def test_the_served_app_freezes_what_start_up_built(monkeypatch: pytest.MonkeyPatch) -> None:
    # Full collections re-walking start-up objects made the clinic's latency tail
    # (benchmarks/RESULTS.md): the app `clinic serve` runs must leave them frozen.
    from fastapi import FastAPI

    from sarcokit.web import app as app_module

    built = FastAPI()
    monkeypatch.setattr(app_module, "create_app", lambda: built)
    gc.unfreeze()
    try:
        assert app_module.serving_app() is built
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
