"""Input that users really send: names, types, units, codes, ranges and unit slips."""

from __future__ import annotations

from typing import Any

import pytest

import sarcokit
from sarcokit.fields import InputError, parse_record


def error_of(record: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    payload = sarcokit.assess(record, **kwargs).to_dict()
    assert "definitions" not in payload
    error: dict[str, Any] = payload["error"]
    return error


def test_height_in_centimetres_given_as_metres_is_named_as_a_unit_slip() -> None:
    error = error_of({"id": "a", "sex": "female", "height_m": 165})
    assert error["field"] == "height_m"
    assert error["value"] == 165
    assert "0.9" in error["expected"] and "2.5" in error["expected"]
    assert "height_cm" in error["message"]


def test_height_in_metres_given_as_centimetres_is_named_as_a_unit_slip() -> None:
    error = error_of({"sex": "female", "height_cm": 1.65})
    assert error["field"] == "height_cm"
    assert "90" in error["expected"] and "250" in error["expected"]
    assert "height_m" in error["message"]


def test_creatinine_in_micromoles_given_as_mg_dl_is_named() -> None:
    error = error_of({"sex": "male", "creatinine_mg_dl": 88.4, "cystatin_c_mg_l": 1.0})
    assert error["field"] == "creatinine_mg_dl"
    assert "creatinine_umol_l" in error["message"]


def test_every_problem_of_a_record_is_listed() -> None:
    error = error_of({"sex": "female", "height_m": 165, "grip_kg": 250, "sppb": 13})
    assert {p["field"] for p in error["problems"]} == {"height_m", "grip_kg", "sppb"}


def test_unknown_field_is_rejected_with_a_suggestion() -> None:
    error = error_of({"sex": "male", "grip": 30})
    assert error["field"] == "grip"
    assert "grip_kg" in error["message"]


def test_two_units_for_one_field_are_rejected_not_guessed() -> None:
    error = error_of({"sex": "male", "height_m": 1.7, "height_cm": 170})
    assert "height_m" in error["message"] and "height_cm" in error["message"]


def test_gait_speed_and_timed_walk_together_are_rejected() -> None:
    error = error_of({"gait_speed_m_s": 1.0, "walk_distance_m": 4, "walk_time_s": 4})
    assert "walk_distance_m" in error["message"]


@pytest.mark.parametrize("value", ["1", 1, "M", "man"])
def test_sex_codes_are_never_guessed(value: Any) -> None:
    error = error_of({"sex": value, "grip_kg": 20})
    assert error["field"] == "sex"
    assert "male" in error["expected"]


def test_declared_sex_coding_is_applied() -> None:
    coding = {1: "male", 2: "female"}
    result = sarcokit.assess({"sex": 2, "grip_kg": 17}, definitions=["ewgsop2"], sex_coding=coding)
    # EWGSOP2 Table 3: grip < 16 kg in women; 17 kg is normal for a woman, low for a man.
    assert result.to_dict()["definitions"]["ewgsop2"]["components"]["strength"] == "normal"


def test_undeclared_code_under_a_declared_coding_is_rejected() -> None:
    error = error_of({"sex": 3}, sex_coding={1: "male", 2: "female"})
    assert error["field"] == "sex"


@pytest.mark.parametrize("value", ["abc", True, float("nan"), float("inf"), [1]])
def test_a_number_field_rejects_non_numbers(value: Any) -> None:
    error = error_of({"grip_kg": value})
    assert error["field"] == "grip_kg"


def test_numeric_strings_are_read_as_numbers() -> None:
    assert parse_record({"grip_kg": " 27.5 "})["grip_kg"] == 27.5


def test_integer_fields_reject_fractions() -> None:
    error = error_of({"sppb": 7.5})
    assert error["field"] == "sppb"


@pytest.mark.parametrize(
    ("label", "points"),
    [("none", 0), ("Some", 1), ("a lot or unable", 2), ("无困难", 0), ("困难较大或不能完成", 2)],
)
def test_sarc_f_answer_labels_are_scored(label: str, points: int) -> None:
    assert parse_record({"sarc_f_strength": label})["sarc_f_strength"] == points


def test_sarc_f_unknown_label_is_rejected() -> None:
    with pytest.raises(InputError) as raised:
        parse_record({"sarc_f_falls": "often"})
    assert raised.value.problems[0].field == "sarc_f_falls"


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("yes", True), ("no", False), (0, False)]
)
def test_booleans(value: Any, expected: bool) -> None:
    assert parse_record({"chair_stand_unable": value})["chair_stand_unable"] is expected


def test_grip_trials_use_the_best_trial() -> None:
    result = sarcokit.assess(
        {"sex": "male", "grip_kg_trials": [25.0, 26.9, 24.1]}, definitions=["ewgsop2"]
    )
    reasons = result.to_dict()["definitions"]["ewgsop2"]["reasons"]
    assert reasons[0].startswith("grip 26.9 kg < 27 kg (men)")


def test_grip_trials_and_grip_together_are_rejected() -> None:
    error = error_of({"grip_kg": 20, "grip_kg_trials": [20, 21]})
    assert "grip_kg_trials" in error["message"]


def test_empty_strings_and_nulls_are_missing_not_zero() -> None:
    result = sarcokit.assess(
        {"sex": "male", "grip_kg": "", "gait_speed_m_s": None}, definitions=["ewgsop2"]
    )
    components = result.to_dict()["definitions"]["ewgsop2"]["components"]
    assert components == {
        "strength": "unknown",
        "muscle_quantity": "unknown",
        "physical_performance": "unknown",
    }


def test_bad_record_keeps_its_place_and_the_others_are_assessed() -> None:
    records = [
        {"id": "a", "sex": "male", "grip_kg": 30},
        {"id": "b", "sex": "male", "height_m": 170},
        {"id": "c", "sex": "female", "grip_kg": 10},
    ]
    results = [r.to_dict() for r in sarcokit.assess_many(records, definitions=["ewgsop2"])]
    assert [r["id"] for r in results] == ["a", "b", "c"]
    assert "error" in results[1]
    assert results[0]["definitions"]["ewgsop2"]["category"] == "no_sarcopenia"
    assert results[2]["definitions"]["ewgsop2"]["category"] == "probable_sarcopenia"
