"""`sarcokit cohort --engine spark` on a real standalone Spark cluster (a master and two worker
processes on loopback), not local mode: the results equal the Polars engine's row for row, both
workers ran executors; through the driver the results come back in slices that each fit under
`spark.driver.maxResultSize`, and with a shared folder they need not pass through it at all.
Java and PySpark are required: this fails, never skips, without them.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from sarcokit.spark import SHARED_VARIABLE
from spark_cluster import executors_by_worker, standalone_cluster
from test_spark import random_cohort, sarcokit_cohort

ROWS = 2_000


def _cohort(cohort: Path, output: Path, engine: str, env: dict[str, str]) -> pl.DataFrame:
    done = sarcokit_cohort(cohort, output, engine, env)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return pl.read_parquet(output)


def test_cohort_on_a_two_worker_cluster_equals_polars(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort.csv"
    random_cohort(ROWS, seed=11).write_csv(cohort)
    local = _cohort(cohort, tmp_path / "polars.parquet", "polars", dict(os.environ))
    with standalone_cluster(workers=2, work=tmp_path / "spark") as cluster:
        env = {**os.environ, **cluster.driver_env}
        distributed = _cohort(cohort, tmp_path / "spark.parquet", "spark", env)
        applications = cluster.status().get("completedapps") or cluster.status().get("activeapps")
        # Results larger than the driver may collect in one job (about 1 kB a row: 2 MB) come
        # back in slices of 1,000 rows, each under the limit.
        sliced = _cohort(
            cohort,
            tmp_path / "sliced.parquet",
            "spark",
            {**env, "PYSPARK_SUBMIT_ARGS": "--conf spark.driver.maxResultSize=1500k pyspark-shell"},
        )
        # A limit too small for even the smallest slice: a clear refusal, not a traceback or a
        # hang, and not thousands of jobs.
        small = {
            **env,
            "PYSPARK_SUBMIT_ARGS": "--conf spark.driver.maxResultSize=100k pyspark-shell",
        }
        refused = sarcokit_cohort(cohort, tmp_path / "small.parquet", "spark", small)
        # The same limit with a folder every node shares: rows and results pass as Parquet
        # files there, not through the driver, and the run's files there are removed after it.
        shared = tmp_path / "shared"
        shared.mkdir()
        through_files = _cohort(
            cohort, tmp_path / "shared.parquet", "spark", {**small, SHARED_VARIABLE: str(shared)}
        )
    assert applications, "no application ran on the cluster's master"
    started = executors_by_worker(tmp_path / "spark")
    assert len(started) == 2 and all(n >= 1 for n in started.values()), started
    # Rows with a refused value go to the rejects file; the scored rows are the rest.
    assert distributed.height == local.height > ROWS // 2
    assert_frame_equal(distributed, local)
    assert_frame_equal(sliced, local)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "spark.driver.maxResultSize = 100k" in refused.stderr, refused.stderr[-3000:]
    assert_frame_equal(through_files, local)
    assert list(shared.iterdir()) == []
