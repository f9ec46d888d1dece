"""Cohort-scale benchmark: sarcokit on tens of millions of synthetic subjects, four ways.

Run: .venv/bin/python benchmarks/cohort_bench.py            (full size, ~10-15 min on 2 cores)
     .venv/bin/python benchmarks/cohort_bench.py --quick    (small sizes, about a minute)
Sizes can be set one by one (--rows, --naive-rows, --stream-rows, --duckdb-rows, --spark-rows);
a size of 0 skips that measurement. Prints the machine and a Markdown table of results.

Measurements
------------
(a) `sarcokit.evaluate(frame)` on a Polars DataFrame in memory (default 10,000,000 rows): all ten
    definitions, screening scores and derived values; median of 3 runs. Target ≤ 2 s.
(b) The same category rules written the way scripts usually do it: pandas
    `DataFrame.apply(axis=1)` calling a plain-Python if/else function per row (`naive_row`,
    three-valued like sarcokit so that it answers the same question), on 200,000 rows, against
    `sarcokit.evaluate` on the same rows in the same run. Target: sarcokit ≥ 100× faster. The
    baseline's categories are checked against sarcokit's on the first 1,000 rows.
(c) Streaming a Parquet file of 30,000,000 rows end to end in a child process:
    `sarcokit.evaluate(pl.scan_parquet(src)).sink_parquet(dst)`. Peak RSS is the child's
    `ru_maxrss` read with `resource.getrusage(RUSAGE_CHILDREN)` in a small launcher process that
    starts it (see `LAUNCHER` for why not from this process), cross-checked against the child's
    own VmHWM. Target ≤ 2 GB. The input file is
    written in chunks of --chunk-rows with a pyarrow ParquetWriter, so generating it needs only
    one chunk in memory. Every file lives in a temporary directory removed at the end.
(e) `sarcokit cohort` end to end (`run_cohort`: read, map, score, write results, rejects and
    summary tables) on a CSV of --file-rows (default 10,000,000) clean rows of the synthetic
    cohort, in a child process. With --baseline-src DIR (a `src` folder of an earlier commit,
    e.g. `git archive <rev> src | tar -x -C /tmp/old`) the same file is also run with that code,
    alternately, --file-repeats times each, so before and after share the machine's load.
(f) The same on a CSV with 1% dirty cells: in each measurement column, 1% of the cells are one
    of `NA`, `abc`, `17.5 kg`, `-999`, `n/a` (NA is a missing value; the others reject their row).
(d) Rows per second, for the record: DuckDB (`sarcokit.evaluate(duckdb relation over a Parquet
    file)`, result written to Parquet by DuckDB) and Spark local mode (`sarcokit.spark.evaluate`
    on `spark.read.parquet`, written with `df.write.parquet`), at the sizes stated in the table.

The synthetic cohort (`generate`)
---------------------------------
Community-dwelling older adults; every draw is vectorised with numpy (10 M rows in ~10 s).
z-scores below are standard normal; `clip` bounds values to a physiological range.

- sex: male / female 50 / 50, never missing.
- age: 60 + 35 × Beta(1.4, 2.4) years (range 60-95, median ≈ 72, few at the top).
- race: asian 40%, white 40%, african_american 10%, hispanic 10% (used by Lee 2000).
- height: men N(1.71, 0.07) m, women N(1.58, 0.065) m, minus 0.8 cm per decade over 60;
  recorded as height_cm to 0.1 cm.
- weight: BMI × height², BMI men N(25.5, 3.6), women N(25.2, 4.4), minus 0.05 per year over
  70 (weight loss in the old), clipped 14-50: weight rises with height (r ≈ 0.5).
- true ASM: ASMI × height², ASMI men N(7.6, 0.85), women N(6.0, 0.75) kg/m², plus 0.12 kg/m²
  per BMI unit over 25 and minus 0.02 kg/m² per year over 60. z_mass is its z-score.
- measured ASM: asm_method dxa 55% / bia 40% / ct 5%; DXA ×N(1, 0.02), BIA ×N(1.03, 0.05)
  (BIA reads high), CT ×N(1, 0.03); to 0.01 kg. muscle_mass_low (EWGSOP 2010's classified
  mass) is measured ASMI < 7.26 (men) / 5.45 (women) kg/m² (Baumgartner 1998).
- grip: men 41 − 0.42 × (age − 60), SD 7; women 25 − 0.27 × (age − 60), SD 5 kg; z-score
  0.5 × z_mass + 0.87 × noise (r ≈ 0.5 with ASM); to 0.1 kg, clipped 2-80.
- usual gait speed: 1.28 − 0.013 × (age − 60) m/s, SD 0.2, z-score 0.4 × z_grip + 0.92 × noise,
  clipped 0.15-2.2; to 0.01 m/s.
- five-times chair stand: 9 s × (1.1 / gait)^0.9 × logN(0, 0.18), clipped 4-60 s (slower walkers
  rise slower); chair_stand_unable with probability 2% + 25% × (gait < 0.5), time then missing.
- SPPB: the standard scoring of the 4-m walk (4 / gait; < 4.82 s = 4, ≤ 6.20 = 3, ≤ 8.70 = 2,
  else 1), the chair stand (≤ 11.19 s = 4, ≤ 13.69 = 3, ≤ 16.69 = 2, ≤ 60 = 1, unable = 0) and a
  balance score 0-4 that follows gait (round(2 + 2.2 × z_gait + noise)); computed before any
  value is masked, so a recorded SPPB may accompany a missing gait speed.
- calf circumference: men 36.5, women 34.8 cm, + 0.45 cm per BMI unit over 25, SD 2.6,
  z-score 0.6 × z_mass + 0.8 × noise; to 0.1 cm.
- frailty score f = −(0.6 × z_grip + 0.4 × z_gait) + 0.6 × noise. SARC-F items: 0/1/2 by
  thresholds on f + item noise (≈ 25% score ≥ 1 and ≈ 7% score 2 per item), so items are high
  when grip is low; falls depend less on f.
- MSRA: hospitalised last year none / once / more than once by f (≈ 76 / 16 / 8%); walks 1000 m
  (≈ 75%, less when f is high); three meals (92%), dairy (70%), protein (80%) daily, more
  often missed when f is high; weight loss > 2 kg (≈ 15%, more when f is high).
- Missingness (null), per measurement: grip 5%; weight 6%; height 7%; gait speed 8% + 12% if
  gait < 0.6 m/s (the frail cannot be tested); chair stand 12%; SPPB 20%; calf 15%; each SARC-F
  item 6% and each MSRA item 10%; ASM (and its method) 20% at 60 rising to 40% at 95 (mean
  ≈ 27%): mass is missing more often than grip and more often in the old.
- Data-entry slips: 0.1% of heights typed in metres into the cm column (1.64), which sarcokit
  rejects by name in `invalid_fields`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

import sarcokit
from sarcokit.definitions import DEFINITION_IDS
from sarcokit.screening import sarc_f_items

# The definitions the plain-Python baseline implements (AWGS 2025 came later; it is not there).
NAIVE_IDS = tuple(d for d in DEFINITION_IDS if d != "awgs2025")
SARC_F = sarc_f_items()
MSRA_BOOLEANS = (
    "msra_walks_1000m",
    "msra_three_meals_daily",
    "msra_dairy_daily",
    "msra_protein_daily",
    "msra_weight_loss_over_2kg",
)

# ---------------------------------------------------------------------------------------------
# The synthetic cohort


def _masked(values: np.ndarray[Any, Any], missing: np.ndarray[Any, Any]) -> pa.Array:
    return pa.array(values, mask=missing)


def _labels(
    codes: np.ndarray[Any, Any], labels: list[str], missing: np.ndarray[Any, Any] | None = None
) -> pa.Array:
    indices = pa.array(codes.astype(np.int8), mask=missing)
    return pa.DictionaryArray.from_arrays(indices, pa.array(labels)).cast(pa.string())


def generate(rows: int, seed: int = 1, first_id: int = 0) -> pl.DataFrame:
    """A synthetic cohort as documented in the module docstring."""
    rng = np.random.default_rng(seed)

    def z() -> np.ndarray[Any, Any]:
        return rng.standard_normal(rows)

    def chance(p: float | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return rng.random(rows) < p

    male = chance(0.5)
    age = 60 + 35 * rng.beta(1.4, 2.4, rows)
    race = rng.choice(4, rows, p=[0.4, 0.4, 0.1, 0.1])

    height = np.where(male, 1.71 + 0.07 * z(), 1.58 + 0.065 * z()) - 0.0008 * (age - 60)
    height = np.clip(height, 1.30, 2.10)
    bmi = np.where(male, 25.5 + 3.6 * z(), 25.2 + 4.4 * z()) - 0.05 * np.maximum(age - 70, 0)
    bmi = np.clip(bmi, 14, 50)
    weight = bmi * height**2

    asmi_mean = np.where(male, 7.6, 6.0) + 0.12 * (bmi - 25) - 0.02 * (age - 60)
    asmi_sd = np.where(male, 0.85, 0.75)
    z_mass = z()
    asm_true = np.clip(asmi_mean + asmi_sd * z_mass, 2.5, 13) * height**2
    method = rng.choice(3, rows, p=[0.55, 0.40, 0.05])  # dxa, bia, ct
    bias = np.choose(method, [1.0, 1.03, 1.0])
    noise = np.choose(method, [0.02, 0.05, 0.03])
    asm = np.clip(asm_true * (bias + noise * z()), 3.5, 55).round(2)
    mass_low = asm / height**2 < np.where(male, 7.26, 5.45)

    z_grip = 0.5 * z_mass + 0.87 * z()
    grip_mean = np.where(male, 41 - 0.42 * (age - 60), 25 - 0.27 * (age - 60))
    grip = np.clip(grip_mean + np.where(male, 7.0, 5.0) * z_grip, 2, 80).round(1)

    z_gait = 0.4 * z_grip + 0.92 * z()
    gait = np.clip(1.28 - 0.013 * (age - 60) + 0.2 * z_gait, 0.15, 2.2).round(2)
    chair = np.clip(9 * (1.1 / gait) ** 0.9 * np.exp(0.18 * z()), 4, 60).round(1)
    unable = chance(0.02 + 0.25 * (gait < 0.5))

    walk_4m = 4 / gait
    gait_points = np.select([walk_4m < 4.82, walk_4m <= 6.20, walk_4m <= 8.70], [4, 3, 2], 1)
    chair_points = np.select(
        [unable, chair <= 11.19, chair <= 13.69, chair <= 16.69, chair <= 60], [0, 4, 3, 2, 1], 0
    )
    balance = np.clip(np.rint(2 + 2.2 * z_gait + 0.8 * z()), 0, 4)
    sppb = (gait_points + chair_points + balance).astype(np.int64)

    calf_mean = np.where(male, 36.5, 34.8) + 0.45 * (bmi - 25)
    calf = np.clip(calf_mean + 2.6 * (0.6 * z_mass + 0.8 * z()), 18, 60).round(1)

    frailty = -(0.6 * z_grip + 0.4 * z_gait) + 0.6 * z()
    items = {}
    for item in SARC_F:
        weight_f = 0.5 if item == "sarc_f_falls" else 1.0
        latent = weight_f * frailty + z()
        items[item] = ((latent > 0.95).astype(np.int64) + (latent > 2.1)).astype(np.int64)
    hospital = np.digitize(0.5 * frailty + z(), [0.8, 1.6])  # none, once, more_than_once
    msra = {
        "msra_walks_1000m": rng.random(rows) > 0.25 + 0.15 * np.tanh(frailty),
        "msra_three_meals_daily": rng.random(rows) > 0.08 + 0.05 * np.tanh(frailty),
        "msra_dairy_daily": rng.random(rows) > 0.30 + 0.10 * np.tanh(frailty),
        "msra_protein_daily": rng.random(rows) > 0.20 + 0.10 * np.tanh(frailty),
        "msra_weight_loss_over_2kg": rng.random(rows) < 0.15 + 0.08 * np.tanh(frailty),
    }

    height_cm = (height * 100).round(1)
    slip = chance(0.001)
    height_cm = np.where(slip, height.round(2), height_cm)
    asm_missing = chance(0.2 + 0.2 * (age - 60) / 35)
    chair_missing = chance(0.12) | unable

    columns: dict[str, pa.Array] = {
        "id": pa.array(np.arange(first_id, first_id + rows, dtype=np.int64)),
        "sex": _labels(male.astype(np.int8), ["female", "male"]),
        "age": pa.array(age.round(1)),
        "race": _labels(race, ["asian", "white", "african_american", "hispanic"]),
        "height_cm": _masked(height_cm, chance(0.07)),
        "weight_kg": _masked(weight.round(1), chance(0.06)),
        "grip_kg": _masked(grip, chance(0.05)),
        "gait_speed_m_s": _masked(gait, chance(0.08 + 0.12 * (gait < 0.6))),
        "chair_stand_5x_s": _masked(chair, chair_missing),
        "chair_stand_unable": _masked(unable, chance(0.12) & ~unable),
        "sppb": _masked(sppb, chance(0.20)),
        "asm_kg": _masked(asm, asm_missing),
        "asm_method": _labels(method, ["dxa", "bia", "ct"], asm_missing),
        "muscle_mass_low": _masked(mass_low, asm_missing),
        "calf_cm": _masked(calf, chance(0.15)),
        **{item: _masked(values, chance(0.06)) for item, values in items.items()},
        "msra_hospitalised_last_year": _labels(
            hospital, ["none", "once", "more_than_once"], chance(0.10)
        ),
        **{item: _masked(values, chance(0.10)) for item, values in msra.items()},
    }
    frame = pl.from_arrow(pa.table(columns))
    assert isinstance(frame, pl.DataFrame)
    return frame


# ---------------------------------------------------------------------------------------------
# The baseline: plain Python, one row at a time, the way a cohort script is usually written.

PLAUSIBLE = {
    "age": (18, 120),
    "height_cm": (90, 250),
    "weight_kg": (20, 350),
    "grip_kg": (0, 100),
    "gait_speed_m_s": (0, 4),
    "chair_stand_5x_s": (2, 300),
    "sppb": (0, 12),
    "asm_kg": (3, 60),
    "calf_cm": (15, 70),
    **dict.fromkeys(SARC_F, (0, 2)),
}


def _value(row: Any, name: str) -> Any:
    value = row[name]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


Cut = tuple[float, str | None, tuple[str, ...] | None]  # cut-off, sex, mass methods


def _low(
    value: float | None, op: str, cuts: list[Cut], sex: str | None, method: str | None
) -> bool | None:
    """Low (True), normal (False) or unknown (None): unknown if the cut-offs that may apply
    (sex or method missing) disagree, or none applies (a method with no cut-off)."""
    if value is None:
        return None
    answers = set()
    for cut, cut_sex, methods in cuts:
        if cut_sex is not None and sex is not None and cut_sex != sex:
            continue
        if methods is not None and method not in (None, "equation") and method not in methods:
            continue
        if op == "<":
            answers.add(value < cut)
        elif op == "<=":
            answers.add(value <= cut)
        elif op == ">":
            answers.add(value > cut)
        else:
            answers.add(value >= cut)
    return answers.pop() if len(answers) == 1 else None


def _any_low(*flags: bool | None) -> bool | None:
    if True in flags:
        return True
    if False in flags:
        return False
    return None


def _and(*values: bool | None) -> bool | None:
    if False in values:
        return False
    if None in values:
        return None
    return True


def _or(*values: bool | None) -> bool | None:
    if True in values:
        return True
    if None in values:
        return None
    return False


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def naive_row(row: Any) -> tuple[Any, ...]:
    """Derived values, SARC-F / SARC-CalF and the ten definitions' categories for one row."""
    for name, (low, high) in PLAUSIBLE.items():
        value = _value(row, name)
        if value is not None and not low <= value <= high:
            return (None,) * (len(NAIVE_IDS) + 4)
    sex = _value(row, "sex")
    method = _value(row, "asm_method")
    height_cm = _value(row, "height_cm")
    height = None if height_cm is None else round(height_cm * 0.01, 9)
    weight = _value(row, "weight_kg")
    asm = _value(row, "asm_kg")
    grip = _value(row, "grip_kg")
    gait = _value(row, "gait_speed_m_s")
    chair = _value(row, "chair_stand_5x_s")
    unable = _value(row, "chair_stand_unable")
    sppb = _value(row, "sppb")
    calf = _value(row, "calf_cm")
    mass_low = _value(row, "muscle_mass_low")

    bmi = asmi = alm_bmi = grip_bmi = None
    if height is not None and weight is not None:
        bmi = round(weight / (height * height), 9)
    if height is not None and asm is not None:
        asmi = round(asm / (height * height), 9)
    if bmi is not None and asm is not None:
        alm_bmi = round(asm / bmi, 9)
    if bmi is not None and grip is not None:
        grip_bmi = round(grip / bmi, 9)
    items = [_value(row, item) for item in SARC_F]
    sarc_f = None if None in items else sum(items)
    calf_low = _low(calf, "<", [(34, "male", None), (33, "female", None)], sex, method)
    sarc_calf = None
    if sarc_f is not None and calf_low is not None:
        sarc_calf = sarc_f + (10 if calf_low else 0)

    def grip_low(male: float, female: float) -> bool | None:
        return _low(grip, "<", [(male, "male", None), (female, "female", None)], sex, method)

    def gait_low(op: str, cut: float) -> bool | None:
        return _low(gait, op, [(cut, None, None)], sex, method)

    def chair_low(op: str, cut: float) -> bool | None:
        return True if unable is True else _low(chair, op, [(cut, None, None)], sex, method)

    dxa_bia = ("dxa", "bia")
    asian_asmi = _low(
        asmi,
        "<",
        [
            (7.0, "male", ("dxa",)),
            (5.4, "female", ("dxa",)),
            (7.0, "male", ("bia",)),
            (5.7, "female", ("bia",)),
        ],
        sex,
        method,
    )
    categories: list[str | None] = []

    # EWGSOP 2010
    s = grip_low(30, 20)
    m = mass_low
    p = _any_low(gait_low("<", 0.8), _low(sppb, "<=", [(8, None, None)], sex, method))
    if _and(m, s, p):
        categories.append("severe_sarcopenia")
    elif _and(m, _or(s, p)):
        categories.append("sarcopenia")
    elif m:
        categories.append("presarcopenia")
    elif _or(_not(m), _and(_not(s), _not(p))):
        categories.append("no_sarcopenia")
    else:
        categories.append("indeterminate")

    # EWGSOP2 (tug and the 400 m walk are not in this cohort)
    s = _any_low(grip_low(27, 16), chair_low(">", 15))
    m = _any_low(
        _low(asm, "<", [(20, "male", dxa_bia), (15, "female", dxa_bia)], sex, method),
        _low(asmi, "<", [(7.0, "male", dxa_bia), (5.5, "female", dxa_bia)], sex, method),
    )
    p = _any_low(gait_low("<=", 0.8), _low(sppb, "<=", [(8, None, None)], sex, method))
    if _and(s, m, p):
        categories.append("severe_sarcopenia")
    elif _and(s, m):
        categories.append("sarcopenia")
    elif s:
        categories.append("probable_sarcopenia")
    elif s is False:
        categories.append("no_sarcopenia")
    else:
        categories.append("indeterminate")

    # AWGS 2014
    s, m, p = grip_low(26, 18), asian_asmi, gait_low("<", 0.8)
    sarcopenia = _and(m, _or(s, p))
    if sarcopenia:
        categories.append("sarcopenia")
    elif sarcopenia is False:
        categories.append("no_sarcopenia")
    else:
        categories.append("indeterminate")

    # AWGS 2019 and China 2021 share tests
    s = grip_low(28, 18)
    p = _any_low(
        gait_low("<", 1.0), chair_low(">=", 12), _low(sppb, "<=", [(9, None, None)], sex, method)
    )
    m = asian_asmi
    if _and(m, s, p):
        awgs, cn = "severe_sarcopenia", "severe_sarcopenia"
    elif _and(m, _or(s, p)):
        awgs, cn = "sarcopenia", "sarcopenia"
    else:
        awgs = "no_sarcopenia" if _and(m, _or(s, p)) is False else "indeterminate"
        if _or(s, p):
            cn = "possible_sarcopenia"
        elif _or(s, p) is False:
            cn = "no_sarcopenia"
        else:
            cn = "indeterminate"
    categories.append(awgs)

    # AWGS 2019 community
    case_finding = _any_low(
        calf_low,
        _low(sarc_f, ">=", [(4, None, None)], sex, method),
        _low(sarc_calf, ">=", [(11, None, None)], sex, method),
    )
    sp = _any_low(grip_low(28, 18), chair_low(">=", 12))
    if sp:
        categories.append("possible_sarcopenia")
    elif sp is False:
        categories.append("no_possible_sarcopenia")
    elif case_finding is False:
        categories.append("case_finding_negative")
    else:
        categories.append("indeterminate")

    categories.append(cn)

    # IWGS 2011
    p = gait_low("<", 1.0)
    m = _low(asmi, "<=", [(7.23, "male", ("dxa",)), (5.67, "female", ("dxa",))], sex, method)
    both = _and(p, m)
    categories.append({True: "sarcopenia", False: "no_sarcopenia", None: "indeterminate"}[both])

    # FNIH 2014
    s = grip_low(26, 16)
    m = _low(alm_bmi, "<", [(0.789, "male", ("dxa",)), (0.512, "female", ("dxa",))], sex, method)
    p = gait_low("<", 0.8)
    if _and(s, m, p):
        categories.append("weakness_slowness_low_lean_mass")
    elif _and(s, m):
        categories.append("weakness_with_low_lean_mass")
    elif _and(s, m) is False:
        categories.append("no_sarcopenia")
    else:
        categories.append("indeterminate")

    # SDOC 2020, absolute grip and grip / BMI
    p = gait_low("<", 0.8)
    for s in (
        grip_low(35.5, 20),
        _low(grip_bmi, "<", [(1.05, "male", None), (0.79, "female", None)], sex, method),
    ):
        both = _and(s, p)
        categories.append({True: "sarcopenia", False: "no_sarcopenia", None: "indeterminate"}[both])

    return (*categories, bmi, asmi, sarc_f, sarc_calf)


