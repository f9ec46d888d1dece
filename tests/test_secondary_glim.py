"""GLIM malnutrition (Cederholm 2019) at every boundary, with three-valued criteria.

Criteria and severity grades are those of criteria.md §6.4 and reference/secondary/glim.toml;
age exactly 70 uses the older-age thresholds (criteria.md §10.3).
"""

from __future__ import annotations

from typing import Any

import duckdb
import narwhals as nw
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sarcokit.secondary.glim import glim_exprs

# No phenotypic criterion met, one etiologic criterion met (reduced intake).
BASE: dict[str, Any] = {
    "weight_loss_pct_6mo": 0.0,
    "weight_loss_pct_over_6mo": 0.0,
    "bmi_kg_m2": 25.0,
    "age": 60.0,
    "asian_population": False,
    "glim_low_muscle_mass": False,
    "glim_severe_muscle_deficit": False,
    "reduced_intake": True,
    "inflammation": False,
}

SCHEMA = {
    "weight_loss_pct_6mo": pl.Float64,
    "weight_loss_pct_over_6mo": pl.Float64,
    "bmi_kg_m2": pl.Float64,
    "age": pl.Float64,
    "asian_population": pl.Boolean,
    "glim_low_muscle_mass": pl.Boolean,
    "glim_severe_muscle_deficit": pl.Boolean,
    "reduced_intake": pl.Boolean,
    "inflammation": pl.Boolean,
}

COLUMNS = ("glim_phenotypic_met", "glim_etiologic_met", "glim_malnutrition", "glim_stage")


def frame(*changes: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame([{**BASE, **change} for change in changes], schema=SCHEMA)


def glim(**change: Any) -> tuple[Any, ...]:
    """(phenotypic met, etiologic met, malnutrition, stage) for BASE with the changes."""
    row = nw.from_native(frame(change)).select(*glim_exprs()).to_native().row(0, named=True)
    return tuple(row[c] for c in COLUMNS)


def malnutrition_and_stage(**change: Any) -> tuple[Any, Any]:
    _, _, malnutrition, stage = glim(**change)
    return malnutrition, stage


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        (5.0, (False, None)),  # not > 5
        (5.01, (True, 1)),
        (10.0, (True, 1)),  # stage 1 is 5-10%; stage 2 needs > 10
        (10.01, (True, 2)),
    ],
)
def test_weight_loss_within_6_months(loss: float, expected: tuple[Any, Any]) -> None:
    assert malnutrition_and_stage(weight_loss_pct_6mo=loss) == expected


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        (10.0, (False, None)),  # not > 10
        (10.01, (True, 1)),
        (20.0, (True, 1)),  # stage 1 is 10-20%; stage 2 needs > 20
        (20.01, (True, 2)),
    ],
)
def test_weight_loss_beyond_6_months(loss: float, expected: tuple[Any, Any]) -> None:
    assert malnutrition_and_stage(weight_loss_pct_over_6mo=loss) == expected


@pytest.mark.parametrize(
    ("age", "bmi", "expected"),
    [
        (69, 20.0, (False, None)),  # < 20 under 70
        (69, 19.99, (True, 1)),
        (69, 21.0, (False, None)),  # would be low at 70
        (69, 18.5, (True, 1)),  # stage 2 needs < 18.5 under 70
        (69, 18.49, (True, 2)),
        (70, 22.0, (False, None)),  # < 22 from 70 (criteria.md §10.3)
        (70, 21.99, (True, 1)),
        (70, 20.0, (True, 1)),  # stage 2 needs < 20 from 70
        (70, 19.99, (True, 2)),
    ],
)
def test_bmi_by_age(age: float, bmi: float, expected: tuple[Any, Any]) -> None:
    assert malnutrition_and_stage(age=age, bmi_kg_m2=bmi) == expected


@pytest.mark.parametrize(
    ("age", "bmi", "expected"),
    [
        (69, 18.5, (False, None)),  # Asian: < 18.5 under 70
        (69, 18.49, (True, None)),  # malnourished; GLIM gives no Asian stage-2 BMI
        (70, 20.0, (False, None)),  # Asian: < 20 from 70
        (70, 19.99, (True, None)),
    ],
)
def test_asian_bmi_by_age(age: float, bmi: float, expected: tuple[Any, Any]) -> None:
    assert malnutrition_and_stage(age=age, bmi_kg_m2=bmi, asian_population=True) == expected


