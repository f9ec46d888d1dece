"""Screening scores and prediction equations, worked by hand from the papers' formulas.

Formulas and item points are those of /work/shared/reference/criteria.md (§3, §4, §5, §10.2)
and of the primary abstracts named per test; the arithmetic is written out in each comment.
Derived values in `Result.to_dict()` are rounded half-up (indices 2 dp, ratios 3 dp;
DESIGN.md principle 5); frame columns from `sarcokit.evaluate` are unrounded.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import sarcokit

M = "male"
F = "female"


def result(record: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    value: dict[str, Any] = sarcokit.assess(record, **kwargs).to_dict()
    assert "error" not in value, value.get("error")
    return value


def frame_row(record: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The unrounded result columns of a one-row Polars frame."""
    out = sarcokit.evaluate(pl.DataFrame([record]), **kwargs)
    assert isinstance(out, pl.DataFrame)
    assert out.height == 1
    row: dict[str, Any] = out.row(0, named=True)
    assert row["invalid_fields"] is None, row["invalid_fields"]
    return row


# ---------------------------------------------------------------------------------------------
# Body indices (criteria.md §4; FNIH §2.8; SDOC §2.9)


def test_bmi_asmi_alm_bmi_grip_bmi() -> None:
    record = {"sex": M, "height_m": 1.75, "weight_kg": 70.0, "asm_kg": 20.0, "grip_kg": 30.0}
    derived = result(record)["derived"]
    # BMI = 70 / 1.75² = 70 / 3.0625 = 22.857142... -> 22.86
    assert derived["bmi_kg_m2"] == pytest.approx(22.86, abs=1e-9)
    # ASMI = 20 / 3.0625 = 6.530612... -> 6.53
    assert derived["asmi_kg_m2"] == pytest.approx(6.53, abs=1e-9)
    # ALM/BMI = 20 / (70 / 3.0625) = 61.25 / 70 = 0.875 -> 0.875 (3 dp)
    assert derived["alm_bmi"] == pytest.approx(0.875, abs=1e-9)
    # grip/BMI = 30 × 3.0625 / 70 = 91.875 / 70 = 1.3125 -> 1.313 (3 dp, half-UP, not 1.312)
    assert derived["grip_bmi"] == pytest.approx(1.313, abs=1e-9)


def test_body_indices_unrounded_in_frame() -> None:
    row = frame_row(
        {"sex": M, "height_m": 1.75, "weight_kg": 70.0, "asm_kg": 20.0, "grip_kg": 30.0}
    )
    assert row["bmi_kg_m2"] == pytest.approx(70 / 3.0625, rel=1e-9)  # 22.857142857...
    assert row["asmi_kg_m2"] == pytest.approx(20 / 3.0625, rel=1e-9)  # 6.530612244...
    assert row["alm_bmi"] == pytest.approx(0.875, rel=1e-9)
    assert row["grip_bmi"] == pytest.approx(1.3125, rel=1e-9)


def test_rounding_is_half_up() -> None:
    # height 2.0 m, weight 90.1 kg: BMI = 90.1 / 4 = 22.525 exactly -> 22.53 half-up
    # (banker's rounding or binary float rounding gives 22.52)
    derived = result({"sex": M, "height_m": 2.0, "weight_kg": 90.1})["derived"]
    assert derived["bmi_kg_m2"] == pytest.approx(22.53, abs=1e-9)


def test_sarcopenia_index() -> None:
    # Kashani 2017: SI = creatinine (mg/dL) / cystatin C (mg/L) × 100 = 1.0 / 1.25 × 100 = 80.0
    derived = result({"sex": M, "creatinine_mg_dl": 1.0, "cystatin_c_mg_l": 1.25})["derived"]
    assert derived["sarcopenia_index"] == pytest.approx(80.0, abs=1e-9)
    # 0.9 / 1.1 × 100 = 81.8181... -> 81.82
    derived = result({"sex": F, "creatinine_mg_dl": 0.9, "cystatin_c_mg_l": 1.1})["derived"]
    assert derived["sarcopenia_index"] == pytest.approx(81.82, abs=1e-9)