def naive_evaluate(frame: Any) -> Any:
    """pandas `apply(axis=1)` over rows; returns a pandas frame of categories and values."""
    import pandas as pd

    results = frame.apply(naive_row, axis=1)
    names = [f"{d}_category" for d in NAIVE_IDS] + [
        "bmi_kg_m2",
        "asmi_kg_m2",
        "sarc_f_total",
        "sarc_calf_total",
    ]
    return pd.DataFrame(results.tolist(), columns=names, index=frame.index)


# ---------------------------------------------------------------------------------------------
# Measurements


def median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of `run()` over repeats, and every time."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def write_parquet(path: Path, rows: int, chunk_rows: int, seed: int) -> float:
    """Write a generated cohort chunk by chunk; returns the seconds it took."""
    start = time.perf_counter()
    writer: pq.ParquetWriter | None = None
    try:
        for index, first in enumerate(range(0, rows, chunk_rows)):
            size = min(chunk_rows, rows - first)
            table = generate(size, seed=seed + index, first_id=first).to_arrow(
                compat_level=pl.CompatLevel.oldest()
            )
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=min(chunk_rows, 1_000_000))
            del table
    finally:
        if writer is not None:
            writer.close()
    return time.perf_counter() - start


STREAM_CHILD = """
import json, sys, time
import polars as pl
import sarcokit
source, target, engine = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
lazy = sarcokit.evaluate(pl.scan_parquet(source))
if engine == "default":
    lazy.sink_parquet(target)
else:
    lazy.sink_parquet(target, engine=engine)
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:
    hwm = next((int(l.split()[1]) for l in status if l.startswith("VmHWM:")), None)
print(json.dumps({"seconds": seconds, "vm_hwm_kb": hwm}))
"""

