"""Missing inputs, decided vs indeterminate, and known failure modes of existing tools.

Expected values come from the source papers as summarised in
/work/shared/reference/criteria.md (§2, §3, §5, §8, §10) and DESIGN.md, never from the
criteria data files. A category is `indeterminate` only when a missing input could change
it (criteria.md §8.3; DESIGN.md principle 2); decided answers are given otherwise.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import sarcokit

M = "male"
F = "female"


def assess(record: dict[str, Any], definition: str | None = None, **kwargs: Any) -> dict[str, Any]:
    definitions = [definition] if definition else None
    result: dict[str, Any] = sarcokit.assess(record, definitions=definitions, **kwargs).to_dict()
    return result


def category(record: dict[str, Any], definition: str) -> str:
    result = assess(record, definition)
    assert "error" not in result, result.get("error")
    value: str = result["definitions"][definition]["category"]
    return value


def components(record: dict[str, Any], definition: str) -> dict[str, str]:
    result = assess(record, definition)
    assert "error" not in result, result.get("error")
    value: dict[str, str] = result["definitions"][definition]["components"]
    return value


# Reusable measurements (all cut-offs from criteria.md §1-§2).
# Man, height 1.5 m (1.5² = 2.25): ASM 13.5 kg -> ASMI 6.0 (low for EWGSOP2 <7.0, AWGS <7.0,
# IWGS <=7.23); ASM 18.0 kg -> ASMI 8.0 (normal everywhere). ASM 13.5 < 20 kg is also low
# as absolute ASM (EWGSOP2 Table 3); 18.0 < 20 kg too, so normal-mass men use height 1.6
# with ASM 22.0 kg -> ASMI 8.59 (normal), ASM 22 >= 20 (normal).
LOW_MASS_M = {"height_m": 1.5, "asm_kg": 13.5, "asm_method": "dxa"}
NORMAL_MASS_M = {"height_m": 1.6, "asm_kg": 22.0, "asm_method": "dxa"}


CATEGORY_CASES = [
    # --- EWGSOP2 (Cruz-Jentoft 2019; criteria.md §2.2) -----------------------------------
    # normal strength ends the pathway: grip 30 >= 27 -> no sarcopenia, nothing else needed
    pytest.param("ewgsop2", {"sex": M, "grip_kg": 30.0}, "no_sarcopenia", id="ewgsop2-normal-grip"),
    # normal strength overrides low mass and low performance (§2.2: "Mass or performance
    # results do not override it")
    pytest.param(
        "ewgsop2",
        {"sex": M, "grip_kg": 30.0, "gait_speed_m_s": 0.5, **LOW_MASS_M},
        "no_sarcopenia",
        id="ewgsop2-normal-grip-overrides",
    ),
    # low grip only (26 < 27) -> probable sarcopenia (criterion 1)
    pytest.param("ewgsop2", {"sex": M, "grip_kg": 26.0}, "probable_sarcopenia", id="ewgsop2-low"),
    # low strength + normal mass: confirmation fails, stays probable (criterion 1 only)
    pytest.param(
        "ewgsop2",
        {"sex": M, "grip_kg": 26.0, **NORMAL_MASS_M},
        "probable_sarcopenia",
        id="ewgsop2-low-grip-normal-mass",
    ),
    # low strength + low mass, performance unknown -> sarcopenia (confirmed; stage 2 established)
    pytest.param(
        "ewgsop2",
        {"sex": M, "grip_kg": 26.0, **LOW_MASS_M},
        "sarcopenia",
        id="ewgsop2-confirmed-perf-unknown",
    ),
    # all three low (gait 0.8 <= 0.8) -> severe
    pytest.param(
        "ewgsop2",
        {"sex": M, "grip_kg": 26.0, "gait_speed_m_s": 0.8, **LOW_MASS_M},
        "severe_sarcopenia",
        id="ewgsop2-severe",
    ),
    # strength unknown (no grip, no chair stand) -> indeterminate even with low mass
    pytest.param(
        "ewgsop2", {"sex": M, **LOW_MASS_M}, "indeterminate", id="ewgsop2-strength-unknown"
    ),
    # --- EWGSOP 2010 (criteria.md §2.1) --------------------------------------------------
    # mass normal -> no sarcopenia (criterion 1 required)
    pytest.param(
        "ewgsop2010", {"sex": M, "muscle_mass_low": False}, "no_sarcopenia", id="e10-mass-normal"
    ),
    # gait >0.8 and grip normal -> case-finding algorithm stops: no sarcopenia
    pytest.param(
        "ewgsop2010",
        {"sex": M, "grip_kg": 35.0, "gait_speed_m_s": 1.2},
        "no_sarcopenia",
        id="e10-strength-perf-normal",
    ),
    # low mass alone -> presarcopenia
    pytest.param(
        "ewgsop2010",
        {"sex": M, "muscle_mass_low": True, "grip_kg": 35.0, "gait_speed_m_s": 1.2},
        "presarcopenia",
        id="e10-presarcopenia",
    ),
    # low mass + low grip (25 < 30) -> sarcopenia
    pytest.param(
        "ewgsop2010",
        {"sex": M, "muscle_mass_low": True, "grip_kg": 25.0, "gait_speed_m_s": 1.2},
        "sarcopenia",
        id="e10-sarcopenia",
    ),
    # all three -> severe (SPPB 6 <= 8)
    pytest.param(
        "ewgsop2010",
        {"sex": M, "muscle_mass_low": True, "grip_kg": 25.0, "sppb": 6},
        "severe_sarcopenia",
        id="e10-severe",
    ),
    # low grip, mass unknown -> could be sarcopenia or not
    pytest.param("ewgsop2010", {"sex": M, "grip_kg": 25.0}, "indeterminate", id="e10-low-grip"),
    # --- AWGS 2014 (criteria.md §2.3) ----------------------------------------------------
    # grip and gait normal -> no sarcopenia without measuring mass
    pytest.param(
        "awgs2014",
        {"sex": M, "grip_kg": 30.0, "gait_speed_m_s": 1.0},
        "no_sarcopenia",
        id="awgs2014-both-normal",
    ),
    # low grip (25 < 26), mass unknown -> indeterminate
    pytest.param("awgs2014", {"sex": M, "grip_kg": 25.0}, "indeterminate", id="awgs2014-low-grip"),
    pytest.param(
        "awgs2014",
        {"sex": M, "grip_kg": 25.0, **LOW_MASS_M},
        "sarcopenia",
        id="awgs2014-sarcopenia",
    ),
    # low mass with normal grip and gait -> no sarcopenia (mass alone is not sarcopenia)
    pytest.param(
        "awgs2014",
        {"sex": M, "grip_kg": 30.0, "gait_speed_m_s": 1.0, **LOW_MASS_M},
        "no_sarcopenia",
        id="awgs2014-mass-only",
    ),
    # --- AWGS 2019 hospital (criteria.md §2.4, §10.4) -------------------------------------
    # low grip (27 < 28) + low gait (0.9 < 1.0), mass unknown -> indeterminate
    pytest.param(
        "awgs2019",
        {"sex": M, "grip_kg": 27.0, "gait_speed_m_s": 0.9},
        "indeterminate",
        id="awgs2019-low-grip-gait-mass-unknown",
    ),
    # low grip + low gait + NORMAL mass -> no sarcopenia (never "possible" in hospital)
    pytest.param(
        "awgs2019",
        {"sex": M, "grip_kg": 27.0, "gait_speed_m_s": 0.9, **NORMAL_MASS_M},
        "no_sarcopenia",
        id="awgs2019-normal-mass",
    ),
    # normal grip and normal performance, mass unknown -> no sarcopenia
    pytest.param(
        "awgs2019",
        {"sex": M, "grip_kg": 30.0, "gait_speed_m_s": 1.2},
        "no_sarcopenia",
        id="awgs2019-both-normal",
    ),
    # low mass + normal grip, performance unknown -> indeterminate
    pytest.param(
        "awgs2019",
        {"sex": M, "grip_kg": 30.0, **LOW_MASS_M},
        "indeterminate",
        id="awgs2019-low-mass-perf-unknown",
    ),
    # low mass + low grip, performance unknown -> sarcopenia established
    pytest.param(
        "awgs2019",
        {"sex": M, "grip_kg": 27.0, **LOW_MASS_M},
        "sarcopenia",
        id="awgs2019-sarcopenia-perf-unknown",
    ),
    # low mass + low grip + low performance (chair 12 s >= 12) -> severe
    pytest.param(
        "awgs2019",
        {"sex": M, "grip_kg": 27.0, "chair_stand_5x_s": 12.0, **LOW_MASS_M},
        "severe_sarcopenia",
        id="awgs2019-severe",
    ),
    # --- AWGS 2019 community (criteria.md §2.4, §10.4) ------------------------------------
    # low grip, no mass at all -> possible sarcopenia
    pytest.param(
        "awgs2019_community", {"sex": F, "grip_kg": 17.0}, "possible_sarcopenia", id="comm-grip"
    ),
    # chair stand 12 s (>= 12) alone -> possible sarcopenia
    pytest.param(
        "awgs2019_community",
        {"sex": M, "chair_stand_5x_s": 12.0},
        "possible_sarcopenia",
        id="comm-chair",
    ),
    # grip and chair stand measured and normal -> no possible sarcopenia
    pytest.param(
        "awgs2019_community",
        {"sex": M, "grip_kg": 30.0, "chair_stand_5x_s": 10.0},
        "no_possible_sarcopenia",
        id="comm-normal",
    ),
    # no strength test, case-finding negative (SARC-F 2 < 4, calf 35 >= 34) -> negative screen
    pytest.param(
        "awgs2019_community",
        {
            "sex": M,
            "calf_cm": 35.0,
            "sarc_f_strength": 1,
            "sarc_f_assistance_walking": 1,
            "sarc_f_rise_from_chair": 0,
            "sarc_f_climb_stairs": 0,
            "sarc_f_falls": 0,
        },
        "case_finding_negative",
        id="comm-cf-negative",
    ),
    # no strength test and a positive screen (calf 30 < 34) -> cannot decide
    pytest.param(
        "awgs2019_community",
        {"sex": M, "calf_cm": 30.0},
        "indeterminate",
        id="comm-cf-positive-no-test",
    ),
    # nothing at all -> indeterminate
    pytest.param("awgs2019_community", {"sex": M}, "indeterminate", id="comm-empty"),
    # --- cn2021 (criteria.md §10.5, AWGS 2019 cut-offs) ----------------------------------
    pytest.param("cn2021", {"sex": M, "grip_kg": 27.0}, "possible_sarcopenia", id="cn-possible"),
    pytest.param(
        "cn2021",
        {"sex": M, "grip_kg": 27.0, **LOW_MASS_M},
        "sarcopenia",
        id="cn-sarcopenia",
    ),
    pytest.param(
        "cn2021",
        {"sex": M, "grip_kg": 27.0, "gait_speed_m_s": 0.9, **LOW_MASS_M},
        "severe_sarcopenia",
        id="cn-severe",
    ),
    pytest.param(
        "cn2021",
        {"sex": M, "grip_kg": 30.0, "gait_speed_m_s": 1.2},
        "no_sarcopenia",
        id="cn-normal",
    ),
    # normal grip, performance unknown: could still be possible sarcopenia
    pytest.param("cn2021", {"sex": M, "grip_kg": 30.0}, "indeterminate", id="cn-perf-unknown"),
    # --- IWGS 2011 (criteria.md §2.6) ----------------------------------------------------
    pytest.param("iwgs2011", {"sex": M, "gait_speed_m_s": 1.1}, "no_sarcopenia", id="iwgs-normal"),
    pytest.param(
        "iwgs2011", {"sex": M, "gait_speed_m_s": 0.9}, "indeterminate", id="iwgs-mass-unknown"
    ),
    pytest.param(
        "iwgs2011",
        {"sex": M, "gait_speed_m_s": 0.9, **LOW_MASS_M},
        "sarcopenia",
        id="iwgs-sarcopenia",
    ),
    # --- FNIH 2014 (criteria.md §2.8) ----------------------------------------------------
    pytest.param("fnih2014", {"sex": M, "grip_kg": 30.0}, "no_sarcopenia", id="fnih-normal-grip"),
    pytest.param("fnih2014", {"sex": M, "grip_kg": 25.0}, "indeterminate", id="fnih-low-grip"),
    # weak (25 < 26) + ALM/BMI 15 / 25 = 0.6 < 0.789 (BMI 64 / 2.56 = 25), gait unknown
    pytest.param(
        "fnih2014",
        {
            "sex": M,
            "grip_kg": 25.0,
            "height_m": 1.6,
            "weight_kg": 64.0,
            "asm_kg": 15.0,
            "asm_method": "dxa",
        },
        "weakness_with_low_lean_mass",
        id="fnih-weak-low-lean",
    ),
    pytest.param(
        "fnih2014",
        {
            "sex": M,
            "grip_kg": 25.0,
            "height_m": 1.6,
            "weight_kg": 64.0,
            "asm_kg": 15.0,
            "asm_method": "dxa",
            "gait_speed_m_s": 0.7,
        },
        "weakness_slowness_low_lean_mass",
        id="fnih-weak-slow-low-lean",
    ),
    # --- SDOC 2020 (criteria.md §2.9) ----------------------------------------------------
    # normal grip (40 >= 35.5), gait unknown -> no sarcopenia (weakness AND slowness needed)
    pytest.param("sdoc2020", {"sex": M, "grip_kg": 40.0}, "no_sarcopenia", id="sdoc-normal-grip"),
    # normal gait, grip unknown -> no sarcopenia
    pytest.param(
        "sdoc2020", {"sex": F, "gait_speed_m_s": 1.0}, "no_sarcopenia", id="sdoc-normal-gait"
    ),
    pytest.param("sdoc2020", {"sex": M, "grip_kg": 30.0}, "indeterminate", id="sdoc-low-grip"),
    pytest.param(
        "sdoc2020",
        {"sex": M, "grip_kg": 30.0, "gait_speed_m_s": 0.7},
        "sarcopenia",
        id="sdoc-sarcopenia",
    ),
]


@pytest.mark.parametrize(("definition", "record", "expected"), CATEGORY_CASES)
def test_decided_vs_indeterminate(definition: str, record: dict[str, Any], expected: str) -> None:
    assert category(record, definition) == expected


def test_ewgsop2_probable_asks_to_confirm_muscle_quantity() -> None:
    # EWGSOP2 F-A-C-S: after low strength, Confirm by muscle quantity (criteria.md §2.2)
    result = assess({"sex": M, "grip_kg": 26.0}, "ewgsop2")["definitions"]["ewgsop2"]
    assert result["category"] == "probable_sarcopenia"
    assert result["components"]["muscle_quantity"] == "unknown"
    assert "confirm_muscle_quantity" in result["next_steps"]
    # the result says why (DESIGN.md principle 7)
    assert any("grip" in reason for reason in result["reasons"])


def test_missing_performance_is_never_low() -> None:
    # A missing gait / SPPB / TUG / 400 m is unknown, never low (DESIGN.md principle 2).
    result = assess({"sex": M, "grip_kg": 26.0, **LOW_MASS_M})
    for definition in ("ewgsop2", "awgs2019", "cn2021", "fnih2014", "sdoc2020"):
        assert result["definitions"][definition]["components"]["physical_performance"] == (
            "unknown"
        ), definition
    assert result["definitions"]["ewgsop2"]["category"] != "severe_sarcopenia"
    assert result["definitions"]["awgs2019"]["category"] != "severe_sarcopenia"
    assert result["derived"]["gait_speed_m_s"] is None


def test_missing_performance_is_never_normal_either() -> None:
    # A missing gait is not read as normal: IWGS needs gait, so low mass alone is undecided.
    assert category({"sex": M, **LOW_MASS_M}, "iwgs2011") == "indeterminate"


# ---------------------------------------------------------------------------------------------
# SARC-F (Malmstrom 2013; criteria.md §3.1): positive if total >= 4; a missing item makes the
# total indeterminate (never imputed as 0).

SARC_F_ITEMS = (
    "sarc_f_strength",
    "sarc_f_assistance_walking",
    "sarc_f_rise_from_chair",
    "sarc_f_climb_stairs",
    "sarc_f_falls",
)


def _sarc_f(*points: int) -> dict[str, Any]:
    return dict(zip(SARC_F_ITEMS, points, strict=False))


@pytest.mark.parametrize(
    ("items", "total", "positive"),
    [
        pytest.param(_sarc_f(1, 1, 1, 1, 0), 4, True, id="total-4-positive"),
        pytest.param(_sarc_f(1, 1, 1, 0, 0), 3, False, id="total-3-negative"),
        pytest.param(_sarc_f(0, 0, 0, 0, 0), 0, False, id="total-0"),
        pytest.param(_sarc_f(2, 2, 2, 2, 2), 10, True, id="total-10"),
        # four items answered (sum 8 >= 4 already) but one missing: total stays None, and
        # the flag is decided (8..10 >= 4, criteria.md §10.10)
        pytest.param(_sarc_f(2, 2, 2, 2), None, True, id="one-missing"),
        # four zeros, falls missing: 0..2 < 4 -> negative (§10.10)
        pytest.param(_sarc_f(0, 0, 0, 0), None, False, id="one-missing-zeros"),
    ],
)
def test_sarc_f_total_and_missing_item(
    items: dict[str, Any], total: int | None, positive: bool | None
) -> None:
    sarc_f = assess({"sex": F, **items})["screening"]["sarc_f"]
    assert sarc_f["total"] == total
    assert sarc_f["positive"] is positive


# ---------------------------------------------------------------------------------------------
# Height units (criteria.md §4, §8.2; DESIGN.md principle 4)


def test_height_cm_is_converted() -> None:
    # 165 cm -> 1.65 m; BMI 65 / 1.65² = 65 / 2.7225 = 23.875... -> 23.88 (2 dp, half-up)
    # ASMI 16.335 / 2.7225 = 6.0 exactly
    result = assess({"sex": F, "height_cm": 165, "weight_kg": 65.0, "asm_kg": 16.335})
    assert "error" not in result
    assert result["derived"]["bmi_kg_m2"] == pytest.approx(23.88, abs=1e-9)
    assert result["derived"]["asmi_kg_m2"] == pytest.approx(6.0, abs=1e-9)


def test_height_m_given_in_cm_is_rejected_naming_height_cm() -> None:
    result = assess({"id": "p1", "sex": F, "height_m": 165, "weight_kg": 65.0})
    assert "definitions" not in result
    error = result["error"]
    assert error["field"] == "height_m"
    assert error["value"] == 165
    assert "height_cm" in error["message"]
    assert error["expected"]
    assert [p["field"] for p in error["problems"]] == ["height_m"]
    assert result["id"] == "p1"


# ---------------------------------------------------------------------------------------------
# Sex-specific cut-offs (criteria.md §7 #1)


def test_male_grip_cutoff_never_applied_to_women() -> None:
    # EWGSOP2 Table 3: <27 kg men, <16 kg women. 17 kg is normal for a woman, low for a man.
    assert components({"sex": F, "grip_kg": 17.0}, "ewgsop2")["strength"] == "normal"
    assert components({"sex": M, "grip_kg": 17.0}, "ewgsop2")["strength"] == "low"
    assert category({"sex": F, "grip_kg": 17.0}, "ewgsop2") == "no_sarcopenia"
    assert category({"sex": M, "grip_kg": 17.0}, "ewgsop2") == "probable_sarcopenia"


# ---------------------------------------------------------------------------------------------
# AWGS 2019 settings (criteria.md §2.4, §7 #18, §10.4)

AWGS2019_RECORDS = [
    {"sex": M, "grip_kg": 20.0},
    {"sex": M, "grip_kg": 20.0, "gait_speed_m_s": 0.5, "chair_stand_5x_s": 20.0, "sppb": 4},
    {"sex": F, "grip_kg": 10.0, "gait_speed_m_s": 0.5, **NORMAL_MASS_M},
    {"sex": F, "chair_stand_unable": True},
    {"sex": M, "grip_kg": 20.0, "calf_cm": 30.0, **_sarc_f(2, 2, 2, 2, 2)},
]


@pytest.mark.parametrize("record", AWGS2019_RECORDS)
def test_awgs2019_hospital_never_possible_sarcopenia(record: dict[str, Any]) -> None:
    assert category(record, "awgs2019") != "possible_sarcopenia"
    assert category(record, "awgs2019") in {
        "no_sarcopenia",
        "sarcopenia",
        "severe_sarcopenia",
        "indeterminate",
    }


def test_awgs2019_community_possible_without_any_mass() -> None:
    record = {"sex": M, "grip_kg": 20.0, "gait_speed_m_s": 1.2}
    result = assess(record)
    assert result["derived"]["asmi_kg_m2"] is None
    assert result["definitions"]["awgs2019_community"]["category"] == "possible_sarcopenia"
    # same record in hospital: mass unknown, low strength -> cannot decide (no "possible")
    assert result["definitions"]["awgs2019"]["category"] == "indeterminate"


# ---------------------------------------------------------------------------------------------
# Unit conversions (criteria.md §5, §8.2; DESIGN.md principle 4)


@pytest.mark.parametrize(
    "labs",
    [
        # Kashani 2017: SI = creatinine (mg/dL) / cystatin C (mg/L) × 100 = 1.0 / 1.25 × 100 = 80
        pytest.param({"creatinine_mg_dl": 1.0, "cystatin_c_mg_l": 1.25}, id="mg_dl-mg_l"),
        # 88.4 µmol/L ÷ 88.4 = 1.0 mg/dL
        pytest.param({"creatinine_umol_l": 88.4, "cystatin_c_mg_l": 1.25}, id="umol_l"),
        # 0.125 mg/dL × 10 = 1.25 mg/L
        pytest.param({"creatinine_mg_dl": 1.0, "cystatin_c_mg_dl": 0.125}, id="cys-mg_dl"),
        pytest.param({"creatinine_umol_l": 88.4, "cystatin_c_mg_dl": 0.125}, id="both-alt"),
    ],
)
def test_sarcopenia_index_unit_conversions(labs: dict[str, Any]) -> None:
    derived = assess({"sex": M, **labs})["derived"]
    assert derived["sarcopenia_index"] == pytest.approx(80.0, abs=1e-9)


def test_creatinine_umol_l_is_divided_not_multiplied() -> None:
    # 176.8 µmol/L ÷ 88.4 = 2.0 mg/dL; SI = 2.0 / 1.0 × 100 = 200
    derived = assess({"sex": M, "creatinine_umol_l": 176.8, "cystatin_c_mg_l": 1.0})["derived"]
    assert derived["sarcopenia_index"] == pytest.approx(200.0, abs=1e-9)


def test_walk_distance_and_time_give_gait_speed() -> None:
    # 4 m in 5 s = 0.8 m/s -> EWGSOP2 low (<=0.8), SDOC normal (<0.8 strict)
    result = assess({"sex": M, "walk_distance_m": 4.0, "walk_time_s": 5.0})
    assert result["derived"]["gait_speed_m_s"] == pytest.approx(0.8, abs=1e-9)
    assert result["definitions"]["ewgsop2"]["components"]["physical_performance"] == "low"
    assert result["definitions"]["sdoc2020"]["components"]["physical_performance"] == "normal"
    # 6 m in 6 s = 1.0 m/s -> AWGS 2019 normal (<1.0 strict)
    result = assess({"sex": M, "walk_distance_m": 6.0, "walk_time_s": 6.0})
    assert result["derived"]["gait_speed_m_s"] == pytest.approx(1.0, abs=1e-9)
    assert result["definitions"]["awgs2019"]["components"]["physical_performance"] == "normal"


@pytest.mark.parametrize(
    ("trials", "state"),
    [
        # max(20, 26.5, 25) = 26.5 < 27 -> low (EWGSOP2 Table 3, men)
        pytest.param([20.0, 26.5, 25.0], "low", id="max-26.5"),
        # max(27, 22) = 27 -> normal; the mean (24.5) would wrongly be low
        pytest.param([27.0, 22.0], "normal", id="max-27-not-mean"),
        # the first trial (22) would wrongly be low
        pytest.param([22.0, 28.0, 24.0], "normal", id="max-not-first"),
    ],
)
def test_grip_trials_take_the_maximum(trials: list[float], state: str) -> None:
    assert components({"sex": M, "grip_kg_trials": trials}, "ewgsop2")["strength"] == state


# ---------------------------------------------------------------------------------------------
# Sex coding (DESIGN.md: mappings such as 1/2 are declared, never guessed)


def test_numeric_sex_without_coding_is_an_error() -> None:
    result = assess({"id": "s1", "sex": 1, "grip_kg": 17.0})
    assert "definitions" not in result
    assert result["id"] == "s1"
    assert result["error"]["field"] == "sex"
    assert result["error"]["value"] == 1


def test_numeric_sex_with_declared_coding() -> None:
    coding = {1: "male", 2: "female"}
    man = assess({"sex": 1, "grip_kg": 17.0}, "ewgsop2", sex_coding=coding)
    woman = assess({"sex": 2, "grip_kg": 17.0}, "ewgsop2", sex_coding=coding)
    # grip 17: low for men (<27), normal for women (>=16) [EWGSOP2 Table 3]
    assert man["definitions"]["ewgsop2"]["components"]["strength"] == "low"
    assert woman["definitions"]["ewgsop2"]["components"]["strength"] == "normal"


def test_unknown_field_is_an_error() -> None:
    result = assess({"id": "u1", "sex": M, "grip_strength": 30.0})
    assert "definitions" not in result
    assert result["error"]["field"] == "grip_strength"


# ---------------------------------------------------------------------------------------------
# assess_many keeps order, with a bad record producing an error object in its place


def test_assess_many_preserves_order_with_error_in_place() -> None:
    records = [
        {"id": "a", "sex": M, "grip_kg": 30.0},
        {"id": "b", "sex": F, "height_m": 165, "grip_kg": 10.0},
        {"id": "c", "sex": F, "grip_kg": 10.0},
        {"id": "d", "sex": M, "grip_kg": 20.0},
    ]
    results = [r.to_dict() for r in sarcokit.assess_many(records, definitions=["ewgsop2"])]
    assert [r["id"] for r in results] == ["a", "b", "c", "d"]
    assert results[0]["definitions"]["ewgsop2"]["category"] == "no_sarcopenia"
    assert "definitions" not in results[1]
    assert results[1]["error"]["field"] == "height_m"
    assert "height_cm" in results[1]["error"]["message"]
    # grip 10 < 16 (women) and 20 < 27 (men) -> probable [EWGSOP2 Table 3]
    assert results[2]["definitions"]["ewgsop2"]["category"] == "probable_sarcopenia"
    assert results[3]["definitions"]["ewgsop2"]["category"] == "probable_sarcopenia"
    assert "error" not in results[2]


@pytest.mark.parametrize("rows", [1, 3, 2_500])
def test_frame_without_measurements_keeps_every_row(rows: int) -> None:
    """A frame with no input columns at all (every result one value for all rows) has one
    result row per input row, every category indeterminate (criteria.md §8.3), nothing
    rejected; so does a frame with only an id."""
    for frame in (pl.DataFrame(height=rows), pl.DataFrame({"id": range(rows)})):
        result = sarcokit.evaluate(frame)
        assert result.height == rows
        assert result["invalid_fields"].null_count() == rows
        assert result["ewgsop2_category"].to_list() == ["indeterminate"] * rows
        assert result["bmi_kg_m2"].null_count() == rows
