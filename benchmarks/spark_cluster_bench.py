"""Spark standalone cluster scaling: the same sarcokit job with 1 worker and with 2 workers.

Run: .venv/bin/python benchmarks/spark_cluster_bench.py --rows 1000000 --repeats 3
Prints the machine and a Markdown table: medians, rows/s and the 2-worker / 1-worker ratio.

Two standalone clusters run side by side on loopback (`tests/spark_cluster.py`, the code the
cluster test uses: a master and its workers started with Spark's own `spark-class`), one with
1 worker and one with 2 workers, each worker offering --cores cores (1 by default). The
rounds alternate between them, so both share the machine's load. Each run is one application
(its own executors, started before the clock starts) that reads the synthetic cohort of
`cohort_bench.generate` from Parquet (16 row groups, so every executor core gets splits),
applies `sarcokit.spark.evaluate` (the compiled SQL) and writes Parquet. Planning on the
driver (`spark.sql` and the physical plan) and the distributed work are timed apart: only the
latter can scale with workers. Every run's output is checked to have one row per input row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
import cohort_bench

from spark_cluster import Cluster, standalone_cluster


def run_job(
    cluster: Cluster, workers: int, source: Path, target: Path, definitions: list[str] | None
) -> tuple[float, float]:
    """One application on the cluster: (seconds planning on the driver, seconds running)."""
    from pyspark.sql import SparkSession

    import sarcokit.spark

    spark = (
        SparkSession.builder.master(cluster.master)
        .appName("sarcokit-cluster-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.executor.memory", "900m")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    try:
        spark.sparkContext.setLogLevel("ERROR")
        # The executors start with the application; wait for them before the clock starts.
        deadline = time.monotonic() + 120
        # The driver counts itself among the block managers.
        while spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1 < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"the executors of {cluster.master} did not start")
            time.sleep(0.2)
        start = time.perf_counter()
        result = sarcokit.spark.evaluate(spark.read.parquet(str(source)), definitions)
        result._jdf.queryExecution().executedPlan()
        planned = time.perf_counter()
        result.write.mode("overwrite").parquet(str(target))
        done = time.perf_counter()
    finally:
        spark.stop()
    return planned - start, done - planned


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=1, help="Cores each worker offers.")
    parser.add_argument(
        "--definitions", default="", help="Comma-separated definition ids (all when empty)."
    )
    parser.add_argument("--scratch", default=None, help="Folder for the temporary files.")
    args = parser.parse_args(argv)
    definitions = [d for d in args.definitions.split(",") if d] or None
    print(cohort_bench.machine())
    with tempfile.TemporaryDirectory(prefix="sarcokit-cluster-", dir=args.scratch) as name:
        directory = Path(name)
        source = directory / "cohort.parquet"
        cohort_bench.generate(args.rows).write_parquet(
            source, row_group_size=max(args.rows // 16, 1)
        )
        times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        with ExitStack() as stack:
            clusters = {
                workers: stack.enter_context(
                    standalone_cluster(workers, directory / f"cluster{workers}", args.cores)
                )
                for workers in times
            }
            # The driver (this process's JVM) must name itself 127.0.0.1 like the clusters.
            os.environ.update(clusters[1].driver_env)
            for _ in range(args.repeats):
                for workers, cluster in clusters.items():
                    target = directory / f"result{workers}"
                    times[workers].append(run_job(cluster, workers, source, target, definitions))
                    written = pl.scan_parquet(target / "*.parquet").select(pl.len()).collect()
                    if written.item() != args.rows:
                        raise SystemExit(f"{workers} worker(s) wrote {written.item()} rows")
    print(
        f"\nsarcokit.spark.evaluate, {', '.join(definitions) if definitions else 'all definitions'}"
        f", Parquet → Parquet, {args.rows:,} rows, {args.cores} core(s) per worker\n"
    )
    print("| workers | plan s (median) | run s (median) | runs (s) | rows/s (run) | scaling |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(run for _, run in times[1])
    for workers, runs in times.items():
        plan = statistics.median(p for p, _ in runs)
        run = statistics.median(r for _, r in runs)
        shown = ", ".join(f"{r:.2f}" for _, r in runs)
        print(
            f"| {workers} | {plan:.2f} | {run:.2f} | {shown} | {args.rows / run:,.0f} | "
            f"{base / run:.2f}× |",
            flush=True,
        )


if __name__ == "__main__":
    main()
