"""The rules as SQL against a hand-written query: DuckDB, Spark and PostgreSQL, same run.

Run: .venv/bin/python benchmarks/sql_bench.py --duckdb-rows 10000000 --spark-rows 1000000
Sizes of 0 skip a backend. Prints the machine and a Markdown table of medians.

The input is the synthetic cohort of `cohort_bench.generate`, written to Parquet with several
row groups (so Spark local[2] reads it with both cores). Every measurement is Parquet → Parquet
(PostgreSQL: table → table), and the variants run alternately, so they share the machine's load:

- hand-written: `HAND_AWGS2019`, AWGS 2019 written by hand in SQL (category, sarcopenia and the
  three component states, with the engine's validation of the file's columns and its unknowns),
- emitted, same columns: `sarcokit.sql` for AWGS 2019 narrowed to those columns,
- emitted, everything: `sarcokit.sql` for all definitions, every result column,
- Narwhals (the engine's path before the SQL compiler): `evaluate()` with SQL_BACKENDS off.

The hand-written and the emitted same-column results are checked to be identical. Besides wall
time, the CPU seconds of the process doing the work are measured (DuckDB: this process; Spark
local mode: the driver's JVM, which plans and runs everything), which a shared machine's load
distorts far less. --like-for-like runs only the first two variants. Spark sessions get
sarcokit's settings (`sarcokit.spark.SQL_CONF`), for both queries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
import cohort_bench

import sarcokit
import sarcokit.engine
import sarcokit.sql

COLUMNS = [
    "awgs2019_category",
    "awgs2019_sarcopenia",
    "awgs2019_strength",
    "awgs2019_muscle_quantity",
    "awgs2019_physical_performance",
]

# AWGS 2019 by hand. The file has height in cm, so height_m = round(height_cm × 0.01, 9) as the
# engine converts it; ASMI is rounded at 1e-9 as the engine does. {round} is the dialect's
# round-half-even ({z}: DuckDB's decimals argument). Validation checks the ranges of the
# benchmark file's columns.
HAND_AWGS2019 = """
WITH v AS (
  SELECT id, sex, age, grip_kg, gait_speed_m_s, chair_stand_5x_s, chair_stand_unable, sppb,
    asm_kg, asm_method, height_cm,
    COALESCE((sex IS NOT NULL AND sex NOT IN ('male', 'female'))
    OR (race IS NOT NULL AND race NOT IN ('asian', 'african_american', 'white', 'hispanic'))
    OR age < 18 OR age > 120 OR height_cm < 90 OR height_cm > 250
    OR weight_kg < 20 OR weight_kg > 350 OR grip_kg < 0 OR grip_kg > 100
    OR gait_speed_m_s < 0 OR gait_speed_m_s > 4 OR chair_stand_5x_s < 2
    OR chair_stand_5x_s > 300 OR sppb < 0 OR sppb > 12 OR asm_kg < 3 OR asm_kg > 60
    OR (asm_method IS NOT NULL AND asm_method NOT IN ('dxa', 'bia', 'ct', 'equation'))
    OR calf_cm < 15 OR calf_cm > 70
    OR sarc_f_strength < 0 OR sarc_f_strength > 2
    OR sarc_f_assistance_walking < 0 OR sarc_f_assistance_walking > 2
    OR sarc_f_rise_from_chair < 0 OR sarc_f_rise_from_chair > 2
    OR sarc_f_climb_stairs < 0 OR sarc_f_climb_stairs > 2
    OR sarc_f_falls < 0 OR sarc_f_falls > 2
    OR (msra_hospitalised_last_year IS NOT NULL
        AND msra_hospitalised_last_year NOT IN ('none', 'once', 'more_than_once')), FALSE)
      AS bad
  FROM {table}
),
t AS (
  SELECT id, bad,
    CASE WHEN chair_stand_unable THEN TRUE
         WHEN chair_stand_5x_s >= 12 THEN TRUE WHEN chair_stand_5x_s < 12 THEN FALSE END AS chair,
    CASE WHEN grip_kg IS NULL THEN NULL
         WHEN grip_kg < 18 THEN TRUE WHEN grip_kg >= 28 THEN FALSE
         WHEN sex = 'male' THEN grip_kg < 28 WHEN sex = 'female' THEN FALSE END AS grip,
    gait_speed_m_s < 1.0 AS gait,
    sppb <= 9 AS sppb_low,
    {round}(asm_kg / ({round}(height_cm * 0.01 * 1e9{z}) / 1e9
       * ({round}(height_cm * 0.01 * 1e9{z}) / 1e9)) * 1e9{z}) / 1e9 AS asmi,
    sex, asm_method
  FROM v
),
m AS (
  SELECT id, bad, grip,
    CASE WHEN gait OR sppb_low OR chair THEN TRUE
         WHEN gait IS NOT NULL OR sppb_low IS NOT NULL OR chair IS NOT NULL THEN FALSE
    END AS performance,
    CASE WHEN asm_method = 'ct' OR asmi IS NULL THEN NULL
         WHEN asmi < 5.4 THEN TRUE WHEN asmi >= 7.0 THEN FALSE
         WHEN sex = 'male' THEN TRUE
         WHEN sex = 'female' AND asm_method = 'dxa' THEN FALSE
         WHEN sex = 'female' AND asm_method = 'bia' THEN asmi < 5.7
         WHEN asmi >= 5.7 AND sex = 'female' THEN FALSE
    END AS muscle
  FROM t
)
SELECT id,
  CASE WHEN NOT bad THEN CASE
    WHEN muscle AND grip AND performance THEN 'severe_sarcopenia'
    WHEN muscle AND (grip OR performance) THEN 'sarcopenia'
    WHEN NOT (muscle AND (grip OR performance)) THEN 'no_sarcopenia'
    ELSE 'indeterminate' END END AS awgs2019_category,
  CASE WHEN NOT bad THEN CASE
    WHEN muscle AND (grip OR performance) THEN TRUE
    WHEN NOT (muscle AND (grip OR performance)) THEN FALSE END END AS awgs2019_sarcopenia,
  CASE WHEN NOT bad THEN CASE WHEN grip THEN 'low' WHEN NOT grip THEN 'normal'
    ELSE 'unknown' END END AS awgs2019_strength,
  CASE WHEN NOT bad THEN CASE WHEN muscle THEN 'low' WHEN NOT muscle THEN 'normal'
    ELSE 'unknown' END END AS awgs2019_muscle_quantity,
  CASE WHEN NOT bad THEN CASE WHEN performance THEN 'low' WHEN NOT performance THEN 'normal'
    ELSE 'unknown' END END AS awgs2019_physical_performance
