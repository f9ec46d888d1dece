"""AWGS 2025 (Chen LK et al. Nature Aging 2025, doi:10.1038/s43587-025-01004-y) from the paper.

Cut-offs from Table 2 as transcribed in criteria.md §2.5 (verified against the typeset table),
pathway from Fig. 2, open points from criteria.md §10.9. Every cut-off is tested just below, at
and just above, in each age band (50-64 and 65 or over) and sex; mass boundaries are built so
the decimal ratio lands exactly on the cut-off while naive IEEE-754 division lands just below it
(the float traps, arithmetic in the comments). Expected values never come from the data file.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

import sarcokit

M = "male"
F = "female"
YOUNG = 55  # 50-64 band
OLD = 70  # 65+ band


def outcome(record: dict[str, Any]) -> dict[str, Any]:
    payload = sarcokit.assess(record, definitions=["awgs2025"]).to_dict()
    assert "error" not in payload, payload.get("error")
    value: dict[str, Any] = payload["definitions"]["awgs2025"]
    return value


def _p(record: dict[str, Any], expected: str, name: str) -> Any:
    return pytest.param(record, expected, id=name)


# --- Handgrip (Table 2): 50-64 men < 34.0, women < 20.0; 65+ men < 28.0, women < 18.0 --------
GRIP = [
    _p({"age": YOUNG, "sex": M, "grip_kg": 33.9}, "low", "young-m-33.9"),
    _p({"age": YOUNG, "sex": M, "grip_kg": 34.0}, "normal", "young-m-34.0"),
    _p({"age": YOUNG, "sex": M, "grip_kg": 34.1}, "normal", "young-m-34.1"),
    _p({"age": YOUNG, "sex": F, "grip_kg": 19.9}, "low", "young-f-19.9"),
    _p({"age": YOUNG, "sex": F, "grip_kg": 20.0}, "normal", "young-f-20.0"),
    _p({"age": YOUNG, "sex": F, "grip_kg": 20.1}, "normal", "young-f-20.1"),
    _p({"age": OLD, "sex": M, "grip_kg": 27.9}, "low", "old-m-27.9"),
    _p({"age": OLD, "sex": M, "grip_kg": 28.0}, "normal", "old-m-28.0"),
    _p({"age": OLD, "sex": M, "grip_kg": 28.1}, "normal", "old-m-28.1"),
    _p({"age": OLD, "sex": F, "grip_kg": 17.9}, "low", "old-f-17.9"),
    _p({"age": OLD, "sex": F, "grip_kg": 18.0}, "normal", "old-f-18.0"),
    _p({"age": OLD, "sex": F, "grip_kg": 18.1}, "normal", "old-f-18.1"),
    # band edges in completed years: 64 is 50-64 (30 < 34 low), 65 is 65+ (30 >= 28 normal)
    _p({"age": 64, "sex": M, "grip_kg": 30.0}, "low", "age-64-band-50-64"),
    _p({"age": 64.9, "sex": M, "grip_kg": 30.0}, "low", "age-64.9-still-64"),
    _p({"age": 65, "sex": M, "grip_kg": 30.0}, "normal", "age-65-band-65"),
    _p({"age": 50, "sex": F, "grip_kg": 19.0}, "low", "age-50-band-50-64"),
    # age unknown: decided only where both bands agree (criteria.md §10.9)
    _p({"sex": M, "grip_kg": 27.0}, "low", "age-unknown-27-both-low"),
    _p({"sex": M, "grip_kg": 30.0}, "unknown", "age-unknown-30-bands-disagree"),
    _p({"sex": M, "grip_kg": 34.0}, "normal", "age-unknown-34-both-normal"),
    _p({"sex": F, "grip_kg": 19.0}, "unknown", "age-unknown-f-19-bands-disagree"),
]


@pytest.mark.parametrize(("record", "expected"), GRIP)
def test_grip_cutoffs(record: dict[str, Any], expected: str) -> None:
    assert outcome(record)["components"]["strength"] == expected


# --- ASM/height² (Table 2): DXA 50-64 < 7.2 / < 5.5, 65+ < 7.0 / < 5.4; BIA 50-64 < 7.6 /
# < 5.7, 65+ < 7.0 / < 5.7. Height 1.6 m: 1.6² = 2.56 exactly in decimal, but 1.6 * 1.6 is
# 2.5600000000000005 in IEEE-754, so every ASM = cut-off × 2.56 divides to just below the
# cut-off naively (18.432 / (1.6 * 1.6) = 7.199999999999998): the float traps. Weight 40 kg
# keeps ASM/BMI normal throughout: ASM/BMI = ASM × 2.56 / 40 >= 13.7984 × 2.56 / 40 = 0.883,
# above every ASM/BMI cut-off (largest 0.90 for BIA men 50-64 needs ASM >= 14.0625; the men's
# rows all have ASM >= 17.8944 -> >= 1.145).
ASMI_CUTOFFS = [
    (YOUNG, M, "dxa", "7.2"),
    (YOUNG, F, "dxa", "5.5"),
    (YOUNG, M, "bia", "7.6"),
    (YOUNG, F, "bia", "5.7"),
    (OLD, M, "dxa", "7.0"),
    (OLD, F, "dxa", "5.4"),
    (OLD, M, "bia", "7.0"),
    (OLD, F, "bia", "5.7"),
]


def _asmi_rows() -> list[Any]:
    rows = []
    for age, sex, method, cutoff in ASMI_CUTOFFS:
        for delta, expected in (("-0.01", "low"), ("0", "normal"), ("0.01", "normal")):
            # ASM = (cut-off + delta) × 2.56, exact in decimal (e.g. 7.2 × 2.56 = 18.432)
            asm = float((Decimal(cutoff) + Decimal(delta)) * Decimal("2.56"))
            record = {
                "age": age,
                "sex": sex,
                "height_m": 1.6,
                "weight_kg": 40.0,
                "asm_kg": asm,
                "asm_method": method,
            }
            name = f"{age}-{sex}-{method}-{cutoff}{'' if delta == '0' else delta}"
            rows.append(_p(record, expected, name))
    return rows


@pytest.mark.parametrize(("record", "expected"), _asmi_rows())
def test_asmi_cutoffs_with_float_traps(record: dict[str, Any], expected: str) -> None:
    result = outcome(record)
    assert result["components"]["muscle_quantity"] == expected


# --- ASM/BMI (Table 2): DXA 50-64 < 0.80 / < 0.55, 65+ < 0.73 / < 0.52; BIA 50-64 < 0.90 /
# < 0.63, 65+ < 0.83 / < 0.57. Each row: height, weight -> BMI exact in decimal, ASM =
# cut-off × BMI, and the naive IEEE-754 ASM / (weight / (h * h)) lands just below the cut-off;
# ASMI stays well above its cut-off so only ASM/BMI decides the mass.
ASM_BMI_ROWS = [
    # 1.45² = 2.1025; 50.46 / 2.1025 = 24.0; 0.80 × 24 = 19.2 (naive 0.7999999999999999);
    # ASMI 19.2 / 2.1025 = 9.13 >= 7.2
    (YOUNG, M, "dxa", "0.80", 1.45, 50.46, "24"),
    # 75.69 / 2.1025 = 36.0; 0.90 × 36 = 32.4 (naive 0.8999999999999999); ASMI 15.41 >= 7.6
    (YOUNG, M, "bia", "0.90", 1.45, 75.69, "36"),
    # 0.55 × 24 = 13.2 (naive 0.5499999999999999); ASMI 13.2 / 2.1025 = 6.28 >= 5.5
    (YOUNG, F, "dxa", "0.55", 1.45, 50.46, "24"),
    # 1.65² = 2.7225; 76.23 / 2.7225 = 28.0; 0.63 × 28 = 17.64 (naive 0.6299999999999999);
    # ASMI 6.48 >= 5.7
    (YOUNG, F, "bia", "0.63", 1.65, 76.23, "28"),
    # 87.12 / 2.7225 = 32.0; 0.73 × 32 = 23.36 (naive 0.7299999999999999); ASMI 8.58 >= 7.0
    (OLD, M, "dxa", "0.73", 1.65, 87.12, "32"),
    # 0.83 × 28 = 23.24 (naive 0.8299999999999998); ASMI 8.54 >= 7.0
    (OLD, M, "bia", "0.83", 1.65, 76.23, "28"),
    # 1.5² = 2.25; 83.25 / 2.25 = 37.0; 0.52 × 37 = 19.24 (naive 0.5199999999999999);
    # ASMI 8.55 >= 5.4
    (OLD, F, "dxa", "0.52", 1.5, 83.25, "37"),
    # 0.57 × 32 = 18.24 (naive 0.5699999999999998); ASMI 18.24 / 2.7225 = 6.70 >= 5.7
    (OLD, F, "bia", "0.57", 1.65, 87.12, "32"),
]


def _asm_bmi_rows() -> list[Any]:
    rows = []
    for age, sex, method, cutoff, height, weight, bmi in ASM_BMI_ROWS:
        for delta, expected in (("-0.001", "low"), ("0", "normal"), ("0.001", "normal")):
            asm = float((Decimal(cutoff) + Decimal(delta)) * Decimal(bmi))
            record = {
                "age": age,
                "sex": sex,
                "height_m": height,
                "weight_kg": weight,
                "asm_kg": asm,
                "asm_method": method,
            }
            name = f"{age}-{sex}-{method}-{cutoff}{'' if delta == '0' else delta}"
            rows.append(_p(record, expected, name))
    return rows


@pytest.mark.parametrize(("record", "expected"), _asm_bmi_rows())
def test_asm_bmi_cutoffs_with_float_traps(record: dict[str, Any], expected: str) -> None:
    assert outcome(record)["components"]["muscle_quantity"] == expected


def test_both_mass_indices_are_reported() -> None:
    # 1.6 m, 64 kg -> BMI 64 / 2.56 = 25.0; ASM 17.0 -> ASMI 17 / 2.56 = 6.640625 -> 6.64 and
    # ASM/BMI 17 / 25 = 0.68 (reported to 3 dp); man 70, DXA: 6.64 < 7.0 and 0.68 < 0.73
    payload = sarcokit.assess(
        {"age": OLD, "sex": M, "height_m": 1.6, "weight_kg": 64.0, "asm_kg": 17.0},
        definitions=["awgs2025"],
    ).to_dict()
    assert payload["derived"]["asmi_kg_m2"] == 6.64
    assert payload["derived"]["alm_bmi"] == 0.68
    reasons = payload["definitions"]["awgs2025"]["reasons"]
    assert any(r.startswith("ASMI 6.64 kg/m² < 7.0") for r in reasons)
    assert any(r.startswith("ALM/BMI 0.680 < 0.73") for r in reasons)


def test_mass_is_low_when_either_index_is_low_and_open_when_one_is_missing() -> None:
    # Man 70, 1.6 m, DXA ASM 19.0: ASMI 19 / 2.56 = 7.42 >= 7.0 (normal). Weight 80 kg: BMI
    # 31.25, ASM/BMI 19 / 31.25 = 0.608 < 0.73 (low) -> mass low ("or", Fig. 2).
    base = {"age": OLD, "sex": M, "height_m": 1.6, "asm_kg": 19.0, "asm_method": "dxa"}
    assert outcome({**base, "weight_kg": 80.0})["components"]["muscle_quantity"] == "low"
    # Without weight ASM/BMI is unknown and could be low: mass is not normal, it is unknown.
    assert outcome(base)["components"]["muscle_quantity"] == "unknown"


# --- Outcome measures (Table 2), never components: 5x chair stand >= 10.0 s (50-64), >= 12.0 s
# (65+); 6-m gait < 1.2 m/s (50-64), < 1.0 m/s (65+).
OUTCOMES = [
    _p({"age": YOUNG, "chair_stand_5x_s": 9.9}, "normal", "chair-young-9.9"),
    _p({"age": YOUNG, "chair_stand_5x_s": 10.0}, "low", "chair-young-10.0"),
    _p({"age": YOUNG, "chair_stand_5x_s": 10.1}, "low", "chair-young-10.1"),
    _p({"age": OLD, "chair_stand_5x_s": 11.9}, "normal", "chair-old-11.9"),
    _p({"age": OLD, "chair_stand_5x_s": 12.0}, "low", "chair-old-12.0"),
    _p({"age": OLD, "chair_stand_5x_s": 12.1}, "low", "chair-old-12.1"),
    _p({"age": OLD, "chair_stand_unable": True}, "low", "chair-unable"),
    _p({"chair_stand_5x_s": 11.0}, "unknown", "chair-age-unknown-11-disagree"),
]
GAIT = [
    _p({"age": YOUNG, "gait_speed_m_s": 1.19}, "low", "gait-young-1.19"),
    _p({"age": YOUNG, "gait_speed_m_s": 1.2}, "normal", "gait-young-1.2"),
    _p({"age": YOUNG, "gait_speed_m_s": 1.21}, "normal", "gait-young-1.21"),
    _p({"age": OLD, "gait_speed_m_s": 0.99}, "low", "gait-old-0.99"),
    _p({"age": OLD, "gait_speed_m_s": 1.0}, "normal", "gait-old-1.0"),
    _p({"age": OLD, "gait_speed_m_s": 1.01}, "normal", "gait-old-1.01"),
    _p({"gait_speed_m_s": 0.9}, "low", "gait-age-unknown-0.9-both-low"),
]


@pytest.mark.parametrize(("record", "expected"), OUTCOMES)
def test_chair_stand_outcome(record: dict[str, Any], expected: str) -> None:
    result = outcome({"sex": F, **record})
    assert result["outcomes"]["chair_stand"] == expected
    assert "chair_stand" not in result["components"]


@pytest.mark.parametrize(("record", "expected"), GAIT)
def test_gait_speed_outcome(record: dict[str, Any], expected: str) -> None:
    result = outcome({"sex": M, **record})
    assert result["outcomes"]["gait_speed"] == expected
    assert "gait_speed" not in result["components"]


def test_outcomes_never_change_the_category() -> None:
    # Man 70, grip 30 >= 28 (normal), age >= 65 is a risk factor -> at risk, whether gait is
    # 0.5 m/s (< 1.0, low) and the chair stand 20 s (>= 12, low) or both normal.
    base = {"age": OLD, "sex": M, "grip_kg": 30.0}
    slow = outcome({**base, "gait_speed_m_s": 0.5, "chair_stand_5x_s": 20.0})
    fast = outcome({**base, "gait_speed_m_s": 1.5, "chair_stand_5x_s": 8.0})
    assert slow["category"] == fast["category"] == "at_risk"
    assert slow["outcomes"] == {"gait_speed": "low", "chair_stand": "low"}
    assert fast["outcomes"] == {"gait_speed": "normal", "chair_stand": "normal"}


# --- Categories (Fig. 2; criteria.md §10.9) ---------------------------------------------------
NO_RISK = {
    "muscle_health_concern": False,
    "immobilisation_or_functional_decline": False,
    "dysphagia": False,
    "wasting_condition": False,
    "perceived_weakness": False,
    "weight_loss_6mo_kg": 0.0,
    "height_m": 1.6,
    "weight_kg": 64.0,  # BMI 25.0 >= 20: not underweight
}
# Man 70, 1.6 m, 64 kg (BMI 25), DXA ASM 17.0: ASMI 6.64 < 7.0 -> low mass.
LOW_MASS_OLD_M = {"height_m": 1.6, "weight_kg": 64.0, "asm_kg": 17.0, "asm_method": "dxa"}
# ASM 20.0: ASMI 20 / 2.56 = 7.8125 >= 7.0 and ASM/BMI 20 / 25 = 0.80 >= 0.73 -> normal mass.
NORMAL_MASS_OLD_M = {"height_m": 1.6, "weight_kg": 64.0, "asm_kg": 20.0, "asm_method": "dxa"}


def test_sarcopenia_is_low_mass_and_low_grip() -> None:
    result = outcome({"age": OLD, "sex": M, "grip_kg": 27.0, **LOW_MASS_OLD_M})
    assert result["category"] == "sarcopenia"


def test_possible_sarcopenia_when_mass_not_measured() -> None:
    # grip 27 < 28 and no mass measurement: possible sarcopenia, refer to confirm by DXA/BIA
    result = outcome({"age": OLD, "sex": M, "grip_kg": 27.0})
    assert result["category"] == "possible_sarcopenia"
    assert "refer_for_confirmation" in result["next_steps"]
    assert "confirm_muscle_mass_dxa_bia" in result["next_steps"]


def test_low_grip_normal_mass_is_no_sarcopenia_looking_for_other_causes() -> None:
    result = outcome({"age": OLD, "sex": M, "grip_kg": 27.0, **NORMAL_MASS_OLD_M})
    assert result["category"] == "no_sarcopenia"
    assert result["components"]["strength"] == "low"
    assert result["next_steps"] == ["assess_other_causes_of_weakness"]


def test_normal_grip_at_65_or_over_is_at_risk() -> None:
    # age >= 65 is risk factor 1 of Fig. 2
    result = outcome({"age": 65, "sex": F, "grip_kg": 18.0})
    assert result["category"] == "at_risk"
    assert result["components"]["risk_factors"] == "present"
    assert result["next_steps"] == ["muscle_health_promotion"]


def test_normal_grip_50_to_64_without_risk_factors_is_no_sarcopenia() -> None:
    result = outcome({"age": YOUNG, "sex": M, "grip_kg": 40.0, **NO_RISK})
    assert result["category"] == "no_sarcopenia"
    assert result["next_steps"] == []


@pytest.mark.parametrize(
    ("factor", "value"),
    [
        ("muscle_health_concern", True),
        ("immobilisation_or_functional_decline", True),
        ("dysphagia", True),
        ("wasting_condition", True),
        ("perceived_weakness", True),
        ("weight_loss_6mo_kg", 2.0),  # >= 2 kg per 6 months (malnutrition)
        ("weight_kg", 51.1),  # 51.1 / 2.56 = 19.96 < 20 (underweight)
    ],
)
def test_each_risk_factor_makes_normal_grip_at_risk(factor: str, value: Any) -> None:
    result = outcome({"age": YOUNG, "sex": M, "grip_kg": 40.0, **NO_RISK, factor: value})
    assert result["category"] == "at_risk"


def test_malnutrition_boundaries() -> None:
    # weight loss 1.9 kg < 2 -> absent; BMI exactly 20 (51.2 / 2.56 = 20.0) is not < 20
    record = {"age": YOUNG, "sex": M, "grip_kg": 40.0, **NO_RISK}
    assert outcome({**record, "weight_loss_6mo_kg": 1.9})["category"] == "no_sarcopenia"
    assert outcome({**record, "weight_kg": 51.2})["category"] == "no_sarcopenia"


def test_a_missing_risk_factor_leaves_50_to_64_open() -> None:
    # normal grip at 55 and dysphagia not asked: at risk if present, no sarcopenia if absent
    record = {"age": YOUNG, "sex": M, "grip_kg": 40.0, **NO_RISK}
    del record["dysphagia"]
    result = outcome(record)
    assert result["category"] == "indeterminate"
    assert result["next_steps"] == ["assess_risk_factors"]


def test_under_50_is_not_applicable_said_plainly() -> None:
    result = outcome({"age": 49, "sex": M, "grip_kg": 20.0, **LOW_MASS_OLD_M})
    assert result["category"] == "not_applicable"
    assert result["next_steps"] == []
    assert result["reasons"][0].startswith("age 49 is under 50: AWGS 2025 applies from age 50")
    payload = sarcokit.assess({"age": 49, "sex": M}, definitions=["awgs2025"]).to_dict()
    assert payload["definitions"]["awgs2025"]["category"] == "not_applicable"


def test_age_unknown_decides_where_both_bands_agree() -> None:
    # grip 27 (low in both bands) and DXA ASMI 6.64 with ASM/BMI 0.68 (low in both bands:
    # < 7.2 and < 7.0; < 0.80 and < 0.73) -> sarcopenia without the age
    result = outcome({"sex": M, "grip_kg": 27.0, **LOW_MASS_OLD_M})
    assert result["category"] == "sarcopenia"
    assert any("age not given" in r for r in result["reasons"])


# --- Case-finding (Fig. 2): age 65 or over only; reported, never the category ---------------
def test_case_finding_applies_at_65_or_over_only() -> None:
    young = outcome({"age": 64, "sex": M, "calf_cm": 30.0})
    assert young["case_finding"] == {"case_finding": "not_applicable"}
    old = outcome({"age": 65, "sex": M, "calf_cm": 33.9})  # 33.9 < 34 (men)
    assert old["case_finding"] == {"case_finding": "positive"}
    assert outcome({"age": OLD, "sex": M, "calf_cm": 34.0})["case_finding"] == {
        "case_finding": "negative"
    }
    assert outcome({"age": OLD, "sex": F, "calf_cm": 32.9})["case_finding"] == {
        "case_finding": "positive"
    }


@pytest.mark.parametrize(
    ("ring", "expected"),
    [("smaller", "positive"), ("just_fits", "negative"), ("bigger", "negative")],
)
def test_finger_ring_test(ring: str, expected: str) -> None:
    # Tanaka 2018: "smaller" (a gap appears) is the positive screen (criteria.md §3.5)
    assert outcome({"age": OLD, "finger_ring": ring})["case_finding"] == {"case_finding": expected}


def test_cohort_columns_and_duckdb() -> None:
    import duckdb
    from polars.testing import assert_frame_equal

    frame = pl.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "sex": [M, M, F, None],
            "age": [45.0, 55.0, 70.0, None],
            "grip_kg": [20.0, 30.0, 17.0, 27.0],
        }
    )
    got = sarcokit.evaluate(frame, ["awgs2025"])
    assert got["awgs2025_category"].cast(pl.String).to_list() == [
        "not_applicable",  # age 45 < 50
        "possible_sarcopenia",  # 30 < 34 (men 50-64), mass not measured
        "possible_sarcopenia",  # 17 < 18 (women 65+)
        "indeterminate",  # sex unknown: 27 < 28 (men 65+) but >= 20 (women 50-64)
    ]
    assert got["awgs2025_sarcopenia"].to_list() == [None, False, False, None]
    other = sarcokit.evaluate(duckdb.from_arrow(frame.to_arrow()), ["awgs2025"]).pl()
    assert_frame_equal(other.select(got.columns), got, check_dtypes=False)


def test_age_does_not_hide_other_reasons() -> None:
    # AWGS 2019 gives no cut-off for CT-measured ASM; knowing the age must not silence that.
    record = {"sex": M, "age": OLD, "height_m": 1.6, "asm_kg": 15.0, "asm_method": "ct"}
    payload = sarcokit.assess(record, definitions=["awgs2019"]).to_dict()
    reasons = payload["definitions"]["awgs2019"]["reasons"]
    assert any("gives no cut-off for asm_method ct" in r for r in reasons)
    # AWGS 2025 at 45: one plain scope reason and no cut-off sentences.
    young = outcome({"sex": M, "age": 45, "grip_kg": 20.0})
    assert not any("Table 2" in r for r in young["reasons"][1:])
