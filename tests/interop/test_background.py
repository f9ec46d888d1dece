"""Realistic background data: patients from `carebundle` (synthetic FHIR R4 test data: Patient,
Conditions, laboratory and vital-sign Observations, an Encounter, MedicationRequests,
DiagnosticReports) with sarcopenia measurements added by sarcokit's own writer
(`record_resources`). Read as a Bulk Data export, as Bundles and through the FHIR server, the
background resources are left out with their reasons or used where their codes are mapped
(height, weight, the laboratory values), and the Bulk and Bundle readers agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from interop.server import fhir_server, post_transaction, search
from interop.support import assert_bulk_row_is_bundle_record, bundle
from sarcokit.fhir.bulk import read_bulk
from sarcokit.fhir.inbound import read_bundle
from sarcokit.fhir.outbound import record_resources, transaction

__all__ = ["fhir_server"]

carebundle = pytest.importorskip("carebundle")

AS_OF = date(2026, 12, 1)
# carebundle dates every resource of a patient on its reference date (a visit ten days ago).
SEEN = AS_OF - timedelta(days=10)
LOINC = "http://loinc.org"
# Background codes that feed the subject record, with the field and the factor from the UCUM
# unit carebundle writes (checked below) to the field's unit; written independently of
# reference/fhir.toml so that a wrong mapping is caught.
MAPPED = {
    "8302-2": ("height_m", {"cm": 0.01}),
    "29463-7": ("weight_kg", {"kg": 1.0}),
    "2160-0": ("creatinine_mg_dl", {"mg/dL": 1.0}),
    "1751-7": ("albumin_g_dl", {"g/dL": 1.0}),
    "1975-2": ("bilirubin_mg_dl", {"mg/dL": 1.0}),
    "2951-2": ("sodium_mmol_l", {"mmol/L": 1.0}),
    "4548-4": ("hba1c_pct", {"%": 1.0}),
}


def _measurements(i: int) -> dict[str, Any]:
    """The sarcopenia measurements added to background patient i (varied, all in range)."""
    return {
        "grip_kg": 12.0 + 2.5 * (i % 8),
        "gait_speed_m_s": round(0.55 + 0.07 * (i % 7), 2),
        "chair_stand_5x_s": 11.0 + i % 9,
        "asm_kg": 12.0 + 0.9 * (i % 10),
        "asm_method": "dxa",
        "calf_cm": 29.0 + i % 6,
        "sarc_f_strength": i % 3,
        "sarc_f_assistance_walking": (i + 1) % 3,
        "sarc_f_rise_from_chair": (i + 2) % 3,
        "sarc_f_climb_stairs": i % 2,
        "sarc_f_falls": (i // 2) % 3,
    }


def _background(count: int) -> dict[str, list[dict[str, Any]]]:
    """resource type → resources (each with an id and `Type/id` references), carebundle's
    patients with sarcokit's measurements added."""
    cohort = carebundle.generate_cohort(
        count=count, seed=13, age_range=(70, 90), reference_date=SEEN
    )
    by_type = {
        kind: [json.loads(line) for line in text.splitlines() if line.strip()]
        for kind, text in carebundle.to_ndjson(cohort).items()
    }
    for i, patient in enumerate(by_type["Patient"]):
        written = record_resources(_measurements(i), patient["id"], SEEN)
        for resource in written.resources:
            if resource["resourceType"] != "Patient":
                by_type.setdefault(resource["resourceType"], []).append(resource)
    return by_type


def _of(resource: dict[str, Any]) -> str | None:
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference")
    return str(reference).removeprefix("Patient/") if reference else None


@pytest.fixture(scope="module")
def background() -> dict[str, list[dict[str, Any]]]:
    return _background(12)


def _export(folder: Path, by_type: dict[str, list[dict[str, Any]]]) -> Path:
    folder.mkdir()
    for kind, resources in by_type.items():
        lines = "".join(json.dumps(r) + "\n" for r in resources)
        (folder / f"{kind}.ndjson").write_text(lines, "utf-8")
    return folder


def _per_patient(by_type: dict[str, list[dict[str, Any]]]) -> Iterator[tuple[str, list[Any]]]:
    for patient in by_type["Patient"]:
        pid = patient["id"]
        mine = [r for kind, rs in by_type.items() if kind != "Patient" for r in rs if _of(r) == pid]
        yield pid, [patient, *mine]