FROM m
"""
# --like-for-like: only the hand-written query and the emitted SQL for the same columns.
LIKE_FOR_LIKE_ONLY = False
ROUND_EVEN = {"duckdb": "ROUND_EVEN", "spark": "BROUND", "postgres": "ROUND"}


def hand_written(dialect: str, table: str) -> str:
    """The hand-written AWGS 2019 query for one dialect."""
    # DuckDB's ROUND_EVEN takes the number of decimals.
    z = ", 0" if dialect == "duckdb" else ""
    return HAND_AWGS2019.format(table=table, round=ROUND_EVEN[dialect], z=z)


def emitted(dialect: str, table: str, present: list[str], narrow: bool) -> str:
    """sarcokit's SQL: AWGS 2019 narrowed to the same columns, or everything."""
    return sarcokit.sql.to_sql(
        ["awgs2019"] if narrow else None,
        dialect,  # type: ignore[arg-type]
        table=table,
        present=present,
        columns=COLUMNS if narrow else None,
    )


def variants(
    run: Callable[[str, str], Callable[[], None]],
    dialect: str,
    present: list[str],
    narwhals: Callable[[], None] | None,
    prefix: str,
) -> dict[str, Callable[[], None]]:
    """The queries compared on one backend (`run` makes a timed job of a query and a name)."""
    chosen = {
        "hand-written, AWGS 2019, 5 columns": run(hand_written(dialect, "cohort"), f"{prefix}hand"),
        "emitted SQL, AWGS 2019, same 5 columns": run(
            emitted(dialect, "cohort", present, True), f"{prefix}narrow"
        ),
    }
    if LIKE_FOR_LIKE_ONLY:
        return chosen
    chosen["emitted SQL, all definitions, every column"] = run(
        emitted(dialect, "cohort", present, False), f"{prefix}all"
    )
    if narwhals is not None:
        chosen["Narwhals path (before), all definitions"] = narwhals
    return chosen