# Linux records the RSS of the address space a process replaces at exec() in its ru_maxrss, and
# Python starts children with vfork()/fork(), so a child of this (by then large) process would
# report this process's RSS as its own peak. A minimal launcher process sits between the two:
# its address space is small when it starts the streaming child, and it reads RUSAGE_CHILDREN.
LAUNCHER = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if done.returncode:
    sys.stderr.write(done.stderr)
    sys.exit(done.returncode)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"child": json.loads(done.stdout.strip().splitlines()[-1]),
                  "children_maxrss_kb": usage.ru_maxrss}))
"""


def stream_in_child(source: Path, target: Path, engine: str) -> dict[str, float]:
    """Run the streaming step in a child process; its peak RSS from RUSAGE_CHILDREN."""
    start = time.perf_counter()
    child = [sys.executable, "-c", STREAM_CHILD, str(source), str(target), engine]
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *child], check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "wall": wall,
        "seconds": report["child"]["seconds"],
        "children_maxrss_kb": report["children_maxrss_kb"],
        "vm_hwm_kb": report["child"]["vm_hwm_kb"],
        "rows_out": pq.ParquetFile(target).metadata.num_rows,
    }


def duckdb_rate(source: Path, target: Path) -> dict[str, float]:
    """sarcokit.evaluate on a DuckDB relation over the Parquet file, written to Parquet."""
    import duckdb

    connection = duckdb.connect()
    start = time.perf_counter()
    relation = connection.read_parquet(str(source))
    result = sarcokit.evaluate(relation)
    built = time.perf_counter() - start
    result.write_parquet(str(target))
    seconds = time.perf_counter() - start
    connection.close()
    return {
        "seconds": seconds,
        "build": built,
        "rows_out": pq.ParquetFile(target).metadata.num_rows,
    }


def spark_rate(source: Path, target: Path) -> dict[str, float]:
    """sarcokit.spark.evaluate on spark.read.parquet, written with df.write.parquet."""
    from pyspark.sql import SparkSession

    import sarcokit.spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("sarcokit-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "4g")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        start = time.perf_counter()
        result = sarcokit.spark.evaluate(spark.read.parquet(str(source)))
        built = time.perf_counter() - start
        result.write.mode("overwrite").parquet(str(target))
        seconds = time.perf_counter() - start
        rows_out = spark.read.parquet(str(target)).count()
    finally:
        spark.stop()
    return {"seconds": seconds, "build": built, "rows_out": rows_out}


# CPU seconds (user + system, all threads, after the imports) and peak RSS of the run itself:
# VmHWM, not getrusage, whose ru_maxrss keeps this benchmark's own size from before the exec.
FILE_CHILD = """
import json, os, sys, time
from pathlib import Path
from sarcokit.cohort.run import run_cohort
start, cpu = time.perf_counter(), sum(os.times()[:2])
def usage():
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    return {"seconds": time.perf_counter() - start, "cpu": sum(os.times()[:2]) - cpu,
            "peak_mb": peak / 1024}
