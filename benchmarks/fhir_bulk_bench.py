"""FHIR Bulk Data benchmark: a Bulk Data export of 1,000,000 patients read into subject records.

Run: .venv/bin/python benchmarks/fhir_bulk_bench.py                 (1,000,000 patients)
     .venv/bin/python benchmarks/fhir_bulk_bench.py --patients 20000 (a quick check)

The export is made from the cohort benchmark's synthetic cohort (`cohort_bench.generate`, see
its docstring for the distributions and missingness): per patient a Patient, one Observation per
measured value (grip of the right and of the left hand, the left 5% weaker; gait speed; five-times
chair stand; SPPB; calf; ASM by DXA where the method is DXA; height in cm; weight in kg, 10% of
them in [lb_av]), 5% of observations dated outside their look-back window, 1% entered-in-error,
and one SARC-F QuestionnaireResponse. Written by Polars as NDJSON (`Patient.ndjson`,
`Observation.ndjson`, `QuestionnaireResponse.ndjson`) into a temporary folder removed at the end.

Measured, in a child process each (so the peak RSS is that step's alone):
(a) `sarcokit.fhir.bulk.read_bulk(export).records.sink_parquet(...)` and the ignored
    observations sunk beside: the whole FHIR read; observations and patients per second, peak RSS.
(b) For the speed class: `sarcokit.evaluate(pl.scan_parquet(records)).sink_parquet(...)` on the
    records (a) wrote: the cohort's Parquet path on the same patients, in the same run.
Medians of --repeat runs. Prints the machine and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from cohort_bench import generate

from sarcokit.screening import sarc_f_items

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PROJECT = "http://sarcokit.org/fhir/CodeSystem/sarcokit"
AS_OF = "2026-12-01"

# (source column, code system, code, UCUM unit, scale from the source column's unit)
MEASUREMENTS = [
    ("grip_kg", LOINC, "83174-3", "kgf", 1.0),
    ("grip_left", LOINC, "83173-5", "kgf", 1.0),
    ("gait_speed_m_s", LOINC, "83172-7", "m/s", 1.0),
    ("chair_stand_5x_s", PROJECT, "chair-stand-5x", "s", 1.0),
    ("sppb", PROJECT, "sppb-total", "{score}", 1.0),
    ("calf_cm", PROJECT, "calf-circumference", "cm", 1.0),
    ("asm_dxa", PROJECT, "asm-dxa", "kg", 1.0),
    ("height_cm", LOINC, "8302-2", "cm", 1.0),
    ("weight_kg", LOINC, "29463-7", "kg", 1.0),
]


def _observations(cohort: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    frames = []
    n = cohort.height
    for column, system, code, unit, scale in MEASUREMENTS:
        values = cohort[column].cast(pl.Float64) * scale
        values = values.fill_nan(None)
        units = pl.Series([unit] * n)
        if column == "weight_kg":
            # 10% of weights recorded in pounds.
            pounds = rng.random(n) < 0.1
            values = pl.Series(
                np.where(pounds, values.to_numpy() / 0.45359237, values.to_numpy())
            ).fill_nan(None)
            units = pl.Series(np.where(pounds, "[lb_av]", unit))
        days = np.where(rng.random(n) < 0.05, 800, rng.integers(0, 60, n))
        status = np.where(rng.random(n) < 0.01, "entered-in-error", "final")
        frame = pl.DataFrame(
            {
                "id": cohort["id"] + f"-{code}",
                "patient": cohort["id"],
                "value": values,
                "unit": units,
                "days": days,
                "status": status,
            }
        ).filter(pl.col("value").is_not_null())
        frames.append(
            frame.select(
                pl.lit("Observation").alias("resourceType"),
                "id",
                "status",
                pl.struct(
                    pl.concat_list(
                        pl.struct(pl.lit(system).alias("system"), pl.lit(code).alias("code"))
                    ).alias("coding")
                ).alias("code"),
                pl.struct(pl.concat_str(pl.lit("Patient/"), "patient").alias("reference")).alias(
                    "subject"
                ),
                (pl.lit(AS_OF).str.to_date() - pl.duration(days=pl.col("days")))
                .cast(pl.String)
                .alias("effectiveDateTime"),
                pl.struct(
                    pl.col("value").round(3).alias("value"),
                    pl.col("unit").alias("unit"),
                    pl.lit(UCUM).alias("system"),
                    pl.col("unit").alias("code"),
                ).alias("valueQuantity"),
            )
        )
    return pl.concat(frames)


def make_export(patients: int, folder: Path) -> int:
    """Write the export; return the number of observations."""
    rng = np.random.default_rng(7)
    cohort = generate(patients, seed=3).with_columns(
        pl.format("p{}", pl.int_range(pl.len())).alias("id")
    )
    cohort = cohort.with_columns(
        (pl.col("grip_kg") * 0.95).round(1).alias("grip_left"),
        pl.when(pl.col("asm_method") == "dxa").then(pl.col("asm_kg")).alias("asm_dxa"),
    )
    born = pl.lit(AS_OF).str.to_date() - pl.duration(days=(pl.col("age") * 365.25).cast(pl.Int64))
    cohort.select(
        pl.lit("Patient").alias("resourceType"),
        "id",
        pl.col("sex").alias("gender"),
        born.cast(pl.String).alias("birthDate"),
    ).write_ndjson(folder / "Patient.ndjson")
    observations = _observations(cohort, rng)
    observations.write_ndjson(folder / "Observation.ndjson")
    items = [
        pl.when(pl.col(item).is_not_null()).then(
            pl.struct(
                pl.lit(item).alias("linkId"),
                pl.concat_list(
                    pl.struct(
                        pl.struct(pl.col(item).cast(pl.String).alias("code")).alias("valueCoding")
                    )
                ).alias("answer"),
            )
        )
        for item in sarc_f_items()
    ]
    cohort.select(
        pl.lit("QuestionnaireResponse").alias("resourceType"),
        pl.concat_str("id", pl.lit("-sarc-f")).alias("id"),
        pl.lit("http://sarcokit.org/fhir/Questionnaire/sarc-f").alias("questionnaire"),
        pl.lit("completed").alias("status"),
        pl.struct(pl.concat_str(pl.lit("Patient/"), "id").alias("reference")).alias("subject"),
        pl.lit("2026-11-20").alias("authored"),
        pl.concat_list(items).list.drop_nulls().alias("item"),
    ).write_ndjson(folder / "QuestionnaireResponse.ndjson")
    return observations.height


READ = """
import sys
from datetime import date
from pathlib import Path
from sarcokit.fhir.bulk import read_bulk
read = read_bulk([Path(sys.argv[1])], date.fromisoformat(sys.argv[2]))
read.records.sink_parquet(sys.argv[3])
read.ignored.sink_parquet(sys.argv[4])
"""
EVALUATE = """
import sys
import polars as pl
import sarcokit
sarcokit.evaluate(pl.scan_parquet(sys.argv[1])).sink_parquet(sys.argv[2])
"""


def _child(code: str, *args: str) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one child process running `code`."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args])
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"child failed with status {status}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    """Make the export, time the read and the evaluation, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sarcokit-fhir-") as tmp:
        folder = Path(tmp) / "export"
        folder.mkdir()
        start = time.perf_counter()
        observations = make_export(args.patients, folder)
        made = time.perf_counter() - start
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        records, ignored, scored = (str(Path(tmp) / n) for n in ("r.parquet", "i.parquet", "s"))
        reads = [_child(READ, str(folder), AS_OF, records, ignored) for _ in range(args.repeat)]
        evals = [_child(EVALUATE, records, scored) for _ in range(args.repeat)]
        left_out = pl.scan_parquet(ignored).group_by("reason").len().collect()
        rows = pl.scan_parquet(records).select(pl.len()).collect().item()
    read_s = statistics.median(t for t, _ in reads)
    eval_s = statistics.median(t for t, _ in evals)
    load = os.getloadavg()
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
        f", Polars {pl.__version__}; load average {load[0]:.2f} after the run"
    )
    print(
        f"Export: {args.patients:,} patients, {observations:,} observations, {size:,.0f} MiB "
        f"NDJSON (made in {made:.1f} s); left out: "
        + json.dumps(dict(left_out.sort("reason").iter_rows()))
    )
    print()
    print(f"| step | median of {args.repeat} | rows/s | peak RSS |")
    print("|---|---|---|---|")
    print(
        f"| (a) read_bulk → records ({rows:,} patients) | {read_s:.1f} s | "
        f"{observations / read_s:,.0f} observations/s ({rows / read_s:,.0f} patients/s) | "
        f"{max(m for _, m in reads):,.0f} MiB |"
    )
    print(
        f"| (b) evaluate(scan_parquet(records)) → Parquet | {eval_s:.1f} s | "
        f"{rows / eval_s:,.0f} patients/s | {max(m for _, m in evals):,.0f} MiB |"
    )
    print(f"\nRatio (a)/(b), same run: {read_s / eval_s:.2f}")


if __name__ == "__main__":
    main()
