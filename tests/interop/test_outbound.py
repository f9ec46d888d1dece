"""Results and records → FHIR: valid R4 resources, definitions as coded Observations, and a
record that reads back to the same engine result."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from sarcokit import assess
from sarcokit.fhir.inbound import read_bundle
from sarcokit.fhir.outbound import (
    collection,
    record_resources,
    result_resources,
    sarcopenia_condition,
    transaction,
)

PROJECT = "http://sarcokit.org/fhir/CodeSystem/sarcokit"
WHEN = date(2026, 11, 3)

RECORD: dict[str, Any] = {
    "id": "p9", "sex": "female", "age": 81, "height_cm": 152.0, "weight_lb": 110.0,
    "grip_kg": 14.5, "gait_speed_m_s": 0.62, "chair_stand_5x_s": 17.2, "sppb": 6,
    "asm_kg": 11.9, "asm_method": "dxa", "calf_cm": 29.5, "creatinine_umol_l": 70.0,
    "cystatin_c_mg_l": 1.3, "sarc_f_strength": 2, "sarc_f_assistance_walking": 1,
    "sarc_f_rise_from_chair": 1, "sarc_f_climb_stairs": 2, "sarc_f_falls": 1, "setting": "hospital",
}  # fmt: skip


def _validate(resource: dict[str, Any]) -> None:
    # fhir.resources 8 models R5 by default and R4B (R4's technical correction, the same shape
    # for every resource written here) beside it; R4 itself is no longer shipped.
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_record_to_fhir_and_back_gives_the_same_result() -> None:
    written = record_resources(RECORD, "p9", WHEN)
    for resource in written.resources:
        _validate(resource)
    assert written.not_written == {"setting": "no FHIR mapping in reference/fhir.toml"}
    back = read_bundle(collection(written.resources), WHEN)
    assert not back.ignored
    before, after = assess(RECORD).to_dict(), assess(back.record).to_dict()
    assert after["definitions"] == before["definitions"]
    assert after["screening"] == before["screening"]
    assert after["derived"] == before["derived"]


def test_one_observation_per_definition_with_components_and_reasons() -> None:
    result = assess(RECORD, definitions=["ewgsop2", "awgs2019_community"])
    resources = result_resources(result, "Patient/p9", "2026-11-03", "visit-1", ["Observation/x"])
    for resource in resources:
        _validate(resource)
    by_method = {r["method"]["coding"][0]["code"]: r for r in resources if "method" in r}
    ewgsop2 = by_method["ewgsop2"]
    assert ewgsop2["code"]["coding"][0] == {
        "system": PROJECT,
        "code": "sarcopenia-category",
        "display": "Sarcopenia category under a consensus definition",
    }
    assert (
        ewgsop2["valueCodeableConcept"]["coding"][0]["code"]
        == result.definitions["ewgsop2"].category
    )
    components = {
        c["code"]["coding"][0]["code"]: c["valueCodeableConcept"]["coding"][0]["code"]
        for c in ewgsop2["component"]
    }
    assert components == result.definitions["ewgsop2"].components
    assert [n["text"] for n in ewgsop2["note"]][: len(result.definitions["ewgsop2"].reasons)] == (
        result.definitions["ewgsop2"].reasons
    )
    assert ewgsop2["derivedFrom"] == [{"reference": "Observation/x"}]
    [report] = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    assert len(report["result"]) == len(resources) - 1
    [total] = [r for r in resources if r["code"]["coding"][0]["code"] == "sarc-f-total"]
    # 2 + 1 + 1 + 2 + 1 = 7.
    assert total["valueInteger"] == 7


def test_unknown_component_is_data_absent_not_low_or_normal() -> None:
    result = assess({"id": "x", "sex": "male", "age": 70, "grip_kg": 20.0}, definitions=["ewgsop2"])
    [observation, *_] = result_resources(result, "Patient/x", "2026-11-03", "v")
    by_code = {c["code"]["coding"][0]["code"]: c for c in observation["component"]}
    quantity = by_code["muscle_quantity"]
    assert "valueCodeableConcept" not in quantity
    assert quantity["dataAbsentReason"]["coding"][0]["code"] == "unknown"


def test_condition_only_with_a_confirming_clinician() -> None:
    with pytest.raises(ValueError):
        sarcopenia_condition("Patient/p9", "visit-1", "2026-11-03", None)
    condition = sarcopenia_condition("Patient/p9", "visit-1", "2026-11-03", "Dr Li")
    _validate(condition)
    assert condition["code"]["coding"][0]["code"] == "M62.84"
    assert condition["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"


def test_transaction_is_conditional_create_on_identifiers() -> None:
    result = assess(RECORD, definitions=["ewgsop2"])
    resources = result_resources(result, "Patient/p9", "2026-11-03", "visit-1")
    bundle = transaction(resources)
    _validate(bundle)
    again = transaction(result_resources(result, "Patient/p9", "2026-11-03", "visit-1"))
    assert bundle == again  # the same visit gives the same identifiers and URLs
    for entry in bundle["entry"]:
        ident = entry["resource"]["identifier"][0]
        assert entry["request"]["ifNoneExist"] == f"identifier={ident['system']}|{ident['value']}"