try:
    run = run_cohort([Path(sys.argv[1])], Path(sys.argv[2]))
except Exception as error:  # the old code stops on a dirty cell: record how
    print(json.dumps(usage() | {"error": str(error)[:200]}))
else:
    flow = run.flow
    print(json.dumps(usage() | {"read": flow.rows_read, "scored": flow.rows_scored,
                                "rejected": flow.rows_rejected}))
"""
DIRTY = ("NA", "abc", "17.5 kg", "-999", "n/a")
DIRTY_COLUMNS = (
    "height_cm",
    "weight_kg",
    "grip_kg",
    "gait_speed_m_s",
    "chair_stand_5x_s",
    "calf_cm",
)


def write_csv(path: Path, rows: int, dirty: float, seed: int = 7) -> float:
    """The synthetic cohort as CSV; `dirty` is the share of cells replaced in DIRTY_COLUMNS."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    with path.open("wb") as stream:
        for first in range(0, rows, 1_000_000):
            size = min(1_000_000, rows - first)
            frame = generate(size, seed=seed + first, first_id=first)
            if dirty:
                replaced = []
                for column in DIRTY_COLUMNS:
                    hit = pl.Series(rng.random(size) < dirty)
                    token = pl.Series(rng.choice(DIRTY, size))
                    text = frame[column].cast(pl.String)
                    replaced.append(
                        pl.select(pl.when(hit).then(token).otherwise(text))
                        .to_series()
                        .alias(column)
                    )
                frame = frame.with_columns(replaced)
            frame.write_csv(stream, include_header=first == 0)
    return time.perf_counter() - start


