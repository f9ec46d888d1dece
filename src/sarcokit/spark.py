"""Run sarcokit on a PySpark DataFrame: the same engine, distributed by Spark.

`evaluate` is `sarcokit.evaluate` typed for Spark: it takes a `pyspark.sql.DataFrame` (classic
or Spark Connect) and returns one, with the result columns of the contract (`invalid_fields`,
derived values, screening scores, `<definition>_category` and one column per component).
Nothing is collected to the driver: the rules become Spark column expressions, so the work is
spread over the executors like any other projection. PySpark is imported only when this module
is used; `import sarcokit` never needs it (install it with `pip install 'sarcokit[spark]'`).

With spark-submit, ship sarcokit and its pure-Python dependencies to the executors, for example
as a zip of the installed packages (or install them on every node), and submit a job script::

    pip install --target deps 'sarcokit' && (cd deps && zip -qr ../deps.zip .)
    spark-submit --master yarn --py-files deps.zip job.py \\
        s3://bucket/cohort.parquet s3://bucket/sarcopenia.parquet

where `job.py` is::

    import sys

    from pyspark.sql import SparkSession

    import sarcokit.spark

    spark = SparkSession.builder.appName("sarcokit").getOrCreate()
    cohort = spark.read.parquet(sys.argv[1])
    result = sarcokit.spark.evaluate(cohort, ["ewgsop2", "awgs2019"])
    result.write.mode("overwrite").parquet(sys.argv[2])
    spark.stop()

Polars and Narwhals (sarcokit's own dependencies) are needed on the driver, where the
expressions are built; the executors run only Spark SQL expressions, no Python code.
An `id` column, when present, is carried through so results can be joined back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sarcokit.engine import EstimateAsm
from sarcokit.engine import evaluate as _evaluate

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SQL_CONF", "evaluate", "local_session", "tune_session"]

# Spark SQL settings the compiled rules need to run at speed: {name: (Spark's default, ours)}.
# hugeMethodLimit: whole-stage code generation turns the stages of the rules into one Java
# method of far more than the 8,000 bytes of bytecode HotSpot compiles, so it would run
# interpreted (4× the CPU time of the same rules written by hand, 1 M rows); at 8000 Spark
# generates code per operator for such a plan instead, as its documentation advises on HotSpot.
# excludedRules: a DataFrame made from local rows (`createDataFrame`, as `sarcokit cohort
# --engine spark` makes one) is a LocalRelation, and ConvertToLocalRelation computes a
# projection over one inside the optimizer, on the driver, interpreted: all of the rules for
# every row, 26 s for 20,000 rows against 4.6 s run as a query, and a driver out of memory at
# 100,000. Excluded, the rules run as for any other input.
SQL_CONF: dict[str, tuple[str, str]] = {
    "spark.sql.codegen.hugeMethodLimit": ("65535", "8000"),
    "spark.sql.optimizer.excludedRules": (
        "",
        "org.apache.spark.sql.catalyst.optimizer.ConvertToLocalRelation",
    ),
}


def _spark_dataframe_type() -> type[DataFrame]:
    try:
        from pyspark.sql import DataFrame
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sarcokit.spark needs PySpark; install it with pip install 'sarcokit[spark]'"
        ) from error
    return DataFrame


def evaluate(
    spark_df: DataFrame,
    definitions: Sequence[str] | None = None,
    *,
    estimate_asm: EstimateAsm | None = None,
    keep: Sequence[str] = (),
) -> DataFrame:
    """Apply the definitions (all by default) to every row of a Spark DataFrame.

    Returns a Spark DataFrame with one row per input row (in no guaranteed order, as always in
    Spark; keep an `id` column to join results back). Rows whose values fail validation keep
    their place with `invalid_fields` naming the problems and every result null. With
    `estimate_asm="wen2011"`, the Wen 2011 equation stands in where ASM was not measured;
    `keep` names columns to carry through (weights, strata, grouping columns). The session's
    settings in `SQL_CONF` that are still at Spark's defaults are set to sarcokit's (the rules
    compile to code too large for the JVM to optimise otherwise, and over local rows Spark would
    compute them inside its optimizer).

    Raises TypeError when `spark_df` is not a PySpark DataFrame (use `sarcokit.evaluate` for
    Polars, DuckDB and other frames) or `definitions` is a single string.
    """
    dataframe_type = _spark_dataframe_type()
    if not isinstance(spark_df, dataframe_type):
        raise TypeError(
            "sarcokit.spark.evaluate expects a pyspark.sql.DataFrame, got "
            f"{type(spark_df).__module__}.{type(spark_df).__qualname__}; "
            "use sarcokit.evaluate for Polars, pandas, DuckDB and other frames"
        )
    if isinstance(definitions, str):
        raise TypeError(
            f"definitions must be a sequence of definition ids, e.g. [{definitions!r}], "
            "not a single string"
        )
    return _evaluate(spark_df, definitions, estimate_asm=estimate_asm, keep=keep)


def tune_session(session: SparkSession) -> None:
    """Apply `SQL_CONF` to a session, leaving any setting its owner changed from the default."""
    for name, (default, ours) in SQL_CONF.items():
        if session.conf.get(name, default) == default:
            session.conf.set(name, ours)


# Where `sarcokit cohort --engine spark` runs: a cluster's master URL (spark://host:7077, yarn,
# k8s://…); local mode on this machine's cores when unset.
MASTER_VARIABLE = "SARCOKIT_SPARK_MASTER"
# A folder this machine and every node of the cluster see at the same path (a shared file
# system): the cohort tool's rows and results then pass as Parquet files there, not through the
# driver, whose results are limited by spark.driver.maxResultSize.
SHARED_VARIABLE = "SARCOKIT_SPARK_SHARED"


_SIZE_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def byte_size(setting: str, text: str) -> int:
    """Bytes of a Spark size setting's value such as `1g`, `512m`, `100k` or `2048` (bytes)."""
    found = re.fullmatch(r"\s*(\d+)\s*([kmgtp]?)b?\s*", text.lower())
    if found is None:
        raise ValueError(
            f"{setting} = {text!r}; expected a whole number of bytes with an "
            "optional unit (k, m, g, t, p), such as 1g"
        )
    power: int = 1024 ** _SIZE_UNITS[str(found[2])]
    return int(found[1]) * power