def test_asian_stage_decided_by_another_severe_criterion() -> None:
    # Low Asian BMI with weight loss > 10% in 6 months: stage 2 whatever the BMI grade.
    assert malnutrition_and_stage(
        asian_population=True, bmi_kg_m2=17.0, weight_loss_pct_6mo=12.0
    ) == (True, 2)
    # With only a moderate weight loss, the BMI grade could still be severe: unknown stage.
    assert malnutrition_and_stage(
        asian_population=True, bmi_kg_m2=17.0, weight_loss_pct_6mo=7.0
    ) == (True, None)


def test_unknown_age_or_population_decides_when_the_strata_agree() -> None:
    # BMI 19 is below 20 and 22: low at any age. Stage: < 18.5 (under 70) no, < 20 (70+) yes.
    assert malnutrition_and_stage(age=None, bmi_kg_m2=19.0) == (True, None)
    # BMI 21 is low only from 70.
    assert malnutrition_and_stage(age=None, bmi_kg_m2=21.0) == (None, None)
    # BMI 17 is low and stage 2 at any age for the general thresholds.
    assert malnutrition_and_stage(age=None, bmi_kg_m2=17.0) == (True, 2)
    # Population unknown, age 60: BMI 19 is low (< 20) but not for Asians (< 18.5).
    assert malnutrition_and_stage(asian_population=None, bmi_kg_m2=19.0) == (None, None)
    # BMI 17 is low for both; its grade is severe only for the non-Asian thresholds.
    assert malnutrition_and_stage(asian_population=None, bmi_kg_m2=17.0) == (True, None)


def test_muscle_mass_criterion_and_its_grade() -> None:
    assert malnutrition_and_stage(glim_low_muscle_mass=True) == (True, 1)
    assert malnutrition_and_stage(glim_low_muscle_mass=True, glim_severe_muscle_deficit=True) == (
        True,
        2,
    )
    assert malnutrition_and_stage(glim_low_muscle_mass=True, glim_severe_muscle_deficit=None) == (
        True,
        None,
    )
    # A severe grade without the criterion being met does not count.
    assert malnutrition_and_stage(glim_low_muscle_mass=False, glim_severe_muscle_deficit=True) == (
        False,
        None,
    )


def test_kleene_logic_of_the_diagnosis() -> None:
    # No phenotypic criterion met: not malnourished, whatever the etiologic criteria.
    assert glim(reduced_intake=None, inflammation=None) == (False, None, False, None)
    # A phenotypic criterion met, etiologic unknown: unknown.
    assert glim(bmi_kg_m2=17.0, reduced_intake=None, inflammation=None) == (True, None, None, None)
    # One etiologic criterion met is enough even if the other is unknown.
    assert glim(bmi_kg_m2=17.0, reduced_intake=None, inflammation=True) == (True, True, True, 2)
    # Phenotypic unknown (BMI missing, the rest not met) and no etiologic criterion: false.
    assert glim(bmi_kg_m2=None, reduced_intake=False) == (None, False, False, None)
    # Phenotypic unknown with an etiologic criterion: unknown.
    assert glim(bmi_kg_m2=None) == (None, True, None, None)


def test_duckdb_gives_the_polars_answers() -> None:
    data = frame(
        {"weight_loss_pct_6mo": 10.01},
        {"age": 70.0, "bmi_kg_m2": 21.99},
        {"asian_population": True, "bmi_kg_m2": 18.49, "age": 69.0},
        {"age": None, "bmi_kg_m2": 21.0},
        {"bmi_kg_m2": None, "reduced_intake": False},
    )
    expected = nw.from_native(data).select(*glim_exprs()).to_native()
    relation = duckdb.from_arrow(data.to_arrow())
    got = nw.from_native(relation).select(*glim_exprs()).to_native().pl()
    assert_frame_equal(got, expected, check_dtypes=False)