def test_background_patients_through_bulk_and_bundles(
    tmp_path: Path, background: dict[str, list[dict[str, Any]]]
) -> None:
    kinds = set(background)
    # carebundle's background is there: conditions, encounters, medications, other labs.
    assert {"Condition", "Encounter", "MedicationRequest", "DiagnosticReport"} <= kinds
    read = read_bulk([_export(tmp_path / "export", background)], AS_OF)
    rows = {r["id"]: r for r in read.records.collect().to_dicts()}
    ignored = read.ignored.collect().to_dicts()
    assert set(rows) == {p["id"] for p in background["Patient"]}
    checked = 0
    for i, (pid, resources) in enumerate(_per_patient(background)):
        row = rows[pid]
        # The added measurements, as written.
        assert row["grip_kg"] == pytest.approx(_measurements(i)["grip_kg"])
        assert (row["asm_kg"], row["asm_method"]) == (
            pytest.approx(_measurements(i)["asm_kg"]),
            "dxa",
        )
        assert row["sarc_f_falls"] == _measurements(i)["sarc_f_falls"]
        # carebundle's own values where their codes are mapped, read from its resources here.
        for observation in resources:
            if observation["resourceType"] != "Observation":
                continue
            coding = observation["code"]["coding"][0]
            if coding.get("system") != LOINC or coding["code"] not in MAPPED:
                continue
            field, factors = MAPPED[coding["code"]]
            quantity = observation["valueQuantity"]
            assert quantity["code"] in factors, (coding["code"], quantity["code"])
            expected = quantity["value"] * factors[quantity["code"]]
            assert row[field] == pytest.approx(expected), (pid, field)
            checked += 1
        # The same record and the same reasons as reading the patient's Bundle.
        single = read_bundle(bundle(*resources), AS_OF)
        assert_bulk_row_is_bundle_record(row, single.record, pid)
        listed = {(i.resource, i.reason) for i in single.ignored if i.resource.startswith("Obs")}
        assert {(r["resource"], r["reason"]) for r in ignored if r["patient"] == pid} == listed
    assert checked >= 5 * len(background["Patient"])
    # Every observation is used or listed: the unmapped background labs and vital signs as
    # unknown codes (a blood-pressure panel through its components).
    reasons = {r["reason"] for r in ignored}
    assert "unknown_code" in reasons
    potassium = [r for r in ignored if r["code"] == "2823-3"]
    assert potassium and {r["reason"] for r in potassium} == {"unknown_code"}


def test_a_background_patient_through_the_fhir_server(fhir_server: str) -> None:
    from sarcokit.fhir.service import assess_bundle

    # carebundle's own transaction Bundle (POST with urn:uuid references), then sarcokit's.
    [patient_bundle] = carebundle.generate_cohort(
        count=1, seed=29, age_range=(75, 85), reference_date=SEEN
    )
    answer = post_transaction(fhir_server, json.loads(carebundle.to_json(patient_bundle)))
    # The server's location of the new Patient: [base/]Patient/{id}[/_history/n].
    locations = [e["response"].get("location", "") for e in answer["entry"]]
    pid = next(loc.split("Patient/")[1].split("/")[0] for loc in locations if "Patient/" in loc)
    added = record_resources(_measurements(3), pid, SEEN).resources
    post_transaction(fhir_server, transaction([r for r in added if r["resourceType"] != "Patient"]))
    found = [
        *search(fhir_server, f"Patient?_id={pid}"),
        *search(fhir_server, f"Observation?patient={pid}"),
        *search(fhir_server, f"QuestionnaireResponse?patient={pid}"),
    ]
    assert len(search(fhir_server, f"Condition?patient={pid}")) > 0
    assessed = assess_bundle(bundle(*found), as_of=AS_OF)
    record = assessed.read.record
    assert record["grip_kg"] == pytest.approx(_measurements(3)["grip_kg"])
    assert "height_cm" in record or "height_m" in record
    assert assessed.result.ok, assessed.result
    assert {i.reason for i in assessed.read.ignored} >= {"unknown_code"}
