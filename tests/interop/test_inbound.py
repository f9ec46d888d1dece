"""A Bundle → a subject record: latest within the window, best trial, units, and every
observation accounted for."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from interop.support import LOINC, PROJECT, bundle, observation, patient, sarc_f
from sarcokit.fhir.inbound import FhirRecord, read_bundle
from sarcokit.fields import InputError

AS_OF = date(2026, 12, 1)


def _read(*resources: dict[str, Any]) -> FhirRecord:
    return read_bundle(bundle(patient(), *resources), AS_OF)


def _reasons(found: FhirRecord) -> dict[str, str]:
    return {i.resource: i.reason for i in found.ignored}


def test_patient_gives_sex_and_age_on_the_assessment_date() -> None:
    found = _read()
    # Born 1950-03-02; on 2026-12-01 the birthday has passed: 2026 - 1950 = 76.
    assert found.record == {"id": "p1", "sex": "male", "age": 76}
    before_birthday = read_bundle(bundle(patient()), date(2026, 3, 1))
    assert before_birthday.record["age"] == 75


def test_best_grip_trial_of_the_latest_day_across_hands_and_units() -> None:
    found = _read(
        observation("r1", "83174-3", 24.0, "kgf"),
        observation("l1", "83173-5", 26.0, "kg"),
        # 60 lbf = 60 × 0.45359237 = 27.216 kgf: the best trial that day.
        observation("l2", "83173-5", 60.0, "[lbf_av]"),
        observation("old", "83174-3", 40.0, "kgf", when="2026-10-01"),
    )
    assert found.record["grip_lb"] == 60.0
    assert "grip_kg" not in found.record
    assert [u.resource for u in found.used if u.field == "grip_kg"] == ["Observation/l2"]
    reasons = _reasons(found)
    assert reasons["Observation/r1"] == reasons["Observation/l1"] == "superseded"
    assert reasons["Observation/old"] == "superseded"


def test_latest_value_within_the_window() -> None:
    found = _read(
        observation("w1", "29463-7", 70.0, "kg", when="2026-10-01"),
        observation("w2", "29463-7", 68.0, "kg", when="2026-11-20"),
        # Weight look-back is 90 days: 2026-12-01 − 90 days = 2026-09-02.
        observation("w0", "29463-7", 80.0, "kg", when="2026-09-01"),
        observation("in", "29463-7", 66.0, "kg", when="2026-09-02"),
    )
    assert found.record["weight_kg"] == 68.0
    reasons = _reasons(found)
    assert reasons["Observation/w0"] == "too_old"
    assert reasons["Observation/in"] == "superseded"
    assert reasons["Observation/w1"] == "superseded"


def test_unit_not_in_the_table_is_refused_naming_field_and_unit() -> None:
    found = _read(observation("w", "29463-7", 154.0, "lbs"))
    [ignored] = found.ignored
    assert ignored.reason == "unit"
    assert "weight_kg" in ignored.detail and "'lbs'" in ignored.detail
    assert "weight_kg" not in found.record and "weight_lb" not in found.record


def test_a_mass_code_with_a_molar_unit_is_refused() -> None:
    found = _read(observation("d", "62292-8", 75.0, "nmol/L"))
    assert _reasons(found) == {"Observation/d": "unit"}


def test_molar_code_converts_through_fields_toml() -> None:
    from sarcokit import assess

    found = _read(observation("c", "14682-9", 88.4, "umol/L"))
    assert found.record["creatinine_umol_l"] == 88.4
    # 88.4 µmol/L ÷ 88.4 = 1.0 mg/dL; with cystatin C 1.0 mg/L, sarcopenia index = 1.0 × 100 / 1.0.
    result = assess({**found.record, "cystatin_c_mg_l": 1.0}, definitions=["ewgsop2"])
    assert result.derived["sarcopenia_index"] == 100.0


def test_every_ignored_observation_says_why() -> None:
    found = _read(
        observation("err", "8302-2", 170.0, "cm", status="entered-in-error"),
        observation("pre", "8302-2", 170.0, "cm", status="preliminary"),
        observation("unk", "1234-5", 1.0, "1"),
        observation("fut", "8302-2", 170.0, "cm", when="2026-12-02"),
        observation("nod", "8302-2", 170.0, "cm", when="2026"),
        observation("cmp", "8302-2", 170.0, "cm", valueQuantity={"value": 1, "comparator": "<"}),
        observation("oth", "8302-2", 170.0, "cm", subject={"reference": "Patient/p2"}),
    )
    assert _reasons(found) == {
        "Observation/err": "entered_in_error",
        "Observation/pre": "status",
        "Observation/unk": "unknown_code",
        "Observation/fut": "future",
        "Observation/nod": "no_date",
        "Observation/cmp": "no_value",
        "Observation/oth": "other_patient",
    }
    assert "height_m" not in found.record and "height_cm" not in found.record


def test_panel_components_are_read() -> None:
    panel = observation("panel", "9999-9", 0.0, "1")
    del panel["valueQuantity"]
    panel["component"] = [
        {"code": {"coding": [{"system": LOINC, "code": "83174-3"}]},
         "valueQuantity": {"value": 30.0, "system": "http://unitsofmeasure.org", "code": "kgf"}},
        {"code": {"coding": [{"system": LOINC, "code": "83173-5"}]},
         "valueQuantity": {"value": 31.0, "system": "http://unitsofmeasure.org", "code": "kgf"}},
        {"code": {"coding": [{"system": LOINC, "code": "0000-0"}]},
         "valueQuantity": {"value": 1.0, "system": "http://unitsofmeasure.org", "code": "1"}},
    ]  # fmt: skip
    found = _read(panel)
    assert found.record["grip_kg"] == 31.0
    assert [u.resource for u in found.used if u.field == "grip_kg"] == [
        "Observation/panel#component[1]"
    ]
    assert _reasons(found)["Observation/panel#component[2]"] == "unknown_code"


def test_gait_speed_wins_over_walk_trials_and_trials_give_the_fastest() -> None:
    trials = _read(
        observation("t1", "83169-3", 5.0, "s"),
        observation("t2", "83170-1", 4.5, "s"),
    )
    assert trials.record["walk_time_s"] == 4.5
    assert trials.record["walk_distance_m"] == 4
    both = _read(
        observation("t1", "83169-3", 5.0, "s"),
        observation("gs", "83172-7", 0.9, "m/s"),
    )
    assert both.record["gait_speed_m_s"] == 0.9
    assert "walk_time_s" not in both.record
    assert _reasons(both)["Observation/t1"] == "superseded"


def test_project_codes_and_dxa_method() -> None:
    found = _read(
        observation("a", "asm-dxa", 18500.0, "g", system=PROJECT),
        observation("s", "sppb-total", 8.0, "{score}", system=PROJECT),
    )
    assert found.record["asm_g"] == 18500.0
    assert found.record["asm_method"] == "dxa"
    assert found.record["sppb"] == 8 and isinstance(found.record["sppb"], int)


def test_sarc_f_latest_response() -> None:
    scores = {"sarc_f_strength": 2, "sarc_f_assistance_walking": 1, "sarc_f_rise_from_chair": 1,
              "sarc_f_climb_stairs": 0, "sarc_f_falls": 0}  # fmt: skip
    found = _read(
        sarc_f("q-old", {k: 0 for k in scores}, authored="2026-10-01"),
        sarc_f("q", scores),
    )
    assert {k: found.record[k] for k in scores} == scores
    assert _reasons(found)["QuestionnaireResponse/q-old"] == "superseded"
    from sarcokit import assess

    # 2 + 1 + 1 + 0 + 0 = 4 ≥ 4: positive (Malmstrom 2013).
    assert assess(found.record).screening["sarc_f"]["total"] == 4


def test_not_a_bundle_or_not_one_patient_is_refused() -> None:
    with pytest.raises(InputError) as error:
        read_bundle({"resourceType": "Patient"}, AS_OF)
    assert error.value.problems[0].field == "resourceType"
    with pytest.raises(InputError) as error:
        read_bundle(bundle(patient(), {**patient(), "id": "p2"}), AS_OF)
    assert error.value.problems[0].field == "Patient"


def test_a_value_of_the_wrong_json_type_is_malformed_with_why() -> None:
    # As the bulk reader refuses such a line: the element, the value and what was expected.
    grip = observation("g", "83174-3", 24.0, "kgf")
    grip["valueQuantity"]["value"] = True  # JSON true is not 1
    sppb = observation("s", "sppb-total", 8.0, "{score}", system=PROJECT)
    del sppb["valueQuantity"]
    sppb["valueInteger"] = "8"  # a string is not an integer
    found = _read(grip, sppb)
    assert found.record == {"id": "p1", "sex": "male", "age": 76}
    details = {i.resource: (i.reason, i.detail) for i in found.ignored}
    assert details == {
        "Observation/g": (
            "malformed",
            "valueQuantity.value is true (true or false); expected a number",
        ),
        "Observation/s": (
            "malformed",
            'valueInteger is "8" (a string); expected a whole number of at most 64 bits',
        ),
    }


def test_a_bundle_of_hostile_json_types_is_read_or_refused_never_crashes() -> None:
    weird = {"code": "8302-2", "subject": "Patient/p1", "component": [None, 5],
             "valueQuantity": [170], "effectiveDateTime": 20261101, "id": {"a": 1}}  # fmt: skip
    resources = [{**observation(f"o{i}", "8302-2", 170.0, "cm"), key: value}
                 for i, (key, value) in enumerate(weird.items())]  # fmt: skip
    response = sarc_f("q", {"sarc_f_falls": 1})
    response["item"] = [None, {"linkId": "sarc_f_strength", "answer": [None]}]
    entries = bundle(patient(), *resources, response)
    entries["entry"] += [5, {"fullUrl": "urn:x"}]
    found = read_bundle(entries, AS_OF)
    reasons = {i.resource: (i.reason, i.detail) for i in found.ignored}
    assert reasons["Observation/o0"] == (
        "malformed", 'code is "8302-2" (a string); expected an object'
    )  # fmt: skip
    assert reasons["Observation/o1"][0] == "malformed"
    assert reasons["Observation/o3"][0] == "malformed"
    assert reasons["Bundle.entry[6]"] == (
        "malformed", 'id is {"a": 1} (an object); expected a string'
    )  # fmt: skip
    assert reasons["Bundle.entry[8]"] == ("malformed", "entry holds no resource object")
    assert reasons["Bundle.entry[9]"] == ("malformed", "entry holds no resource object")
    assert "sarc_f_strength" not in found.record
    with pytest.raises(InputError) as error:
        read_bundle(bundle({**patient(), "gender": 5}), AS_OF)
    assert "gender is 5 (a number); expected a string" in error.value.problems[0].message


def test_a_version_specific_reference_names_the_same_patient() -> None:
    # Patient/p1/_history/3 is version 3 of Patient/p1; Patient/p2/_history/3 is still not p1.
    found = _read(
        observation("v", "8302-2", 170.0, "cm", subject={"reference": "Patient/p1/_history/3"}),
        observation("w", "8302-2", 160.0, "cm", subject={"reference": "Patient/p2/_history/3"}),
    )
    assert found.record["height_cm"] == 170.0
    assert _reasons(found) == {"Observation/w": "other_patient"}


def test_a_resource_that_names_no_patient_is_not_taken_for_the_patients() -> None:
    # One Patient in the Bundle does not make an Observation without a subject (or with only a
    # display) hers: that would be a guess, and the bulk reader could not make it either.
    bare = observation("bare", "8302-2", 170.0, "cm")
    del bare["subject"]
    named = observation("named", "29463-7", 70.0, "kg", subject={"display": "J. Smith"})
    response = sarc_f("q", {"sarc_f_falls": 2})
    del response["subject"]
    found = _read(bare, named, response)
    assert "height_cm" not in found.record and "weight_kg" not in found.record
    assert "sarc_f_falls" not in found.record
    words = "no subject: which patient it is about cannot be told"
    assert {(i.resource, i.reason, i.detail) for i in found.ignored} == {
        ("Observation/bare", "other_patient", words),
        ("Observation/named", "other_patient", words),
        ("QuestionnaireResponse/q", "other_patient", words),
    }
