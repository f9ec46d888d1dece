"""MELD, MELD-Na, MELD 3.0 and MELD-Sarcopenia, worked by hand from the formulas.

Formulas, floors, caps and bounds are those of criteria.md §6.2 and reference/secondary/liver.toml.
Natural logarithms used below: ln 1.2 = 0.182322, ln 1.5 = 0.405465, ln 2 = 0.693147,
ln 3 = 1.098612, ln 3.3 = 1.193922, ln 3.6 = 1.280934, ln 3.9 = 1.360977, ln 4 = 1.386294,
ln 4.4 = 1.481605, ln 5 = 1.609438, ln 60 = 4.094345.
Rounding is half up: floor(x + 0.5).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import duckdb
import narwhals as nw
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sarcokit.secondary.liver import liver_exprs

# Labs at or below every floor, no dialysis, sodium 137 and albumin 3.5 (no sodium or albumin
# points), a man (no female term), CT muscle normal.
NORMAL: dict[str, Any] = {
    "bilirubin_mg_dl": 1.0,
    "inr": 1.0,
    "creatinine_mg_dl": 1.0,
    "sodium_mmol_l": 137.0,
    "albumin_g_dl": 3.5,
    "dialysis_twice_past_week": False,
    "sex": "male",
    "ct_low_smi_martin2013": False,
}

SCHEMA = {
    "bilirubin_mg_dl": pl.Float64,
    "inr": pl.Float64,
    "creatinine_mg_dl": pl.Float64,
    "sodium_mmol_l": pl.Float64,
    "albumin_g_dl": pl.Float64,
    "dialysis_twice_past_week": pl.Boolean,
    "sex": pl.String,
    "ct_low_smi_martin2013": pl.Boolean,
}


def frame(*changes: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame([{**NORMAL, **change} for change in changes], schema=SCHEMA)


def scores(*changes: dict[str, Any]) -> list[dict[str, Any]]:
    out = nw.from_native(frame(*changes)).with_columns(*liver_exprs()).to_native()
    return list(out.to_dicts())


def score(column: str, **change: Any) -> Any:
    return scores(change)[0][column]


# ---------------------------------------------------------------------------------------------
# MELD (UNOS 2002-2016)


def test_meld_floors_every_lab_at_one() -> None:
    # Cr 0.8, bili 0.5, INR 0.9 -> all 1.0; ln 1 = 0, so MELD(i) = 0.643; × 10 = 6.43 -> 6.
    row = scores({"creatinine_mg_dl": 0.8, "bilirubin_mg_dl": 0.5, "inr": 0.9})[0]
    assert row["meld"] == 6


def test_meld_creatinine_cap_and_dialysis() -> None:
    capped, at_cap, dialysis, uncapped = scores(
        {"creatinine_mg_dl": 5.0},
        {"creatinine_mg_dl": 4.0},
        {"creatinine_mg_dl": 1.0, "dialysis_twice_past_week": True},
        {"creatinine_mg_dl": 3.9},
    )
    # Cr 5 -> 4.0: 0.957 × ln 4 = 0.957 × 1.386294 = 1.326684; + 0.643 = 1.969684; × 10 -> 20.
    # (Uncapped it would be 0.957 × 1.609438 + 0.643 = 2.183232 -> 22.)
    assert capped["meld"] == 20
    assert at_cap["meld"] == 20
    # Dialysis twice in the past week sets Cr to 4.0 whatever it was: 20.
    assert dialysis["meld"] == 20
    # Cr 3.9: 0.957 × 1.360977 + 0.643 = 1.945455 -> 19.45 -> 19.
    assert uncapped["meld"] == 19


def test_meld_unknown_dialysis_is_null_unless_creatinine_is_at_the_cap() -> None:
    below, above = scores(
        {"creatinine_mg_dl": 1.2, "dialysis_twice_past_week": None},
        {"creatinine_mg_dl": 4.5, "dialysis_twice_past_week": None},
    )
    # Cr 1.2 gives 0.957 × 0.182322 + 0.643 -> 8 without dialysis, 20 with it: unknown.
    assert below["meld"] is None
    # Cr 4.5 is capped at 4.0 either way: 20.
    assert above["meld"] == 20


def test_meld_maximum_40() -> None:
    # bili 60, INR 5, Cr 4: 0.957 × 1.386294 + 0.378 × 4.094345 + 1.120 × 1.609438 + 0.643
    # = 1.326684 + 1.547662 + 1.802571 + 0.643 = 5.319917; × 10 = 53.2 -> 53 -> capped at 40.
    assert score("meld", bilirubin_mg_dl=60.0, inr=5.0, creatinine_mg_dl=4.0) == 40


def test_meld_primary_and_unos_forms_agree() -> None:
    # Kamath 2001: R = 0.957 ln Cr + 0.378 ln bili + 1.120 ln INR + 0.643, × 10; criteria.md
    # quotes the same as 9.57 ln Cr + 3.78 ln bili + 11.2 ln INR + 6.43.
    grid = list(itertools.product([1.0, 1.7, 2.9, 4.0], [1.0, 2.5, 8.0, 31.0], [1.0, 1.4, 2.6]))
    rows = scores(*({"creatinine_mg_dl": c, "bilirubin_mg_dl": b, "inr": i} for c, b, i in grid))
    for (cr, bili, inr), row in zip(grid, rows, strict=True):
        ten_times = 9.57 * math.log(cr) + 3.78 * math.log(bili) + 11.2 * math.log(inr) + 6.43
        assert row["meld"] == min(math.floor(round(ten_times, 9) + 0.5), 40)


# ---------------------------------------------------------------------------------------------
# MELD-Na (OPTN policy 9.1, 2016)


def test_meld_na_rule_applies_above_11_only() -> None:
    eleven, unrounded_above_11, twelve = scores(
        {"bilirubin_mg_dl": 3.3, "sodium_mmol_l": 130.0},
        {"bilirubin_mg_dl": 3.6, "sodium_mmol_l": 130.0},
        {"bilirubin_mg_dl": 4.4, "sodium_mmol_l": 130.0},
    )
    # bili 3.3: 3.78 × 1.193922 + 6.43 = 10.943 -> MELD(i) 11; not > 11, so MELD-Na = 11.
    assert (eleven["meld"], eleven["meld_na"]) == (11, 11)
    # bili 3.6: 3.78 × 1.280934 + 6.43 = 11.272 -> 11. The rule reads the rounded 11, not 11.27
    # (which would give 11.27 + 9.24 - 2.60 = 17.9 -> 18).
    assert (unrounded_above_11["meld"], unrounded_above_11["meld_na"]) == (11, 11)
    # bili 4.4: 3.78 × 1.481605 + 6.43 = 12.031 -> 12 > 11. Na 130, 137 - 130 = 7:
    # 12 + 1.32 × 7 - 0.033 × 12 × 7 = 12 + 9.24 - 2.772 = 18.468 -> 18.
    assert (twelve["meld"], twelve["meld_na"]) == (12, 18)


def test_meld_na_uses_the_rounded_meld() -> None:
    # bili 3.9: 3.78 × 1.360977 + 6.43 = 11.574 -> MELD(i) 12. Na 131, 137 - 131 = 6:
    # 12 + 1.32 × 6 - 0.033 × 12 × 6 = 12 + 7.92 - 2.376 = 17.544 -> 18.
    # (The unrounded 11.574 would give 11.574 + 7.92 - 2.292 = 17.203 -> 17.)
    assert score("meld_na", bilirubin_mg_dl=3.9, sodium_mmol_l=131.0) == 18


def test_meld_na_sodium_bounds() -> None:
    low, at_low, high, at_high = scores(
        {"bilirubin_mg_dl": 4.4, "sodium_mmol_l": 120.0},
        {"bilirubin_mg_dl": 4.4, "sodium_mmol_l": 125.0},
        {"bilirubin_mg_dl": 4.4, "sodium_mmol_l": 140.0},
        {"bilirubin_mg_dl": 4.4, "sodium_mmol_l": 137.0},
    )
    # Na 120 -> 125, 137 - 125 = 12: 12 + 15.84 - 0.033 × 12 × 12 = 12 + 15.84 - 4.752
    # = 23.088 -> 23.
    assert low["meld_na"] == at_low["meld_na"] == 23
    # Na 140 -> 137: no sodium points, MELD-Na = MELD(i) = 12.
    assert high["meld_na"] == at_high["meld_na"] == 12


def test_meld_na_at_meld_40_stays_40() -> None:
    # MELD 40 (bili 60, INR 5, Cr 4), Na 125: 40 + 1.32 × 12 - 0.033 × 40 × 12
    # = 40 + 15.84 - 15.84 = 40.
    row = scores(
        {"bilirubin_mg_dl": 60.0, "inr": 5.0, "creatinine_mg_dl": 4.0, "sodium_mmol_l": 125.0}
    )[0]
    assert row["meld_na"] == 40


def test_meld_na_missing_sodium() -> None:
    low, high = scores(
        {"sodium_mmol_l": None},
        {"bilirubin_mg_dl": 4.4, "sodium_mmol_l": None},
    )
    # MELD(i) 6 is not > 11, so sodium cannot change the score: 6.
    assert low["meld_na"] == 6
    # MELD(i) 12 > 11 needs sodium: unknown.
    assert high["meld_na"] is None


# ---------------------------------------------------------------------------------------------
# MELD 3.0 (Kim 2021)


def test_meld3_worked_example_and_female_term() -> None:
    female, male = scores(
        *(
            {
                "sex": sex,
                "bilirubin_mg_dl": 2.0,
                "sodium_mmol_l": 130.0,
                "inr": 1.5,
                "creatinine_mg_dl": 1.2,
                "albumin_g_dl": 3.0,
            }
            for sex in ("female", "male")
        )
    )
    # 137 - 130 = 7; 3.5 - 3.0 = 0.5.
    #   1.33 (female)
    # + 4.56 × 0.693147 = 3.160751
    # + 0.82 × 7 = 5.74
    # - 0.24 × 7 × 0.693147 = -1.164487   (× ln bili; "+ ln bili" would give -1.846355)
    # + 9.09 × 0.405465 = 3.685677
    # + 11.14 × 0.182322 = 2.031066
    # + 1.85 × 0.5 = 0.925
    # - 1.83 × 0.5 × 0.182322 = -0.166825
    # + 6
    # = 21.541182 -> 22 (the "+ ln bili" bug gives 20.86 -> 21). A man: 20.211182 -> 20.
    assert female["meld3"] == 22
    assert male["meld3"] == 20


def test_meld3_creatinine_cap_3_and_dialysis() -> None:
    capped, dialysis = scores(
        {"creatinine_mg_dl": 5.0},
        {"creatinine_mg_dl": 1.0, "dialysis_twice_past_week": True},
    )
    # Cr 5 -> 3.0: 11.14 × ln 3 = 11.14 × 1.098612 = 12.238538; + 6 = 18.24 -> 18.
    # (The same record scores 20 on MELD, whose cap is 4.0.)
    assert (capped["meld3"], capped["meld"]) == (18, 20)
    # Dialysis sets Cr to 3.0: 18.
    assert dialysis["meld3"] == 18


def test_meld3_albumin_bounds() -> None:
    low, high, interaction = scores(
        {"albumin_g_dl": 1.0},
        {"albumin_g_dl": 4.0},
        {"albumin_g_dl": 2.5, "creatinine_mg_dl": 2.0},
    )
    # Albumin 1.0 -> 1.5 (not 1.0): 1.85 × (3.5 - 1.5) = 3.7; + 6 = 9.7 -> 10.
    # (A floor of 1.0 would give 1.85 × 2.5 + 6 = 10.625 -> 11.)
    assert low["meld3"] == 10
    # Albumin 4.0 -> 3.5: no albumin points, 6.
    assert high["meld3"] == 6
    # Albumin 2.5, Cr 2: 11.14 × 0.693147 + 1.85 × 1.0 - 1.83 × 1.0 × 0.693147 + 6
    # = 7.721658 + 1.85 - 1.268459 + 6 = 14.303199 -> 14.
    assert interaction["meld3"] == 14


def test_meld3_sodium_bounds_and_inr_uncapped() -> None:
    low, high, inr = scores(
        {"sodium_mmol_l": 120.0},
        {"sodium_mmol_l": 140.0},
        {"inr": 4.0},
    )
    # Na 120 -> 125: 0.82 × 12 = 9.84 (ln bili = 0, no interaction); + 6 = 15.84 -> 16.
    assert low["meld3"] == 16
    # Na 140 -> 137: no sodium points, 6.
    assert high["meld3"] == 6
    # INR 4 is not capped: 9.09 × 1.386294 = 12.601414; + 6 = 18.6 -> 19.
    # (An INR cap of 3.0 would give 9.09 × 1.098612 + 6 = 15.99 -> 16.)
    assert inr["meld3"] == 19


def test_meld3_rounds_ties_up() -> None:
    tie, other_tie = scores(
        {"sodium_mmol_l": 126.0, "albumin_g_dl": 2.7},
        {"sodium_mmol_l": 133.0, "albumin_g_dl": 2.3},
    )
    # 0.82 × 11 + 1.85 × 0.8 + 6 = 9.02 + 1.48 + 6 = 16.5 exactly -> 17 (half up; round half
    # to even would give 16).
    assert tie["meld3"] == 17
    # 0.82 × 4 + 1.85 × 1.2 + 6 = 3.28 + 2.22 + 6 = 11.5 -> 12.
    assert other_tie["meld3"] == 12


def test_meld3_unknown_sex_or_missing_lab_is_null() -> None:
    no_sex, no_albumin = scores({"sex": None}, {"albumin_g_dl": None})
    assert no_sex["meld3"] is None
    assert no_albumin["meld3"] is None
    # Plain MELD needs neither.
    assert no_sex["meld"] == no_albumin["meld"] == 6


# ---------------------------------------------------------------------------------------------
# MELD-Sarcopenia (Montano-Loza 2015)


def test_meld_sarcopenia_adds_10_35_to_plain_meld() -> None:
    low, normal, unknown = scores(
        *(
            {"bilirubin_mg_dl": 4.4, "sodium_mmol_l": 130.0, "ct_low_smi_martin2013": flag}
            for flag in (True, False, None)
        )
    )
    # MELD 12 (not MELD-Na 18): 12 + 10.35 = 22.35; 12 + 0 = 12.
    assert low["meld_sarcopenia"] == pytest.approx(22.35, abs=1e-9)
    assert normal["meld_sarcopenia"] == pytest.approx(12.0, abs=1e-9)
    assert unknown["meld_sarcopenia"] is None
    assert low["meld_sarcopenia_base"] == "meld"


@pytest.mark.parametrize(
    "lab", ["bilirubin_mg_dl", "inr", "creatinine_mg_dl"], ids=lambda lab: f"missing_{lab}"
)
def test_missing_core_lab_makes_every_score_null(lab: str) -> None:
    row = scores({lab: None, "ct_low_smi_martin2013": True})[0]
    assert [row[c] for c in ("meld", "meld_na", "meld3", "meld_sarcopenia")] == [None] * 4


def test_duckdb_gives_the_polars_answers() -> None:
    data = frame(
        {"creatinine_mg_dl": 0.8, "bilirubin_mg_dl": 0.5, "inr": 0.9},
        {"creatinine_mg_dl": 5.0, "dialysis_twice_past_week": None},
        {"bilirubin_mg_dl": 3.9, "sodium_mmol_l": 131.0, "ct_low_smi_martin2013": True},
        {"sodium_mmol_l": 126.0, "albumin_g_dl": 2.7, "sex": "female"},
        {"bilirubin_mg_dl": 4.4, "sodium_mmol_l": None},
    )
    names = ["meld", "meld_na", "meld3", "meld_sarcopenia", "meld_sarcopenia_base"]
    expected = nw.from_native(data).select(*liver_exprs()).to_native()
    relation = duckdb.from_arrow(data.to_arrow())
    got = nw.from_native(relation).select(*liver_exprs()).to_native().pl()
    assert_frame_equal(got.select(names), expected.select(names), check_dtypes=False)
