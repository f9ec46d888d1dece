"""Bone category, osteosarcopenia variants and contributing factors at their cut-offs.

WHO bands and the osteosarcopenia variants are those of criteria.md §6.3 and
reference/secondary/osteosarcopenia.toml; factor thresholds are those cited in
reference/secondary/factors.toml.
"""

from __future__ import annotations

from typing import Any

import duckdb
import narwhals as nw
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sarcokit
from sarcokit.secondary.factors import factor_exprs
from sarcokit.secondary.osteosarcopenia import bone_exprs, osteosarcopenia_exprs

VARIANTS = ("t_below_minus1_sarcopenia", "t_minus2_5_sarcopenia", "t_minus2_5_severe")


def bone_category(t_score: float | None) -> Any:
    data = pl.DataFrame({"bmd_t_score": [t_score]}, schema={"bmd_t_score": pl.Float64})
    return nw.from_native(data).select(*bone_exprs()).to_native().item()


@pytest.mark.parametrize(
    ("t_score", "category"),
    [
        (0.5, "normal"),
        (-1.0, "normal"),  # normal is T ≥ -1.0
        (-1.01, "osteopenia"),
        (-2.49, "osteopenia"),
        (-2.5, "osteoporosis"),  # osteoporosis is T ≤ -2.5
        (-3.2, "osteoporosis"),
        (None, None),
    ],
)
def test_who_bone_category(t_score: float | None, category: str | None) -> None:
    assert bone_category(t_score) == category


def osteosarcopenia(t_score: float | None, category: str) -> dict[str, Any]:
    """The three variants for EWGSOP2 result columns given by hand."""
    sarcopenia = {
        "severe_sarcopenia": True,
        "sarcopenia": True,
        "probable_sarcopenia": False,
        "no_sarcopenia": False,
        "indeterminate": None,
    }[category]
    data = pl.DataFrame(
        {
            "bmd_t_score": [t_score],
            "ewgsop2_category": [category],
            "ewgsop2_sarcopenia": [sarcopenia],
        },
        schema={
            "bmd_t_score": pl.Float64,
            "ewgsop2_category": pl.String,
            "ewgsop2_sarcopenia": pl.Boolean,
        },
    )
    row = nw.from_native(data).select(*osteosarcopenia_exprs(["ewgsop2"])).to_native()
    result: dict[str, Any] = row.row(0, named=True)
    return {variant: result[f"osteosarcopenia_{variant}_ewgsop2"] for variant in VARIANTS}


@pytest.mark.parametrize(
    ("t_score", "category", "expected"),
    [
        # T < -1.0 with sarcopenia (Hirschfeld/Duque 2017).
        (-1.0, "sarcopenia", (False, False, False)),
        (-1.01, "sarcopenia", (True, False, False)),
        # T ≤ -2.5 with sarcopenia (project brief); with severe sarcopenia (Sepúlveda-Loyola 2020).
        (-2.49, "severe_sarcopenia", (True, False, False)),
        (-2.5, "sarcopenia", (True, True, False)),
        (-2.5, "severe_sarcopenia", (True, True, True)),
        # No sarcopenia: false whatever the bone.
        (-3.0, "no_sarcopenia", (False, False, False)),
        (-3.0, "probable_sarcopenia", (False, False, False)),
        # Unknown sarcopenia: unknown where the bone rule holds, false where it does not.
        (-3.0, "indeterminate", (None, None, None)),
        (-0.5, "indeterminate", (False, False, False)),
        # Unknown T-score: unknown with sarcopenia, false without.
        (None, "severe_sarcopenia", (None, None, None)),
        (None, "sarcopenia", (None, None, False)),
        (None, "no_sarcopenia", (False, False, False)),
    ],
)
def test_osteosarcopenia_variants(
    t_score: float | None, category: str, expected: tuple[Any, Any, Any]
) -> None:
    assert tuple(osteosarcopenia(t_score, category).values()) == expected


def test_osteosarcopenia_on_engine_results() -> None:
    # EWGSOP2 severe sarcopenia: grip 20 kg (< 27), ASMI 18 / 1.7² = 6.23 (< 7.0), gait 0.6 (≤ 0.8).
    cohort = pl.DataFrame(
        {
            "id": ["a", "b"],
            "sex": ["male", "male"],
            "age": [75.0, 75.0],
            "height_m": [1.7, 1.7],
            "weight_kg": [60.0, 60.0],
            "grip_kg": [20.0, 40.0],
            "asm_kg": [18.0, 18.0],
            "asm_method": ["dxa", "dxa"],
            "gait_speed_m_s": [0.6, 1.2],
            "bmd_t_score": [-2.7, -2.7],
        }
    )
    results = sarcokit.evaluate(cohort, ["ewgsop2", "fnih2014"], keep=["bmd_t_score"])
    out = nw.from_native(results).select(
        "id", *bone_exprs(), *osteosarcopenia_exprs(["ewgsop2", "fnih2014"])
    )
    native = out.to_native()
    # FNIH 2014 has no severe category, so it has no severe variant.
    assert "osteosarcopenia_t_minus2_5_severe_fnih2014" not in native.columns
    a, b = native.sort("id").to_dicts()
    assert a["bone_category"] == "osteoporosis"
    assert a["osteosarcopenia_t_minus2_5_severe_ewgsop2"] is True
    # Grip 40 kg is normal strength: no EWGSOP2 sarcopenia, so no osteosarcopenia.
    assert b["osteosarcopenia_t_below_minus1_sarcopenia_ewgsop2"] is False


