"""FHIR Bulk Data benchmark: a Bulk Data export of 1,000,000 patients read into subject records.

Run: .venv/bin/python benchmarks/fhir_bulk_bench.py                 (1,000,000 patients)
     .venv/bin/python benchmarks/fhir_bulk_bench.py --patients 20000 (a quick check)

The export is made from the cohort benchmark's synthetic cohort (`cohort_bench.generate`, see
its docstring for the distributions and missingness): per patient a Patient, one Observation per
measured value (grip of the right and of the left hand, the left 5% weaker; gait speed; five-times
chair stand; SPPB; calf; ASM by DXA where the method is DXA; height in cm; weight in kg, 10% of
them in [lb_av]), 5% of observations dated outside their look-back window, 1% entered-in-error,
and one SARC-F QuestionnaireResponse. Written line by line with json.dumps as NDJSON
(`Patient.ndjson`, `Observation.ndjson`, `QuestionnaireResponse.ndjson`) into a temporary folder
removed at the end.

Measured, in a child process each (so the peak RSS is that step's alone):
(a) `sarcokit.fhir.bulk.read_bulk(export)`, its records and ignored observations collected in one
    query (`pl.collect_all`) and written to Parquet: the whole FHIR read, as `sarcokit cohort`
    does it; observations and patients per second, peak RSS.
(b) `sarcokit.evaluate(pl.scan_parquet(records)).sink_parquet(...)` on the records (a) wrote:
    the engine alone on the same patients, in the same run.
(c), (d) For the speed class, like for like: `sarcokit cohort export/ --as-of ...` (the FHIR read,
    the scoring and the summary tables, as a user runs it) against `sarcokit cohort
    records.parquet` on the records (a) wrote (the same patients, the same scoring and tables).
Medians of --repeat runs (wall, CPU of all threads, peak RSS). `--export DIR` keeps the export
in DIR, or reuses the one there. Prints the machine and a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
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


def make_export(patients: int, folder: Path) -> int:
    """Write the export line by line (memory stays flat); return the number of observations."""
    rng = np.random.default_rng(7)
    cohort = generate(patients, seed=3)
    as_of = datetime.date.fromisoformat(AS_OF)
    columns = {
        "grip_kg": cohort["grip_kg"].to_numpy(),
        "grip_left": (cohort["grip_kg"] * 0.95).round(1).to_numpy(),
        "gait_speed_m_s": cohort["gait_speed_m_s"].to_numpy(),
        "chair_stand_5x_s": cohort["chair_stand_5x_s"].to_numpy(),
        "sppb": cohort["sppb"].cast(pl.Float64).to_numpy(),
        "calf_cm": cohort["calf_cm"].to_numpy(),
        "asm_dxa": cohort.select(pl.when(pl.col("asm_method") == "dxa").then(pl.col("asm_kg")))
        .to_series()
        .to_numpy(),
        "height_cm": cohort["height_cm"].to_numpy(),
        "weight_kg": cohort["weight_kg"].to_numpy(),
    }
    sex = cohort["sex"].to_list()
    age = cohort["age"].to_numpy()
    sarc_f = {item: cohort[item].to_list() for item in sarc_f_items()}
    old = rng.random((patients, len(MEASUREMENTS))) < 0.05
    wrong = rng.random((patients, len(MEASUREMENTS))) < 0.01
    pounds = rng.random(patients) < 0.1
    ago = rng.integers(0, 60, (patients, len(MEASUREMENTS)))
    count = 0
    with (
        (folder / "Patient.ndjson").open("w") as patient_file,
        (folder / "Observation.ndjson").open("w") as observation_file,
        (folder / "QuestionnaireResponse.ndjson").open("w") as response_file,
    ):
        for i in range(patients):
            pid = f"p{i}"
            born = as_of - datetime.timedelta(days=int(age[i] * 365.25))
            patient = {"resourceType": "Patient", "id": pid, "gender": sex[i],
                       "birthDate": born.isoformat()}  # fmt: skip
            patient_file.write(json.dumps(patient) + "\n")
            for j, (column, system, code, unit, _) in enumerate(MEASUREMENTS):
                value = columns[column][i]
                if value != value:  # NaN: not measured
                    continue
                if column == "weight_kg" and pounds[i]:
                    value, unit = value / 0.45359237, "[lb_av]"
                days = 800 if old[i, j] else int(ago[i, j])
                observation = {
                    "resourceType": "Observation",
                    "id": f"{pid}-{j}",
                    "status": "entered-in-error" if wrong[i, j] else "final",
                    "code": {"coding": [{"system": system, "code": code}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": (as_of - datetime.timedelta(days=days)).isoformat(),
                    "valueQuantity": {"value": round(float(value), 3), "unit": unit,
                                      "system": UCUM, "code": unit},
                }  # fmt: skip
                observation_file.write(json.dumps(observation) + "\n")
                count += 1
            items = [
                {"linkId": item, "answer": [{"valueCoding": {"code": str(scores[i])}}]}
                for item, scores in sarc_f.items()
                if scores[i] is not None
            ]
            response = {
                "resourceType": "QuestionnaireResponse",
                "id": f"{pid}-sarc-f",
                "questionnaire": "http://sarcokit.org/fhir/Questionnaire/sarc-f",
                "status": "completed",
                "subject": {"reference": f"Patient/{pid}"},
                "authored": "2026-11-20",
                "item": items,
            }
            response_file.write(json.dumps(response) + "\n")
    return count


READ = """
import sys
from datetime import date
from pathlib import Path
import polars as pl
from sarcokit.fhir.bulk import read_bulk
read = read_bulk([Path(sys.argv[1])], date.fromisoformat(sys.argv[2]))
records, ignored = pl.collect_all([read.records, read.ignored])
records.write_parquet(sys.argv[3])
ignored.write_parquet(sys.argv[4])
"""
EVALUATE = """
import sys
import polars as pl
import sarcokit
sarcokit.evaluate(pl.scan_parquet(sys.argv[1])).sink_parquet(sys.argv[2])
"""


def _child(code: str, *args: str) -> tuple[float, float, float]:
    """(seconds, CPU seconds of all its threads, peak RSS in MiB) of one child process running
    `code`."""
    return _run([sys.executable, "-c", code, *args])


def _run(command: list[str]) -> tuple[float, float, float]:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{command[:3]} failed with status {status}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _cohort(inputs: str, output: Path, *options: str) -> tuple[float, float, float]:
    """`sarcokit cohort` on `inputs`, as a user runs it (all definitions, the summary tables)."""
    output.mkdir(exist_ok=True)
    sarcokit = str(Path(sys.executable).with_name("sarcokit"))
    return _run([sarcokit, "cohort", inputs, "--output", str(output / "results.parquet"), *options])


def _row(name: str, runs: list[tuple[float, float, float]], rows: int, what: str) -> str:
    wall = statistics.median(t for t, _, _ in runs)
    cpu = statistics.median(c for _, c, _ in runs)
    peak = max(m for _, _, m in runs)
    return (
        f"| {name} | {wall:.1f} s | {cpu:.1f} s | {rows / wall:,.0f} {what}/s | {peak:,.0f} MiB |"
    )


def main() -> None:
    """Make the export (or reuse one), time each step, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--export",
        type=Path,
        help="Folder of an export made by this script with the same --patients (made there and "
        "kept if it holds no Patient.ndjson)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sarcokit-fhir-") as tmp:
        folder = args.export or Path(tmp) / "export"
        folder.mkdir(exist_ok=True)
        made = 0.0
        if not (folder / "Patient.ndjson").is_file():
            start = time.perf_counter()
            make_export(args.patients, folder)
            made = time.perf_counter() - start
        observations = sum(1 for _ in (folder / "Observation.ndjson").open("rb"))
        size = sum(p.stat().st_size for p in folder.glob("*.ndjson")) / 2**20
        records, ignored, scored = (str(Path(tmp) / n) for n in ("r.parquet", "i.parquet", "s"))
        reads = [_child(READ, str(folder), AS_OF, records, ignored) for _ in range(args.repeat)]
        evals = [_child(EVALUATE, records, scored) for _ in range(args.repeat)]
        # Like for like: the cohort tool on the export, and on the same patients' records.
        from_fhir, from_parquet = [], []
        for _ in range(args.repeat):
            from_fhir.append(_cohort(str(folder), Path(tmp) / "c", "--as-of", AS_OF))
            from_parquet.append(_cohort(records, Path(tmp) / "d"))
        left_out = pl.scan_parquet(ignored).group_by("reason").len().collect()
        rows = pl.scan_parquet(records).select(pl.len()).collect().item()
    load = os.getloadavg()
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
        f", Polars {pl.__version__}; load average {load[0]:.2f} after the run"
    )
    print(
        f"Export: {args.patients:,} patients, {observations:,} observations, {size:,.0f} MiB "
        f"NDJSON"
        + (f" (made in {made:.1f} s)" if made else "")
        + "; left out: "
        + json.dumps(dict(left_out.sort("reason").iter_rows()))
    )
    print()
    print(f"| step (median of {args.repeat}) | wall | CPU | rows/s | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    print(_row(f"(a) read_bulk → records ({rows:,} patients)", reads, observations, "observations"))
    print(_row("(b) evaluate(scan_parquet(records)) → Parquet", evals, rows, "patients"))
    print(_row("(c) `sarcokit cohort export/`", from_fhir, rows, "patients"))
    print(
        _row("(d) `sarcokit cohort records.parquet`, same patients", from_parquet, rows, "patients")
    )

    def ratio(
        top: list[tuple[float, float, float]], bottom: list[tuple[float, float, float]]
    ) -> str:
        wall = statistics.median(t for t, _, _ in top) / statistics.median(t for t, _, _ in bottom)
        cpu = statistics.median(c for _, c, _ in top) / statistics.median(c for _, c, _ in bottom)
        return f"{wall:.2f} (CPU {cpu:.2f})"

    print(
        f"\nSame-run ratios: (a)/(b) {ratio(reads, evals)}; "
        f"(c)/(d) {ratio(from_fhir, from_parquet)}"
    )


if __name__ == "__main__":
    main()
