"""One engine, several backends: Polars (compiled once) and DuckDB (through Narwhals) agree."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

import sarcokit


def random_cohort(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "id": [f"s{i}" for i in range(rows)],
            "sex": rng.choice(["male", "female"], rows),
            # From 40: AWGS 2025's not_applicable (< 50) and both of its age bands.
            "age": rng.uniform(40, 95, rows).round(0),
            "height_cm": rng.uniform(145, 190, rows).round(1),
            "weight_kg": rng.uniform(40, 110, rows).round(1),
            "grip_kg": rng.uniform(8, 50, rows).round(1),
            "gait_speed_m_s": rng.uniform(0.3, 1.6, rows).round(2),
            "chair_stand_5x_s": rng.uniform(6, 25, rows).round(1),
            "chair_stand_unable": rng.random(rows) < 0.05,
            "sppb": rng.integers(0, 13, rows),
            "asm_kg": rng.uniform(10, 30, rows).round(2),
            "asm_method": rng.choice(["dxa", "bia", "ct"], rows),
            "muscle_mass_low": rng.random(rows) < 0.3,
            "calf_cm": rng.uniform(25, 42, rows).round(1),
            "muscle_health_concern": rng.random(rows) < 0.3,
            "immobilisation_or_functional_decline": rng.random(rows) < 0.2,
            "dysphagia": rng.random(rows) < 0.1,
            "wasting_condition": rng.random(rows) < 0.1,
            "perceived_weakness": rng.random(rows) < 0.3,
            "weight_loss_6mo_kg": rng.uniform(-2, 5, rows).round(0),
            "finger_ring": rng.choice(["bigger", "just_fits", "smaller"], rows),
            "sarc_f_strength": rng.integers(0, 3, rows),
            "sarc_f_assistance_walking": rng.integers(0, 3, rows),
            "sarc_f_rise_from_chair": rng.integers(0, 3, rows),
            "sarc_f_climb_stairs": rng.integers(0, 3, rows),
            "sarc_f_falls": rng.integers(0, 3, rows),
        }
    )
    # A tenth of each measurement missing, and a few implausible heights to be rejected.
    mask = {c: pl.Series(rng.random(rows) < 0.1) for c in frame.columns if c != "id"}
    frame = frame.with_columns(
        pl.when(mask[c]).then(None).otherwise(pl.col(c)).alias(c) for c in mask
    )
    return frame.with_columns(
        pl.when(pl.Series(rng.random(rows) < 0.02))
        .then(1650.0)
        .otherwise(pl.col("height_cm"))
        .alias("height_cm")
    )


def test_duckdb_and_polars_give_identical_results() -> None:
    cohort = random_cohort(2_000, seed=7)
    expected = sarcokit.evaluate(cohort)
    relation = duckdb.from_arrow(cohort.to_arrow())
    got = sarcokit.evaluate(relation).pl().select(expected.columns)
    assert got.height == cohort.height
    assert expected["invalid_fields"].null_count() < cohort.height
    assert_frame_equal(got.sort("id"), expected.sort("id"), check_dtypes=False)


def test_lazy_polars_input_stays_lazy() -> None:
    cohort = random_cohort(50, seed=3)
    lazy = sarcokit.evaluate(cohort.lazy())
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(lazy.collect(), sarcokit.evaluate(cohort))
