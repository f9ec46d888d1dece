"""Throughput of the engine: a frame of synthetic subjects, and single-record latency.

Run: .venv/bin/python benchmarks/engine_bench.py [rows]. Prints a Markdown table of medians.
The synthetic cohort draws sex, age, height, weight, grip, gait speed, chair-stand time, SPPB,
ASM (DXA or BIA), calf circumference and SARC-F items independently from plausible ranges, with
10% of each measurement missing; it measures speed, not clinical realism.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import polars as pl

import sarcokit
from sarcokit import api
from sarcokit.fields import parse_record
from sarcokit.screening import sarc_f_items


def cohort(rows: int, seed: int = 1) -> pl.DataFrame:
    """A synthetic cohort with missing values."""
    rng = np.random.default_rng(seed)

    frame = pl.DataFrame(
        {
            "sex": rng.choice(["male", "female"], rows),
            "age": rng.uniform(60, 95, rows),
            "height_m": rng.uniform(1.45, 1.90, rows),
            "weight_kg": rng.uniform(40, 110, rows),
            "grip_kg": rng.uniform(8, 50, rows),
            "gait_speed_m_s": rng.uniform(0.3, 1.6, rows),
            "chair_stand_5x_s": rng.uniform(6, 25, rows),
            "sppb": rng.integers(0, 13, rows),
            "asm_kg": rng.uniform(10, 30, rows),
            "asm_method": rng.choice(["dxa", "bia"], rows),
            "calf_cm": rng.uniform(25, 42, rows),
            **{item: rng.integers(0, 3, rows) for item in sarc_f_items()},
        }
    )
    mask = {c: pl.Series(rng.random(rows) < 0.1) for c in frame.columns if c != "sex"}
    return frame.with_columns(
        pl.when(mask[c]).then(None).otherwise(pl.col(c)).alias(c) for c in mask
    )


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of `run()` over repeats."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure and print the table."""
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    frame = cohort(rows)
    frame_s = median_seconds(lambda: sarcokit.evaluate(frame), 5)
    record = {"sex": "female", "age": 78, "grip_kg": 17.5, "gait_speed_m_s": 0.9, "height_cm": 150}
    single_s = median_seconds(lambda: sarcokit.assess(record), 50)
    # A clinic's record (mass by BIA); the first call compiles the pipeline for its fields.
    clinic = {**record, "id": "a", "asm_kg": 12.6, "asm_method": "bia"}
    start = time.perf_counter()
    sarcokit.assess(clinic, definitions=["awgs2019"])
    first_s = time.perf_counter() - start
    one_s = median_seconds(lambda: sarcokit.assess(clinic, definitions=["awgs2019"]), 100)
    all_s = median_seconds(lambda: sarcokit.assess(clinic), 100)
    # The whole contract as the API answers it: reasons rendered to text, every block a dict.
    dict_s = median_seconds(lambda: sarcokit.assess(clinic).to_dict(), 100)
    # The engine alone on the clinic's record, all ten definitions with the explain columns:
    # the plain-Python evaluator (sarcokit.scalar; absent in code before it) and Polars.
    parsed = [parse_record(clinic)]
    polars_s = median_seconds(lambda: sarcokit.evaluate(api._frame(parsed), explain=True), 50)
    try:
        from sarcokit import scalar
    except ImportError:
        scalar_s = None
    else:
        schema = api._frame_schema(parsed)
        scalar_s = median_seconds(
            lambda: scalar.evaluate_rows(parsed, schema, None, explain=True), 500
        )
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}"
    print(f"machine: {machine}, python {platform.python_version()}, polars {pl.__version__}")
    print("| measure | median | rate |")
    print("|---|---|---|")
    what = f"evaluate(), 10 definitions + screening + derived, {rows:,} rows"
    print(f"| {what} | {frame_s:.2f} s | {rows / frame_s:,.0f} rows/s |")
    what = "assess(), one record, 10 definitions with reasons"
    print(f"| {what} | {single_s * 1000:.1f} ms | {1 / single_s:,.0f} records/s |")
    what = "assess(), one clinic record, awgs2019, first call (compiles its field set)"
    print(f"| {what} | {first_s * 1000:.1f} ms | |")
    what = "assess(), one clinic record, awgs2019"
    print(f"| {what} | {one_s * 1000:.1f} ms | {1 / one_s:,.0f} records/s |")
    what = "assess(), one clinic record, 10 definitions"
    print(f"| {what} | {all_s * 1000:.1f} ms | {1 / all_s:,.0f} records/s |")
    what = "assess().to_dict(), one clinic record, 10 definitions"
    print(f"| {what} | {dict_s * 1000:.2f} ms | {1 / dict_s:,.0f} records/s |")
    what = "engine only, clinic record, 10 definitions: Polars one-row frame"
    print(f"| {what} | {polars_s * 1000:.2f} ms | {1 / polars_s:,.0f} records/s |")
    if scalar_s is not None:
        what = "engine only, clinic record, 10 definitions: plain-Python evaluator"
        print(f"| {what} | {scalar_s * 1000:.3f} ms | {1 / scalar_s:,.0f} records/s |")


if __name__ == "__main__":
    main()