def median(times: list[float]) -> float:
    return statistics.median(times)


# Wall seconds and CPU seconds (where the work's process can be measured) of each variant's runs.
Timings = tuple[dict[str, list[float]], dict[str, list[float]]]


def run_alternately(
    variants: dict[str, Callable[[], Any]], repeats: int, cpu: Callable[[], float] | None = None
) -> Timings:
    """Each variant once per round, rounds repeated: same load for all. `cpu` reads the CPU
    seconds of the process doing the work (less sensitive than wall time to a shared machine)."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu_times: dict[str, list[float]] = {name: [] for name in variants} if cpu else {}
    for _ in range(repeats):
        for name, run in variants.items():
            start, start_cpu = time.perf_counter(), cpu() if cpu else 0.0
            run()
            times[name].append(time.perf_counter() - start)
            if cpu:
                cpu_times[name].append(cpu() - start_cpu)
    return times, cpu_times


def jvm_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds (user + system) of a process so far: the local-mode JVM, all its threads."""

    def read() -> float:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return read


def write_input(directory: Path, rows: int) -> Path:
    source = directory / "cohort.parquet"
    # Eight row groups at least, so Spark splits the file between its cores.
    cohort_bench.generate(rows).write_parquet(source, row_group_size=max(rows // 8, 1))
    return source


def bench_duckdb(directory: Path, source: Path, repeats: int) -> Timings:
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"CREATE VIEW cohort AS SELECT * FROM read_parquet('{source}')")
    present = [c for c in connection.sql("SELECT * FROM cohort").columns]

    def copy(sql: str, name: str) -> Callable[[], None]:
        return lambda: connection.execute(
            f"COPY ({sql}) TO '{directory / name}.parquet' (FORMAT parquet)"
        )

    def narwhals() -> None:
        sarcokit.engine.SQL_BACKENDS = False
        try:
            relation = connection.read_parquet(str(source))
            sarcokit.evaluate(relation).write_parquet(str(directory / "narwhals.parquet"))
        finally:
            sarcokit.engine.SQL_BACKENDS = True

    # DuckDB works in this process's threads.
    chosen = variants(copy, "duckdb", present, narwhals, "")
    times = run_alternately(chosen, repeats, time.process_time)
    check_same(directory / "hand.parquet", directory / "narrow.parquet")
    return times


def check_same(first: Path, second: Path) -> None:
    """Stop unless two results (a Parquet file, or Spark's folder of them) are identical."""
    a = pl.read_parquet(first / "*.parquet" if first.is_dir() else first).sort("id")
    b = pl.read_parquet(second / "*.parquet" if second.is_dir() else second).sort("id")
    if not a.equals(b.select(a.columns)):
        raise SystemExit(f"{first.name} and {second.name} differ: the comparison is void")


def bench_spark(directory: Path, source: Path, repeats: int) -> Timings:
    from pyspark.sql import SparkSession

    import sarcokit.spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("sarcokit-sql-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "4g")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    # The settings sarcokit gives its own sessions and any session it evaluates in (both
    # queries run under them).
    sarcokit.spark.tune_session(spark)
    frame = spark.read.parquet(str(source))
    frame.createOrReplaceTempView("cohort")
    present = frame.columns

    def write(sql: str, name: str) -> Callable[[], None]:
        return lambda: spark.sql(sql).write.mode("overwrite").parquet(str(directory / name))

    def narwhals() -> None:
        sarcokit.engine.SQL_BACKENDS = False
        try:
            result = sarcokit.spark.evaluate(spark.read.parquet(str(source)))
            result.write.mode("overwrite").parquet(str(directory / "spark_narwhals"))
        finally:
            sarcokit.engine.SQL_BACKENDS = True

    try:
        # In local mode the driver's JVM plans and runs everything.
        cpu = jvm_cpu(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
        chosen = variants(write, "spark", present, narwhals, "s_")
        times = run_alternately(chosen, repeats, cpu)
    finally:
        spark.stop()
    check_same(directory / "s_hand", directory / "s_narrow")
    return times


def bench_postgres(source: Path, repeats: int) -> Timings:
    import secrets

    import psycopg

    url = os.environ.get("SARCOKIT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    frame = pl.read_parquet(source)
    types = {pl.Boolean: "BOOLEAN", pl.Int64: "BIGINT", pl.Float64: "DOUBLE PRECISION"}
    schema = f"sarcokit_bench_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
        connection.execute(f'SET search_path TO "{schema}"')
        try:
            columns = ", ".join(
                f'"{n}" {types.get(type(t), "TEXT")}' for n, t in frame.schema.items()
            )
            connection.execute(f"CREATE TABLE cohort ({columns})")
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY cohort ({', '.join(frame.columns)}) FROM STDIN") as copy,
            ):
                for record in frame.iter_rows():
                    copy.write_row(record)
            connection.execute("ANALYZE cohort")

            def create(sql: str) -> Callable[[], None]:
                def run() -> None:
                    connection.execute("DROP TABLE IF EXISTS result")
                    connection.execute(f"CREATE TABLE result AS {sql}")

                return run

            chosen = variants(lambda sql, _: create(sql), "postgres", frame.columns, None, "")
            return run_alternately(chosen, repeats)
        finally:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duckdb-rows", type=int, default=10_000_000)
    parser.add_argument("--spark-rows", type=int, default=1_000_000)
    parser.add_argument("--postgres-rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch", default=None, help="Folder for the temporary files.")
    parser.add_argument(
        "--like-for-like",
        action="store_true",
        help="Only the hand-written and the emitted same-column queries (not all definitions).",
    )
    args = parser.parse_args(argv)
    global LIKE_FOR_LIKE_ONLY
    LIKE_FOR_LIKE_ONLY = args.like_for_like
    print(cohort_bench.machine())
    print(
        "\n| backend | rows | variant | median s | runs | ratio to hand-written "
        "| median CPU s | CPU ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    backends: list[tuple[str, int, Callable[[Path, Path], Timings]]] = [
        ("DuckDB", args.duckdb_rows, lambda d, s: bench_duckdb(d, s, args.repeats)),
        ("Spark local[2]", args.spark_rows, lambda d, s: bench_spark(d, s, args.repeats)),
        ("PostgreSQL", args.postgres_rows, lambda d, s: bench_postgres(s, args.repeats)),
    ]
    for backend, rows, bench in backends:
        if not rows:
            continue
        with tempfile.TemporaryDirectory(prefix="sarcokit-sql-", dir=args.scratch) as name:
            directory = Path(name)
            times, cpu_times = bench(directory, write_input(directory, rows))
        hand = "hand-written, AWGS 2019, 5 columns"
        floor = median(times[hand])
        for variant, runs in times.items():
            shown = ", ".join(f"{t:.2f}" for t in runs)
            cpu = "| |"
            if cpu_times:
                used = median(cpu_times[variant])
                cpu = f"| {used:.2f} | {used / median(cpu_times[hand]):.2f}× |"
            print(
                f"| {backend} | {rows:,} | {variant} | {median(runs):.2f} | {shown} | "
                f"{median(runs) / floor:.2f}× {cpu}",
                flush=True,
            )


if __name__ == "__main__":
    main()
