"""How a Result's reasons are built and rendered quickly: the shortcuts must give exactly what the
plain constructors and lookups give."""

from __future__ import annotations

import dataclasses
from decimal import InvalidOperation
from typing import Any

import pytest

import sarcokit
from sarcokit.i18n import label, register_labels, text
from sarcokit.reasons import Reason, reason_fields, reason_of, round_half_up

RECORDS: list[dict[str, Any]] = [
    {"id": "a", "sex": "female", "age": 78, "grip_kg": 17.5, "gait_speed_m_s": 0.9},
    {"id": "b", "sex": "male", "age": 45, "grip_kg": 40, "asm_kg": 21.0, "asm_method": "dxa"},
    # No sex: the cut-offs by sex are listed; AWGS 2025's age bands with no age.
    {"id": "c", "grip_kg": 20.0, "height_cm": 160, "asm_kg": 14.0, "asm_method": "bia"},
    # SARC-F with items missing, chair stands the subject could not do, a condition.
    {
        "id": "d",
        "sex": "male",
        "age": 81,
        "sarc_f_strength": 2,
        "sarc_f_falls": 2,
        "sarc_f_climb_stairs": 2,
        "chair_stand_unable": True,
        "conditions": "cirrhosis",
        "grip_kg": 22.0,
    },
]


def _reasons() -> list[Reason]:
    results = sarcokit.assess_many(RECORDS, estimate_asm="wen2011")
    return [r for result in results for d in result.definitions.values() for r in d.explanations]


def test_every_reason_is_the_object_the_constructor_makes() -> None:
    reasons = _reasons()
    codes = {r.code for r in reasons}
    # The records above reach every kind of test reason, so the check below covers each path.
    assert {"test", "partial", "unable", "sex_unknown", "not_assessed", "category"} <= codes
    names = {f.name for f in dataclasses.fields(Reason)}
    for reason in reasons:
        assert set(vars(reason)) == names
        assert Reason(**vars(reason)) == reason
        with pytest.raises(dataclasses.FrozenInstanceError):
            reason.code = "changed"  # type: ignore[misc]


def test_reasons_of_two_results_share_no_mutable_detail() -> None:
    first, second = (sarcokit.assess(RECORDS[0]) for _ in range(2))
    for one, other in zip(
        first.definitions["ewgsop2"].explanations,
        second.definitions["ewgsop2"].explanations,
        strict=True,
    ):
        assert one == other
        assert one.detail is not other.detail


def test_reason_of_refuses_a_dict_without_every_field() -> None:
    with pytest.raises(TypeError, match="detail"):
        reason_of(reason_fields(code="test"))
    made = reason_of(reason_fields(code="test", detail={"by_method": False}, value=1.5))
    assert made == Reason("test", value=1.5, detail={"by_method": False})


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (2.675, 2, 2.68),  # the float is 2.67499999…; its shortest form is 2.675
        (0.125, 2, 0.13),
        (-2.5, 0, -3.0),  # half away from zero, as a person rounds
        (17.5, 1, 17.5),
        (17.5, 3, 17.5),
        (1e-05, 3, 0.0),
        (123456.0, 0, 123456.0),
    ],
)
def test_round_half_up(value: float, decimals: int, expected: float) -> None:
    assert round_half_up(value, decimals) == expected


def test_round_half_up_gives_a_float_for_an_integer() -> None:
    shown = round_half_up(17, 1)
    assert shown == 17.0 and isinstance(shown, float)


def test_round_half_up_refuses_what_has_no_decimal_form() -> None:
    with pytest.raises(InvalidOperation):
        round_half_up(float("inf"), 1)


def test_a_remembered_label_follows_labels_registered_later() -> None:
    key = "category.zz_reason_building_category"
    assert label("en", key) == text("en", key) == "zz reason building category"
    register_labels("en", {key: "Zed category"})
    assert label("en", key) == "Zed category"