def cohort_in_child(source: Path, target: Path, src: str | None) -> dict[str, Any]:
    """run_cohort on a file in a child process; `src` puts another commit's code first."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    done = subprocess.run(
        [sys.executable, "-c", FILE_CHILD, str(source), str(target)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def machine() -> str:
    """Cores, RAM, CPU model and library versions."""
    import duckdb
    import narwhals
    import pandas
    import pyspark

    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
            model,
        )
    ram = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        ram = f"{kb / 1024**2:.1f} GiB"
    return (
        f"{os.cpu_count()} cores ({model}, {platform.machine()}), {ram} RAM, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"Polars {pl.__version__}, Narwhals {narwhals.__version__}, DuckDB {duckdb.__version__}, "
        f"PySpark {pyspark.__version__}, pandas {pandas.__version__}, numpy {np.__version__}; "
        f"load average before the run {os.getloadavg()[0]:.2f}"
    )


@contextlib.contextmanager
def scratch(parent: str | None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sarcokit-bench-", dir=parent) as directory:
        yield Path(directory)


def _fmt_rows(rows: int) -> str:
    return f"{rows:,}"


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="(a) in-memory rows")
    parser.add_argument("--repeats", type=int, default=3, help="(a) runs; the median is reported")
    parser.add_argument("--naive-rows", type=int, default=200_000, help="(b) rows")
    parser.add_argument("--stream-rows", type=int, default=30_000_000, help="(c) Parquet rows")
    parser.add_argument("--chunk-rows", type=int, default=2_000_000, help="(c) rows per chunk")
    parser.add_argument("--stream-engine", default="default", help="(c) sink_parquet engine")
    parser.add_argument("--duckdb-rows", type=int, default=10_000_000, help="(d) DuckDB rows")
    parser.add_argument("--spark-rows", type=int, default=1_000_000, help="(d) Spark rows")
    parser.add_argument("--file-rows", type=int, default=10_000_000, help="(e, f) CSV rows")
    parser.add_argument("--file-repeats", type=int, default=2, help="(e) runs of each code")
    parser.add_argument("--baseline-src", default=None, help="(e) src folder of the old code")
    parser.add_argument("--tmpdir", default=None, help="where the temporary files go")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.naive_rows, args.stream_rows = 200_000, 5_000, 1_000_000
        args.chunk_rows, args.duckdb_rows, args.spark_rows = 250_000, 200_000, 50_000
        args.file_rows = 200_000

    print(f"date: {datetime.date.today().isoformat()}")
    print(f"machine: {machine()}")
    table: list[tuple[str, str, str, str, str]] = []

    # (a) in memory
    if args.rows:
        start = time.perf_counter()
        frame = generate(args.rows)
        generated = time.perf_counter() - start
        print(f"(a) generated {_fmt_rows(args.rows)} rows in {generated:.1f} s")
        result = sarcokit.evaluate(frame)  # warm-up: compiles and caches the stages
        invalid = result["invalid_fields"].is_not_null().sum()
        print(f"(a) rows rejected by validation (unit slips): {invalid:,}")
        del result
        seconds, times = median_seconds(lambda: sarcokit.evaluate(frame), args.repeats)
        print("(a) runs: " + ", ".join(f"{t:.2f} s" for t in times))
        table.append(
            (
                f"(a) `evaluate(frame)`, Polars in memory, {_fmt_rows(args.rows)} rows, "
                f"median of {args.repeats}",
                f"{seconds:.2f} s",
                f"{args.rows / seconds:,.0f}",
                "≤ 2 s",
                "met" if seconds <= 2 else "missed",
            )
        )
        del frame

    # (b) naive pandas apply vs sarcokit on the same rows
    if args.naive_rows:
        frame = generate(args.naive_rows, seed=2)
        pandas_frame = frame.to_pandas()
        check = min(1_000, args.naive_rows)
        expected = sarcokit.evaluate(frame.head(check))
        baseline = naive_evaluate(pandas_frame.head(check))
        agreement = {}
        for definition_id in NAIVE_IDS:
            column = f"{definition_id}_category"
            ours = expected[column].to_list()
            theirs = [None if v is None else v for v in baseline[column].tolist()]
            agreement[definition_id] = sum(a == b for a, b in zip(ours, theirs, strict=True))
        overall = sum(agreement.values()) / (check * len(NAIVE_IDS))
        print(
            f"(b) naive vs sarcokit categories, first {check:,} rows: "
            + ", ".join(f"{k} {v / check:.1%}" for k, v in agreement.items())
        )
        start = time.perf_counter()
        naive_evaluate(pandas_frame)
        naive_seconds = time.perf_counter() - start
        ours_seconds, _ = median_seconds(lambda: sarcokit.evaluate(frame), 3)
        with_conversion, _ = median_seconds(
            lambda: sarcokit.evaluate(pl.from_pandas(pandas_frame)), 3
        )
        ratio = naive_seconds / ours_seconds
        ratio_conversion = naive_seconds / with_conversion
        print(
            f"(b) naive {naive_seconds:.2f} s; sarcokit {ours_seconds:.3f} s "
            f"({with_conversion:.3f} s from the pandas frame, conversion included)"
        )
        rows = _fmt_rows(args.naive_rows)
        table.append(
            (
                f"(b) pandas `apply(axis=1)` + plain-Python rules, {rows} rows (1 run)",
                f"{naive_seconds:.2f} s",
                f"{args.naive_rows / naive_seconds:,.0f}",
                "",
                f"agrees with sarcokit on {overall:.1%} of categories (first {check:,} rows)",
            )
        )
        table.append(
            (
                f"(b) `evaluate(frame)` on the same {rows} rows, median of 3 "
                f"(from the pandas frame incl. `pl.from_pandas`: {with_conversion:.3f} s)",
                f"{ours_seconds:.3f} s",
                f"{args.naive_rows / ours_seconds:,.0f}",
                "≥ 100× faster",
                f"{ratio:,.0f}× ({ratio_conversion:,.0f}× incl. conversion): "
                + ("met" if ratio >= 100 else "missed"),
            )
        )
        del frame, pandas_frame

    with scratch(args.tmpdir) as directory:
        # (c) streaming Parquet in a child process
        source = directory / "cohort.parquet"
        if args.stream_rows:
            written = write_parquet(source, args.stream_rows, args.chunk_rows, seed=100)
            size = source.stat().st_size / 1e9
            print(
                f"(c) wrote {_fmt_rows(args.stream_rows)} rows ({size:.2f} GB) in {written:.1f} s"
            )
            stream = stream_in_child(source, directory / "result.parquet", args.stream_engine)
            print(f"(c) {json.dumps(stream)}")
            peak_gb = stream["children_maxrss_kb"] * 1024 / 1e9
            assert stream["rows_out"] == args.stream_rows
            table.append(
                (
                    f"(c) `evaluate(pl.scan_parquet(…)).sink_parquet(…)`, "
                    f"{_fmt_rows(args.stream_rows)} rows, child process, 1 run",
                    f"{stream['seconds']:.1f} s; peak RSS {peak_gb:.2f} GB",
                    f"{args.stream_rows / stream['seconds']:,.0f}",
                    "peak RSS ≤ 2 GB",
                    "met" if peak_gb <= 2 else "missed",
                )
            )
            (directory / "result.parquet").unlink()

        # (d) DuckDB and Spark, for the record
        for name, rows, run in (
            ("DuckDB", args.duckdb_rows, duckdb_rate),
            ("Spark local[2]", args.spark_rows, spark_rate),
        ):
            if not rows:
                continue
            path = source
            if not args.stream_rows or rows != args.stream_rows:
                path = directory / f"cohort_{rows}.parquet"
                write_parquet(path, rows, args.chunk_rows, seed=100)
            target = directory / f"{name.split()[0].lower()}_result.parquet"
            measured = run(path, target)
            assert measured["rows_out"] == rows
            print(f"(d) {name}: {json.dumps(measured)}")
            table.append(
                (
                    f"(d) {name}: evaluate on Parquet → Parquet, {_fmt_rows(rows)} rows, 1 run "
                    f"(building the query: {measured['build']:.1f} s)",
                    f"{measured['seconds']:.1f} s",
                    f"{rows / measured['seconds']:,.0f}",
                    "for the record",
                    "",
                )
            )

        # (e) and (f): the cohort command on CSV files, clean and dirty
        if args.file_rows:
            files(args, directory, table)

    print()
    print("| measure | time | rows/s | target | result |")
    print("|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")


def files(
    args: argparse.Namespace, directory: Path, table: list[tuple[str, str, str, str, str]]
) -> None:
    """(e) clean CSV, new code against --baseline-src, alternately; (f) 1% dirty cells."""
    rows = _fmt_rows(args.file_rows)
    clean, dirty = directory / "clean.csv", directory / "dirty.csv"
    print(
        f"(e) wrote {rows} clean rows in {write_csv(clean, args.file_rows, 0.0):.1f} s "
        f"({clean.stat().st_size / 1e9:.2f} GB)"
    )
    print(
        f"(f) wrote {rows} rows, 1% dirty cells, in {write_csv(dirty, args.file_rows, 0.01):.1f} s"
    )
    codes = [("new", None)] + ([("old", args.baseline_src)] if args.baseline_src else [])
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in codes}
    for repeat in range(args.file_repeats):
        for name, src in codes if repeat % 2 == 0 else list(reversed(codes)):
            load = os.getloadavg()[0]
            result = cohort_in_child(clean, directory / f"{name}.parquet", src)
            print(
                f"(e) {name} code, run {repeat + 1}: {json.dumps(result)} "
                f"(load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"
            )
            runs[name].append(result)

    def medians(name: str) -> tuple[float, str]:
        """The median wall time, and the medians of CPU time and peak RSS as words."""
        done = runs[name]
        wall = statistics.median(r["seconds"] for r in done)
        cpu = statistics.median(r.get("cpu", math.nan) for r in done)
        peak = statistics.median(r.get("peak_mb", math.nan) for r in done)
        return wall, f"CPU {cpu:.1f} s, peak RSS {peak:,.0f} MB"

    new, new_usage = medians("new")
    result_text = new_usage
    if "old" in runs:
        old, old_usage = medians("old")
        table.append(
            (
                f"(e) `sarcokit cohort` on a clean CSV, {rows} rows, code before issue 10, "
                f"median of {args.file_repeats}",
                f"{old:.1f} s",
                f"{args.file_rows / old:,.0f}",
                "",
                old_usage,
            )
        )
        verdict = "met" if new <= old else "missed"
        result_text = f"{new / old:.2f}× the old time: {verdict}; {new_usage}"
    table.append(
        (
            f"(e) the same with this code, median of {args.file_repeats} (alternating)",
            f"{new:.1f} s",
            f"{args.file_rows / new:,.0f}",
            "≤ old time",
            result_text,
        )
    )
    measured = cohort_in_child(dirty, directory / "dirty.parquet", None)
    print(f"(f) new code: {json.dumps(measured)}")
    if args.baseline_src:
        before = cohort_in_child(dirty, directory / "dirty_old.parquet", args.baseline_src)
        print(f"(f) old code: {json.dumps(before)}")
    table.append(
        (
            f"(f) `sarcokit cohort` on a CSV with 1% dirty cells, {rows} rows, 1 run",
            f"{measured['seconds']:.1f} s",
            f"{args.file_rows / measured['seconds']:,.0f}",
            "measured",
            f"scored {measured.get('scored', 0):,}, rejected {measured.get('rejected', 0):,}; "
            f"CPU {measured.get('cpu', math.nan):.1f} s, "
            f"peak RSS {measured.get('peak_mb', math.nan):,.0f} MB",
        )
    )


if __name__ == "__main__":
    main()
