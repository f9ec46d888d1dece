"""`sarcokit cohort --engine spark` on a two-worker standalone cluster: through the driver
against a shared folder (SARCOKIT_SPARK_SHARED).

Run: .venv/bin/python benchmarks/spark_cohort_cluster_bench.py --rows 1000000
Prints the machine and a Markdown table: wall time, CPU of the driver's process tree, peak RSS
of the tool's process, exit status and rows/s.

The cluster is the one the tests start (`tests/spark_cluster.py`: a master and two workers, 1
core each, on loopback). The cohort is `cohort_bench.generate` written as CSV, scored as a user
runs the tool; with the default `spark.driver.maxResultSize` (1 GiB) the results of a million
rows do not fit through the driver in one job, so they come back in slices (an earlier version
refused them, exit 2, unless a shared folder was named). The two results, where both exist,
are checked to be equal.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
import cohort_bench

from sarcokit.spark import SHARED_VARIABLE
from spark_cluster import standalone_cluster


def _run(cohort: Path, output: Path, env: dict[str, str]) -> tuple[float, float, float, int]:
    """(seconds, CPU seconds of the tool and its children, peak RSS MiB, exit status)."""
    command = [
        str(Path(sys.executable).with_name("sarcokit")),
        "cohort", str(cohort), "--output", str(output), "--engine", "spark",
    ]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, status >> 8


def main() -> None:
    """Start the cluster, run the tool both ways, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sarcokit-spark-cohort-") as tmp:
        folder = Path(tmp)
        cohort = folder / "cohort.csv"
        cohort_bench.generate(args.rows).write_csv(cohort)
        shared = folder / "shared"
        shared.mkdir()
        rows = []
        with standalone_cluster(workers=2, work=folder / "spark") as cluster:
            env = {**os.environ, **cluster.driver_env}
            env.pop(SHARED_VARIABLE, None)
            driver = _run(cohort, folder / "driver.parquet", env)
            files = _run(cohort, folder / "shared.parquet", {**env, SHARED_VARIABLE: str(shared)})
        for name, (wall, cpu, peak, status) in (
            ("through the driver", driver),
            (f"shared folder ({SHARED_VARIABLE})", files),
        ):
            speed = f"{args.rows / wall:,.0f}" if status in (0, 1) else "—"
            rows.append(
                f"| {name} | {wall:.1f} s | {cpu:.1f} s | {peak:,.0f} MiB | {status} | {speed} |"
            )
        if driver[3] in (0, 1) and files[3] in (0, 1):
            assert_frame_equal(
                pl.read_parquet(folder / "driver.parquet"),
                pl.read_parquet(folder / "shared.parquet"),
            )
        leftover = list(shared.iterdir())
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{args.rows:,} rows, 2 workers of 1 core; files left in the shared folder: {leftover}")
    print("| route | wall | CPU (tool) | peak RSS (tool) | exit | rows/s |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
