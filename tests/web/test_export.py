"""The research export: typed columns, every grip trial, canonical units, a data dictionary."""

from __future__ import annotations

import csv
import io
from typing import Any

import polars as pl
import pytest

from sarcokit.web.batching import engine_queue
from web.support import SEVERE_WOMAN, Clinic, add_patient, add_visit

# SARC-F items scoring 2 + 1 + 1 + 1 + 0 = 5: positive at >= 4 (Malmstrom 2013).
SARC_F = {
    "sarc_f_strength": 2,
    "sarc_f_assistance_walking": 1,
    "sarc_f_rise_from_chair": 1,
    "sarc_f_climb_stairs": 1,
    "sarc_f_falls": 0,
}


def _two_visits(clinic: Clinic) -> None:
    api = clinic.api("clinician")
    woman = add_patient(api, "EXP-1", "Export Woman", "female", "1945-01-01")
    add_visit(api, woman["id"], {**SEVERE_WOMAN, "weight_lb": 110, **SARC_F}, "2026-01-10")
    man = add_patient(api, "EXP-2", "Export Man", "male", "1950-06-30")
    add_visit(api, man["id"], {"grip_kg": 30.0, "gait_speed_m_s": 1.1}, "2026-01-10")


def _no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("the export re-ran the engine on a stored visit")

    monkeypatch.setattr(engine_queue, "assess", refuse)
    monkeypatch.setattr(engine_queue, "submit", refuse)


def test_export_is_typed_with_every_trial_in_canonical_units(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_visits(clinic)
    _no_engine(monkeypatch)
    researcher = clinic.api("researcher")
    parquet = researcher.get("/api/v1/export.parquet")
    assert parquet.status_code == 200, parquet.text
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    frame = pl.read_parquet(io.BytesIO(parquet.content))
    woman = frame.filter(pl.col("sex") == "female").row(0, named=True)
    man = frame.filter(pl.col("sex") == "male").row(0, named=True)
    # Trials as entered, the best of them as grip_kg, an empty third trial column.
    assert (woman["grip_kg_trial_1"], woman["grip_kg_trial_2"]) == (15.5, 16.0)
    assert woman["grip_kg_trial_3"] is None and woman["grip_kg"] == 16.0
    assert man["grip_kg"] == 30.0 and man["grip_kg_trial_1"] is None
    # 150 cm × 0.01 = 1.5 m; 110 lb × 0.45359237 = 49.8951607 kg.
    assert woman["height_m"] == 1.5
    assert woman["weight_kg"] == pytest.approx(49.8951607, abs=1e-9)
    # Derived as stored: ASMI 11.9 / 1.5² = 5.2889 → 5.29; BMI 49.895 / 2.25 = 22.176 → 22.18.
    assert (woman["asmi_kg_m2"], woman["bmi_kg_m2"]) == (5.29, 22.18)
    assert (woman["sarc_f_total"], woman["sarc_f_positive"]) == (5, True)
    assert man["sarc_f_positive"] is None
    # AWGS 2019 worked example: grip 16.0 < 18 kg, gait 0.7 < 1.0 m/s, ASMI 5.29 < 5.4 kg/m².
    assert woman["awgs2019_category"] == "severe_sarcopenia"
    assert woman["awgs2019_strength"] == "low"
    assert (woman["age"], man["age"], woman["visit"]) == (81, 75, 1)
    types = dict(frame.schema)
    assert types["grip_kg_trial_1"] == pl.Float64 and types["sarc_f_total"] == pl.Int64
    assert types["sarc_f_positive"] == pl.Boolean and types["age"] == pl.Int64
    assert types["awgs2019_category"] == pl.String and types["asm_method"] == pl.String


def test_csv_writes_booleans_as_true_false_and_missing_as_empty(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_visits(clinic)
    _no_engine(monkeypatch)
    for path in ("/api/v1/export.csv", "/research/export.csv"):
        client = (
            clinic.api("researcher") if path.startswith("/api") else clinic.browser("researcher")[0]
        )
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        rows = list(csv.DictReader(io.StringIO(response.text)))
        woman = next(r for r in rows if r["sex"] == "female")
        man = next(r for r in rows if r["sex"] == "male")
        assert woman["sarc_f_positive"] == "true" and woman["sarc_f_total"] == "5"
        assert man["sarc_f_positive"] == "" and man["grip_kg_trial_1"] == ""
        assert woman["grip_kg_trial_2"] == "16.0"


def test_dictionary_describes_every_column_in_order(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_visits(clinic)
    _no_engine(monkeypatch)
    researcher = clinic.api("researcher")
    dictionary = researcher.get("/api/v1/export/dictionary").json()
    exported = researcher.get("/api/v1/export").json()
    assert [c["column"] for c in dictionary] == list(exported[0])
    by_name = {c["column"]: c for c in dictionary}
    assert by_name["grip_kg_trial_1"] == {
        "column": "grip_kg_trial_1",
        "type": "number",
        "unit": "kg",
        # The field's one label (fields.toml), as the form and the report show it.
        "description": "Grip strength, trial 1",
        "origin": "measurement",
    }
    assert (by_name["height_m"]["unit"], by_name["height_m"]["type"]) == ("m", "number")
    assert by_name["sarc_f_positive"]["type"] == "boolean"
    assert by_name["awgs2019_category"]["origin"] == "definition"
    assert by_name["asmi_kg_m2"]["origin"] == "derived"
    page = clinic.browser("researcher")[0].get("/research/dictionary.csv")
    assert page.status_code == 200
    assert [r["column"] for r in csv.DictReader(io.StringIO(page.text))] == list(by_name)