# ---------------------------------------------------------------------------------------------
# Contributing factors

FACTOR_SCHEMA = {
    "sex": pl.String,
    "vitamin_d_ng_ml": pl.Float64,
    "crp_mg_l": pl.Float64,
    "il6_pg_ml": pl.Float64,
    "tnf_alpha_pg_ml": pl.Float64,
    "testosterone_ng_dl": pl.Float64,
    "igf1_ng_ml": pl.Float64,
    "hba1c_pct": pl.Float64,
    "albumin_g_dl": pl.Float64,
}


def factors(**values: Any) -> dict[str, Any]:
    record = {name: values.get(name) for name in FACTOR_SCHEMA}
    data = pl.DataFrame([record], schema=FACTOR_SCHEMA)
    row: dict[str, Any] = (
        nw.from_native(data).select(*factor_exprs()).to_native().row(0, named=True)
    )
    return row


def test_factor_columns_flag_only_where_a_threshold_is_cited() -> None:
    columns = set(factors())
    names = ("vitamin_d", "crp", "il6", "tnf_alpha", "testosterone", "igf1", "hba1c", "albumin")
    assert {f"factor_{name}_value" for name in names} <= columns
    flagged = {
        c.removeprefix("factor_").removesuffix("_flag") for c in columns if c.endswith("_flag")
    }
    assert flagged == {"vitamin_d", "testosterone", "hba1c"}


@pytest.mark.parametrize(
    ("ng_ml", "flag"),
    [
        (19.99, "deficient"),  # deficiency is < 20 ng/mL
        # The Endocrine Society 2024 guideline withdrew the 2011 "insufficiency" (20-29 ng/mL)
        # and "sufficiency" (>= 30) bands (McCartney 2024; criteria.md §10.11): no band above 20.
        (20.0, "not_deficient"),
        (29.99, "not_deficient"),
        (30.0, "not_deficient"),
        (None, None),
    ],
)
def test_vitamin_d(ng_ml: float | None, flag: str | None) -> None:
    row = factors(vitamin_d_ng_ml=ng_ml)
    assert (row["factor_vitamin_d_value"], row["factor_vitamin_d_flag"]) == (ng_ml, flag)


@pytest.mark.parametrize(
    ("sex", "ng_dl", "flag"),
    [
        ("male", 263.9, "low"),  # low is < 264 ng/dL
        ("male", 264.0, "not_low"),
        ("female", 20.0, None),  # no threshold for women
        (None, 200.0, None),
        ("male", None, None),
    ],
)
def test_testosterone(sex: str | None, ng_dl: float | None, flag: str | None) -> None:
    assert factors(sex=sex, testosterone_ng_dl=ng_dl)["factor_testosterone_flag"] == flag


@pytest.mark.parametrize(
    ("pct", "flag"),
    [(5.69, "normal"), (5.7, "prediabetes"), (6.49, "prediabetes"), (6.5, "diabetes")],
)
def test_hba1c(pct: float, flag: str) -> None:
    assert factors(hba1c_pct=pct)["factor_hba1c_flag"] == flag


def test_unflagged_values_pass_through() -> None:
    row = factors(
        crp_mg_l=12.0, il6_pg_ml=4.2, tnf_alpha_pg_ml=8.0, igf1_ng_ml=110.0, albumin_g_dl=3.1
    )
    assert (
        row["factor_crp_value"],
        row["factor_il6_value"],
        row["factor_tnf_alpha_value"],
        row["factor_igf1_value"],
        row["factor_albumin_value"],
    ) == (12.0, 4.2, 8.0, 110.0, 3.1)


def test_duckdb_gives_the_polars_answers() -> None:
    data = pl.DataFrame(
        [
            {
                "sex": "male",
                "vitamin_d_ng_ml": 19.99,
                "testosterone_ng_dl": 263.9,
                "hba1c_pct": 6.5,
            },
            {
                "sex": "female",
                "vitamin_d_ng_ml": 30.0,
                "testosterone_ng_dl": 20.0,
                "hba1c_pct": 5.7,
            },
            {"sex": None, "vitamin_d_ng_ml": None, "testosterone_ng_dl": None, "hba1c_pct": None},
        ],
        schema=FACTOR_SCHEMA,
    ).with_columns(bmd_t_score=pl.Series([-1.0, -2.5, None], dtype=pl.Float64))
    exprs = [*factor_exprs(), *bone_exprs()]
    expected = nw.from_native(data).select(*exprs).to_native()
    relation = duckdb.from_arrow(data.to_arrow())
    got = nw.from_native(relation).select(*exprs).to_native().pl()
    assert_frame_equal(got, expected, check_dtypes=False)