def test_sarcopenia_index_needs_both_labs() -> None:
    derived = result({"sex": F, "creatinine_mg_dl": 0.9})["derived"]
    assert derived["sarcopenia_index"] is None


# ---------------------------------------------------------------------------------------------
# Lee 2000 model 2 (Lee RC et al. Am J Clin Nutr 2000;72:796, abstract):
# SM (kg) = 0.244 × BW + 7.80 × Ht (m) + 6.6 × sex − 0.098 × age + race − 3.3,
# sex 1 men / 0 women; race for MODEL 2: Asian −1.2, African American +1.4, white or
# Hispanic 0. (criteria.md §4 prints −2.0 / +1.1, which are the MODEL 1 race codes.)

LEE_MAN = {"sex": M, "weight_kg": 70.0, "height_m": 1.75, "age": 70}
LEE_WOMAN = {"sex": F, "weight_kg": 60.0, "height_m": 1.6, "age": 65}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # 0.244×70 = 17.08; 7.80×1.75 = 13.65; +6.6; −0.098×70 = −6.86; −1.2; −3.3
        # 17.08 + 13.65 + 6.6 − 6.86 − 1.2 − 3.3 = 25.97
        pytest.param({**LEE_MAN, "race": "asian"}, 25.97, id="man-asian"),
        # same without the race term: 27.17
        pytest.param({**LEE_MAN, "race": "white"}, 27.17, id="man-white"),
        pytest.param({**LEE_MAN, "race": "hispanic"}, 27.17, id="man-hispanic"),
        # 27.17 + 1.4 = 28.57
        pytest.param({**LEE_MAN, "race": "african_american"}, 28.57, id="man-aa"),
        # 0.244×60 = 14.64; 7.80×1.6 = 12.48; +0; −0.098×65 = −6.37; +1.4; −3.3
        # 14.64 + 12.48 − 6.37 + 1.4 − 3.3 = 18.85
        pytest.param({**LEE_WOMAN, "race": "african_american"}, 18.85, id="woman-aa"),
        # 14.64 + 12.48 − 6.37 − 1.2 − 3.3 = 16.25
        pytest.param({**LEE_WOMAN, "race": "asian"}, 16.25, id="woman-asian"),
        # height in cm is converted to metres first (160 cm -> 1.6 m): 17.45 for white
        pytest.param(
            {"sex": F, "weight_kg": 60.0, "height_cm": 160, "age": 65, "race": "white"},
            17.45,
            id="woman-white-cm",
        ),
    ],
)
def test_lee2000_model2(record: dict[str, Any], expected: float) -> None:
    row = frame_row(record)
    assert row["lee2000_skeletal_muscle_kg"] == pytest.approx(expected, abs=1e-9)
    derived = result(record)["derived"]
    assert derived["lee2000_skeletal_muscle_kg"] == pytest.approx(expected, abs=0.005)


def test_lee2000_missing_race_is_not_white() -> None:
    # Missing is never 0 (DESIGN.md principle 2): without race the equation is not computable.
    assert frame_row(dict(LEE_MAN))["lee2000_skeletal_muscle_kg"] is None


# ---------------------------------------------------------------------------------------------
# Janssen 2000 BIA (J Appl Physiol 89:465; criteria.md §4, §7 #11):
# SM (kg) = Ht(cm)²/R × 0.401 + sex × 3.825 − 0.071 × age + 5.102, men 1 / women 0.


@pytest.mark.parametrize(
    ("record", "sm", "smi"),
    [
        # 175² = 30625; /500 = 61.25; ×0.401 = 24.56125; +3.825 = 28.38625;
        # −0.071×70 = −4.97 -> 23.41625; +5.102 = 28.51825. SMI = 28.51825 / 1.75² = 9.312082
        pytest.param(
            {"sex": M, "height_m": 1.75, "resistance_ohm": 500.0, "age": 70},
            28.51825,
            28.51825 / 3.0625,
            id="man",
        ),
        # 160² = 25600; /600 = 42.666667; ×0.401 = 17.109333; +0; −0.071×65 = −4.615
        # -> 12.494333; +5.102 = 17.596333. SMI = 17.596333 / 2.56 = 6.873568
        pytest.param(
            {"sex": F, "height_cm": 160, "resistance_ohm": 600.0, "age": 65},
            25600 / 600 * 0.401 - 4.615 + 5.102,
            (25600 / 600 * 0.401 - 4.615 + 5.102) / 2.56,
            id="woman",
        ),
    ],
)
def test_janssen2000(record: dict[str, Any], sm: float, smi: float) -> None:
    row = frame_row(record)
    assert row["janssen2000_skeletal_muscle_kg"] == pytest.approx(sm, abs=1e-6)
    assert row["janssen2000_smi_kg_m2"] == pytest.approx(smi, abs=1e-6)