def shared_folder() -> Path | None:
    """The folder SARCOKIT_SPARK_SHARED names, or None when it is unset."""
    import os

    value = os.environ.get(SHARED_VARIABLE)
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute() or not path.is_dir():
        raise ValueError(
            f"{SHARED_VARIABLE}={value!r}: expected the absolute path of an existing folder "
            "that this machine and every Spark node see at the same path"
        )
    return path


# How long to wait for a standalone master to accept a connection before the session is
# started: Spark itself retries for a minute and then fails with "Cannot call methods on a
# stopped SparkContext", which does not say that the master was never reached.
MASTER_CONNECT_SECONDS = 5.0


def _unreachable_masters(master: str) -> list[str]:
    """The host:port of each master of a `spark://` URL that accepts no connection (all of
    them listed only when none does: with several masters one answering is enough)."""
    import socket

    if not master.startswith("spark://"):
        return []  # local, yarn, k8s://…: Spark finds those itself
    addresses = master.removeprefix("spark://").split(",")
    failed = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            # An IPv6 host is written in brackets (spark://[::1]:7077).
            where = (host.removeprefix("[").removesuffix("]"), int(port))
            with socket.create_connection(where, timeout=MASTER_CONNECT_SECONDS):
                return []
        except (OSError, ValueError) as error:
            failed.append(f"{address} ({error})")
    return failed


def local_session() -> SparkSession:
    """The Spark session for `sarcokit cohort --engine spark`: SARCOKIT_SPARK_MASTER or local.

    Raises ValueError, naming SARCOKIT_SPARK_MASTER and its value, when a standalone master
    cannot be reached or Spark cannot start a session on the master named.
    """
    _spark_dataframe_type()
    import os

    from pyspark.sql import SparkSession

    given = os.environ.get(MASTER_VARIABLE)
    master = given or "local[*]"
    named = f"{MASTER_VARIABLE}={given!r}" if given else master
    if failed := _unreachable_masters(master):
        raise ValueError(
            f"--engine spark: {named}: no Spark master answers at {', '.join(failed)}; "
            "start the master, or name one this machine can reach"
        )
    builder = (
        SparkSession.builder.master(master)
        .appName("sarcokit")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # Local rows reach the executors as Arrow batches through the JVM: no Python worker is
        # needed on a cluster's nodes.
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    for name, (_, ours) in SQL_CONF.items():
        builder = builder.config(name, ours)
    try:
        return builder.getOrCreate()
    except Exception as error:  # Py4J's and Spark's error types depend on the version and mode
        # A Java error comes as "An error occurred while calling …" and then ": <the Java
        # exception>" and its stack: that second line says what happened.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        java = [line.removeprefix(": ") for line in lines if line.startswith(": ")]
        said = (java or lines or [type(error).__name__])[0]
        raise ValueError(
            f"--engine spark: Spark could not start a session on {named}: {said}"
        ) from None