def test_janssen2000_sex_coding_men_one() -> None:
    # Same body, men minus women = 3.825 kg exactly (men = 1, women = 0; §7 #11)
    body = {"height_m": 1.7, "resistance_ohm": 550.0, "age": 72}
    man = frame_row({"sex": M, **body})["janssen2000_skeletal_muscle_kg"]
    woman = frame_row({"sex": F, **body})["janssen2000_skeletal_muscle_kg"]
    assert man - woman == pytest.approx(3.825, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Wen 2011 (Asia Pac J Clin Nutr 20:551; criteria.md §4, §7 #12):
# ASM (kg) = 0.193 × W + 0.107 × Ht(cm) − 4.157 × sex − 0.037 × age − 2.631,
# sex = 1 men, 2 women.


@pytest.mark.parametrize(
    ("record", "asm", "asmi"),
    [
        # 0.193×70 = 13.51; 0.107×175 = 18.725; −4.157×1; −0.037×70 = −2.59; −2.631
        # 13.51 + 18.725 − 4.157 − 2.59 − 2.631 = 22.857; ASMI = 22.857 / 3.0625 = 7.463510
        pytest.param(
            {"sex": M, "weight_kg": 70.0, "height_m": 1.75, "age": 70},
            22.857,
            22.857 / 3.0625,
            id="man",
        ),
        # 0.193×60 = 11.58; 0.107×160 = 17.12; −4.157×2 = −8.314; −0.037×65 = −2.405; −2.631
        # 11.58 + 17.12 − 8.314 − 2.405 − 2.631 = 15.35; ASMI = 15.35 / 2.56 = 5.99609375
        pytest.param(
            {"sex": F, "weight_kg": 60.0, "height_cm": 160, "age": 65},
            15.35,
            5.99609375,
            id="woman",
        ),
    ],
)
def test_wen2011(record: dict[str, Any], asm: float, asmi: float) -> None:
    row = frame_row(record)
    assert row["wen2011_asm_kg"] == pytest.approx(asm, abs=1e-9)
    assert row["wen2011_asmi_kg_m2"] == pytest.approx(asmi, abs=1e-9)


def test_wen2011_sex_coding_women_two() -> None:
    # Same body: men − women = −4.157 × (1 − 2) = +4.157 kg (a 0/1 coding would also give
    # 4.157 but shift both by −4.157: check the absolute woman value too; §7 #12)
    body = {"weight_kg": 55.0, "height_m": 1.5, "age": 80}
    man = frame_row({"sex": M, **body})["wen2011_asm_kg"]
    woman = frame_row({"sex": F, **body})["wen2011_asm_kg"]
    assert man - woman == pytest.approx(4.157, abs=1e-9)
    # woman: 0.193×55 = 10.615; 0.107×150 = 16.05; −8.314; −0.037×80 = −2.96; −2.631
    # 10.615 + 16.05 − 8.314 − 2.96 − 2.631 = 12.76
    assert woman == pytest.approx(12.76, abs=1e-9)


def test_wen2011_estimated_asm_is_flagged() -> None:
    record = {"sex": M, "weight_kg": 70.0, "height_m": 1.75, "age": 70}
    row = frame_row(record, estimate_asm="wen2011")
    assert row["asm_estimated"] is True
    assert row["asmi_kg_m2"] == pytest.approx(22.857 / 3.0625, abs=1e-9)
    measured = frame_row({**record, "asm_kg": 20.0, "asm_method": "dxa"}, estimate_asm="wen2011")
    # a measured ASM is never replaced by the estimate
    assert measured["asm_estimated"] is False
    assert measured["asmi_kg_m2"] == pytest.approx(20.0 / 3.0625, abs=1e-9)
    assert frame_row(record)["asm_estimated"] is False


# ---------------------------------------------------------------------------------------------
# Ishii 2014 score (Geriatr Gerontol Int 14 Suppl 1:93; criteria.md §3.3, PROVISIONAL):
# men   = 0.62 × (age − 64) − 3.09 × (grip − 50) − 4.64 × (calf − 42), positive >= 105
# women = 0.80 × (age − 64) − 5.09 × (grip − 34) − 3.28 × (calf − 42), positive >= 120


@pytest.mark.parametrize(
    ("record", "score", "positive"),
    [
        # 0.62×16 = 9.92; −3.09×(25−50) = 77.25; −4.64×(32−42) = 46.4 -> 133.57
        pytest.param(
            {"sex": M, "age": 80, "grip_kg": 25.0, "calf_cm": 32.0}, 133.57, True, id="man-high"
        ),
        # exactly the men's cut-off: 9.92 + 37.08 (−3.09×−12) + 58.0 (−4.64×−12.5) = 105.00
        pytest.param(
            {"sex": M, "age": 80, "grip_kg": 38.0, "calf_cm": 29.5}, 105.0, True, id="man-at-105"
        ),
        # grip 38.1: 105 − 0.309 = 104.691 -> negative
        pytest.param(
            {"sex": M, "age": 80, "grip_kg": 38.1, "calf_cm": 29.5},
            104.691,
            False,
            id="man-below-105",
        ),
        # grip 36: 105 + 3.09×2 = 111.18 -> positive for a man (>=105)
        pytest.param(
            {"sex": M, "age": 80, "grip_kg": 36.0, "calf_cm": 29.5}, 111.18, True, id="man-111"
        ),
        # exactly the women's cut-off: 0.8×10 = 8.0; −5.09×(19.6−34) = 73.296;
        # −3.28×(30.2−42) = 38.704 -> 120.000
        pytest.param(
            {"sex": F, "age": 74, "grip_kg": 19.6, "calf_cm": 30.2}, 120.0, True, id="woman-at-120"
        ),
        # grip 19.7: 120 − 0.509 = 119.491 -> negative
        pytest.param(
            {"sex": F, "age": 74, "grip_kg": 19.7, "calf_cm": 30.2},
            119.491,
            False,
            id="woman-below-120",
        ),
        # grip 21.4: 120 − 5.09×1.8 = 110.838 -> negative for a woman (swapped cut-offs,
        # as in the Sci Rep 2018 reproduction, would call it positive)
        pytest.param(
            {"sex": F, "age": 74, "grip_kg": 21.4, "calf_cm": 30.2}, 110.838, False, id="woman-111"
        ),
    ],
)
def test_ishii_score(record: dict[str, Any], score: float, positive: bool) -> None:
    row = frame_row(record)
    assert row["ishii_score"] == pytest.approx(score, abs=1e-9)
    assert row["ishii_positive"] is positive
    ishii = result(record)["screening"]["ishii"]
    assert ishii["score"] == pytest.approx(score, abs=0.05)
    assert ishii["positive"] is positive
    assert ishii["provisional"] is True


def test_ishii_needs_sex_age_grip_and_calf() -> None:
    ishii = result({"age": 80, "grip_kg": 25.0, "calf_cm": 32.0})["screening"]["ishii"]
    assert ishii["score"] is None
    assert ishii["positive"] is None
    ishii = result({"sex": M, "age": 80, "grip_kg": 25.0})["screening"]["ishii"]
    assert ishii["score"] is None


# ---------------------------------------------------------------------------------------------
# MSRA-7 / MSRA-5 (Rossi 2017 J Nutr Health Aging 21:743; item points criteria.md §3.4):
#                          MSRA-7      MSRA-5
# age <70 / >=70           5 / 0       5 / 0
# hospitalised none/once/more 10/5/0   15/10/0
# walks >=1000 m yes/no    5 / 0       15 / 0
# 3 meals a day yes/no     5 / 0       15 / 0
# dairy daily yes/no       5 / 0       —
# protein daily yes/no     5 / 0       —
# weight loss >2 kg no/yes 5 / 0       10 / 0
# at risk                  <=30        <=45


def _msra(
    age: float,
    hospitalised: str,
    walks: bool,
    meals: bool,
    dairy: bool,
    protein: bool,
    weight_loss: bool,
) -> dict[str, Any]:
    return {
        "sex": F,
        "age": age,
        "msra_hospitalised_last_year": hospitalised,
        "msra_walks_1000m": walks,
        "msra_three_meals_daily": meals,
        "msra_dairy_daily": dairy,
        "msra_protein_daily": protein,
        "msra_weight_loss_over_2kg": weight_loss,
    }


@pytest.mark.parametrize(
    ("record", "msra7", "risk7", "msra5", "risk5"),
    [
        # best answers: 7: 5+10+5+5+5+5+5 = 40; 5: 5+15+15+15+10 = 60
        pytest.param(
            _msra(65, "none", True, True, True, True, False), 40, False, 60, False, id="best"
        ),
        # worst answers: 0 and 0
        pytest.param(
            _msra(80, "more_than_once", False, False, False, False, True),
            0,
            True,
            0,
            True,
            id="worst",
        ),
        # age exactly 70 scores 0 (>=70): 7: 0+10+5+5+5+5+5 = 35; 5: 0+15+15+15+10 = 55
        pytest.param(
            _msra(70, "none", True, True, True, True, False), 35, False, 55, False, id="age-70"
        ),
        # age 69 scores 5: 40 / 60
        pytest.param(
            _msra(69, "none", True, True, True, True, False), 40, False, 60, False, id="age-69"
        ),
        # MSRA-7 exactly 30 (at risk): 0+5+5+5+5+5+5 = 30; MSRA-5: 0+10+15+15+10 = 50
        pytest.param(
            _msra(75, "once", True, True, True, True, False), 30, True, 50, False, id="msra7-at-30"
        ),
        # MSRA-5 exactly 45 (at risk): 5+10+15+15+0 = 45; MSRA-7: 5+5+5+5+5+5+0 = 30
        pytest.param(
            _msra(65, "once", True, True, True, True, True), 30, True, 45, True, id="msra5-at-45"
        ),
        # no dairy, weight loss >2 kg: MSRA-7 5 + 10 + 5 + 5 + 0 + 5 + 0 = 30 (at risk);
        # MSRA-5 (no dairy item) 5 + 15 + 15 + 15 + 0 = 50 (not at risk)
        pytest.param(
            _msra(65, "none", True, True, False, True, True),
            30,
            True,
            50,
            False,
            id="msra7-30-mixed",
        ),
        # age 75, walks <1000 m: MSRA-7 0 + 10 + 0 + 5 + 5 + 5 + 5 = 30 (at risk);
        # MSRA-5 0 + 15 + 0 + 15 + 10 = 40 (at risk, below 45)
        pytest.param(
            _msra(75, "none", False, True, True, True, False), 30, True, 40, True, id="no-walk"
        ),
        # hospitalised more than once: 7: 5+0+5+5+5+5+5 = 30; 5: 5+0+15+15+10 = 45
        pytest.param(
            _msra(65, "more_than_once", True, True, True, True, False),
            30,
            True,
            45,
            True,
            id="hospital-more",
        ),
    ],
)
def test_msra(record: dict[str, Any], msra7: int, risk7: bool, msra5: int, risk5: bool) -> None:
    screening = result(record)["screening"]
    assert screening["msra7"] == {"total": msra7, "at_risk": risk7}
    assert screening["msra5"] == {"total": msra5, "at_risk": risk5}


def test_msra_missing_item_is_not_zero() -> None:
    record = _msra(75, "once", True, True, True, True, False)
    del record["msra_dairy_daily"]
    screening = result(record)["screening"]
    # dairy is an MSRA-7 item only; the total stays unknown, but 0 + 5 + 5 + 5 + (0..5) + 5
    # + 5 = 25..30 <= 30 whatever the dairy answer, so at risk is decided (criteria.md §10.10)
    assert screening["msra7"]["total"] is None
    assert screening["msra7"]["at_risk"] is True
    assert screening["msra5"]["total"] == 50
    del record["age"]
    assert result(record)["screening"]["msra5"]["total"] is None


# ---------------------------------------------------------------------------------------------
# SARC-F (criteria.md §3.1) and SARC-CalF (Barbosa-Silva 2016; AWGS 2019; §3.2, §10.2):
# SARC-CalF = SARC-F + 10 if calf is low (<34 men, <33 women), positive if >= 11.


def _sarc_f(strength: Any, walking: Any, chair: Any, stairs: Any, falls: Any) -> dict[str, Any]:
    return {
        "sarc_f_strength": strength,
        "sarc_f_assistance_walking": walking,
        "sarc_f_rise_from_chair": chair,
        "sarc_f_climb_stairs": stairs,
        "sarc_f_falls": falls,
    }


@pytest.mark.parametrize(
    ("record", "calf_low", "sarc_f", "sarc_calf", "positive"),
    [
        # man, calf 33.9 < 34 -> low: SARC-F 1 + 10 = 11 -> positive
        pytest.param(
            {"sex": M, "calf_cm": 33.9, **_sarc_f(1, 0, 0, 0, 0)}, True, 1, 11, True, id="man-33.9"
        ),
        # man, calf exactly 34 is NOT low (<34, §10.2): SARC-CalF 1 -> negative
        pytest.param(
            {"sex": M, "calf_cm": 34.0, **_sarc_f(1, 0, 0, 0, 0)}, False, 1, 1, False, id="man-34.0"
        ),
        # woman, calf 33.0 is not low (<33): SARC-F 3 -> 3
        pytest.param(
            {"sex": F, "calf_cm": 33.0, **_sarc_f(1, 1, 1, 0, 0)},
            False,
            3,
            3,
            False,
            id="woman-33.0",
        ),
        # woman, calf 32.9 < 33 -> low: 0 + 10 = 10 -> negative (needs >= 11)
        pytest.param(
            {"sex": F, "calf_cm": 32.9, **_sarc_f(0, 0, 0, 0, 0)},
            True,
            0,
            10,
            False,
            id="woman-32.9-zero",
        ),
        # the men's cut-off is not applied to women: 33.5 is normal for a woman
        pytest.param(
            {"sex": F, "calf_cm": 33.5, **_sarc_f(2, 2, 2, 2, 2)},
            False,
            10,
            10,
            False,
            id="woman-33.5",
        ),
        # ...and low for a man: 10 + 10 = 20
        pytest.param(
            {"sex": M, "calf_cm": 33.5, **_sarc_f(2, 2, 2, 2, 2)}, True, 10, 20, True, id="man-33.5"
        ),
    ],
)
def test_sarc_calf(
    record: dict[str, Any], calf_low: bool, sarc_f: int, sarc_calf: int, positive: bool
) -> None:
    screening = result(record)["screening"]
    assert screening["calf"]["low"] is calf_low
    assert screening["sarc_f"]["total"] == sarc_f
    assert screening["sarc_calf"]["total"] == sarc_calf
    assert screening["sarc_calf"]["positive"] is positive


def test_sarc_calf_unknown_without_calf() -> None:
    screening = result({"sex": M, **_sarc_f(1, 1, 1, 1, 1)})["screening"]
    assert screening["sarc_f"]["total"] == 5
    assert screening["calf"]["low"] is None
    assert screening["sarc_calf"]["total"] is None


def test_sarc_f_answer_labels() -> None:
    # Malmstrom 2013 answer labels: None = 0, Some = 1, A lot or unable = 2 (§3.1)
    # 2 + 1 + 0 + 2 + 0 = 5 -> positive (>= 4)
    record = {"sex": F, **_sarc_f("a lot or unable", "some", "none", "a lot or unable", 0)}
    sarc_f = result(record)["screening"]["sarc_f"]
    assert sarc_f["total"] == 5
    assert sarc_f["positive"] is True
    # labels are matched case-insensitively as printed ("None", "Some", "A lot or unable")
    record = {"sex": F, **_sarc_f("None", "Some", "Some", "None", 0)}
    sarc_f = result(record)["screening"]["sarc_f"]
    assert sarc_f["total"] == 2
    assert sarc_f["positive"] is False
