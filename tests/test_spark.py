"""The Spark entry point gives, row for row, what the Polars fast path gives.

PySpark and Java are required: this module fails (never skips) without them, so that CI
proves the Spark path on every run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pyspark.sql import DataFrame, SparkSession  # unconditional: no PySpark must fail, not skip

import sarcokit
import sarcokit.spark

ROWS = 500
IMPLAUSIBLE_HEIGHT_M = 170.0  # centimetres typed into the metres column


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("Java (17 or later) is required for the Spark tests; none found on PATH")
    # Spark runs no Python on the executors here, but if it ever does, use this interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("sarcokit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _with_missing(frame: pl.DataFrame, rng: np.random.Generator, rate: float) -> pl.DataFrame:
    masks = {c: pl.Series(rng.random(frame.height) < rate) for c in frame.columns if c != "id"}
    return frame.with_columns(
        pl.when(masks[c]).then(None).otherwise(pl.col(c)).alias(c) for c in masks
    )


def random_cohort(rows: int, seed: int) -> pl.DataFrame:
    """Subjects with values on and around the cut-offs, missing values and unit slips."""
    rng = np.random.default_rng(seed)
    male = rng.random(rows) < 0.5
    height = np.where(male, rng.normal(1.70, 0.07, rows), rng.normal(1.57, 0.065, rows))

    def items(k: int) -> np.ndarray[Any, Any]:
        return rng.integers(0, k, rows)

    frame = pl.DataFrame(
        {
            "id": [f"s{i:04d}" for i in range(rows)],
            "sex": np.where(male, "male", "female"),
            # From 40: AWGS 2025's not_applicable (< 50) and both of its age bands.
            "age": rng.uniform(40, 95, rows).round(0),
            "height_m": height.round(2),
            "weight_kg": (rng.normal(25, 4, rows) * height**2).round(1),
            # Whole kilograms, tenths of m/s and whole seconds put many values exactly on a
            # cut-off (grip 18 / 26 / 28 kg, gait 0.8 / 1.0 m/s, chair stand 12 / 15 s).
            "grip_kg": np.where(male, rng.normal(32, 8, rows), rng.normal(20, 5, rows)).round(0),
            "gait_speed_m_s": rng.uniform(0.3, 1.6, rows).round(1),
            "chair_stand_5x_s": rng.uniform(6, 25, rows).round(0),
            "chair_stand_unable": rng.random(rows) < 0.05,
            "sppb": items(13),
            "tug_s": rng.uniform(6, 30, rows).round(1),
            "walk_400m_completed": rng.random(rows) < 0.9,
            "walk_400m_time_min": rng.uniform(4, 9, rows).round(1),
            "asm_kg": (
                np.where(male, rng.normal(7.2, 0.9, rows), rng.normal(5.7, 0.8, rows)) * height**2
            ).round(1),
            "asm_method": rng.choice(["dxa", "bia", "ct"], rows, p=[0.45, 0.45, 0.1]),
            "muscle_mass_low": rng.random(rows) < 0.3,
            "calf_cm": np.where(male, rng.normal(35, 3, rows), rng.normal(33, 3, rows)).round(0),
            **{
                item: items(3)
                for item in (
                    "sarc_f_strength",
                    "sarc_f_assistance_walking",
                    "sarc_f_rise_from_chair",
                    "sarc_f_climb_stairs",
                    "sarc_f_falls",
                )
            },
            "msra_hospitalised_last_year": rng.choice(["none", "once", "more_than_once"], rows),
            **{
                item: rng.random(rows) < 0.7
                for item in (
                    "msra_walks_1000m",
                    "msra_three_meals_daily",
                    "msra_dairy_daily",
                    "msra_protein_daily",
                    "msra_weight_loss_over_2kg",
                )
            },
            "muscle_health_concern": rng.random(rows) < 0.3,
            "immobilisation_or_functional_decline": rng.random(rows) < 0.2,
            "dysphagia": rng.random(rows) < 0.1,
            "wasting_condition": rng.random(rows) < 0.1,
            "perceived_weakness": rng.random(rows) < 0.3,
            "weight_loss_6mo_kg": rng.uniform(-2, 5, rows).round(0),
            "finger_ring": rng.choice(["bigger", "just_fits", "smaller"], rows),
            "race": rng.choice(["asian", "white", "african_american", "hispanic"], rows),
            "resistance_ohm": rng.uniform(350, 700, rows).round(0),
            "creatinine_mg_dl": rng.uniform(0.5, 1.6, rows).round(2),
            "cystatin_c_mg_l": rng.uniform(0.7, 1.8, rows).round(2),
        }
    )
    frame = _with_missing(frame, rng, 0.12)
    slip = pl.Series(rng.random(rows) < 0.03)
    return frame.with_columns(
        pl.when(slip).then(IMPLAUSIBLE_HEIGHT_M).otherwise(pl.col("height_m")).alias("height_m"),
        # A few other impossible values: an SPPB above 12 and a 150 kg grip.
        pl.when(pl.col("sppb") == 12).then(13).otherwise(pl.col("sppb")).alias("sppb"),
        pl.when(pl.int_range(rows) % 97 == 5)
        .then(150.0)
        .otherwise(pl.col("grip_kg"))
        .alias("grip_kg"),
    )


def to_spark(session: SparkSession, frame: pl.DataFrame) -> DataFrame:
    # Arrow with classic (non-view) string layout keeps the column types: Int64 stays bigint.
    return session.createDataFrame(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))


def assert_close(got: pl.Series, expected: pl.Series) -> None:
    """Same nulls, and values equal to within 1e-12 relative (a few units in the last place)."""
    assert got.is_null().equals(expected.is_null()), f"{got.name}: nulls differ"
    difference = (got - expected).abs().fill_null(0.0)
    allowed = (expected.abs() * 1e-12).clip(lower_bound=1e-12).fill_null(0.0)
    assert (difference <= allowed).all(), f"{got.name}: values differ beyond rounding"


@pytest.mark.parametrize(
    ("chosen", "estimate_asm", "keep"),
    [
        (None, None, ()),
        (["ewgsop2", "awgs2019", "cn2021", "fnih2014"], "wen2011", ("race", "age")),
    ],
)
def test_spark_matches_polars_row_by_row(
    spark: SparkSession, chosen: list[str] | None, estimate_asm: Any, keep: tuple[str, ...]
) -> None:
    cohort = random_cohort(ROWS, seed=11)
    assert cohort["sex"].n_unique() == 3  # male, female and missing
    assert set(cohort["asm_method"].drop_nulls()) == {"dxa", "bia", "ct"}

    polars_result = sarcokit.evaluate(cohort, chosen, estimate_asm=estimate_asm, keep=keep)
    result = sarcokit.spark.evaluate(
        to_spark(spark, cohort), chosen, estimate_asm=estimate_asm, keep=keep
    )
    assert isinstance(result, DataFrame)
    got = pl.from_arrow(result.toArrow())
    assert isinstance(got, pl.DataFrame)
    got = got.sort("id")
    # Polars labels categories and component states with Enum columns; Spark has no Enum
    # type and returns the same labels as text.
    labels = [n for n, t in polars_result.schema.items() if isinstance(t, pl.Enum | pl.Categorical)]
    assert all(got.schema[name] == pl.String for name in labels)
    expected = polars_result.with_columns(pl.col(labels).cast(pl.String)).sort("id")

    assert got.columns == expected.columns
    assert got.height == cohort.height
    # Everything that is not a float (categories, component states, flags, scores, the
    # validation messages) must be identical; floats too, up to the last bits of equations
    # whose sums Spark and Polars may associate differently.
    floats = [name for name, dtype in expected.schema.items() if dtype.is_float()]
    assert_frame_equal(got.drop(floats), expected.drop(floats), check_dtypes=False)
    for name in floats:
        assert_close(got[name], expected[name])

    # The unit slips are rejected by name, with every result of those rows null.
    slipped = set(cohort.filter(pl.col("height_m") == IMPLAUSIBLE_HEIGHT_M)["id"])
    assert slipped
    for frame in (got, expected):
        rejected = frame.filter(pl.col("id").is_in(slipped))
        assert rejected["invalid_fields"].str.contains(r"\bheight_m\b").all()
        categories = [c for c in frame.columns if c.endswith("_category")]
        assert rejected.select(pl.all_horizontal(pl.col(categories).is_null())).to_series().all()
    accepted = got.filter(pl.col("invalid_fields").is_null())
    assert 0 < accepted.height < got.height
    assert accepted["ewgsop2_category"].null_count() == 0
    assert accepted["ewgsop2_category"].n_unique() >= 3


def test_non_spark_frames_are_refused_with_a_type_error() -> None:
    polars_frame = pl.DataFrame({"sex": ["female"], "grip_kg": [14.0]})
    for frame in (polars_frame, polars_frame.lazy(), polars_frame.to_pandas(), {"a": 1}):
        with pytest.raises(TypeError, match=r"expects a pyspark\.sql\.DataFrame"):
            sarcokit.spark.evaluate(frame)  # type: ignore[arg-type]


def test_a_single_definition_string_is_refused(spark: SparkSession) -> None:
    frame = to_spark(spark, pl.DataFrame({"sex": ["female"], "grip_kg": [14.0]}))
    with pytest.raises(TypeError, match="sequence of definition ids"):
        sarcokit.spark.evaluate(frame, "ewgsop2")


def test_importing_sarcokit_does_not_import_pyspark() -> None:
    code = "import sys, sarcokit; sys.exit('pyspark' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_evaluate_lowers_the_huge_method_limit_unless_its_owner_chose_one(
    spark: SparkSession,
) -> None:
    # 8000 is HotSpot's HugeMethodLimit, the value Spark's documentation of the setting advises.
    name = "spark.sql.codegen.hugeMethodLimit"
    frame = to_spark(spark, pl.DataFrame({"sex": ["female"], "grip_kg": [14.0]}))
    spark.conf.unset(name)
    try:
        sarcokit.spark.evaluate(frame, ["ewgsop2"])
        assert spark.conf.get(name) == "8000"
        spark.conf.set(name, "20000")
        sarcokit.spark.evaluate(frame, ["ewgsop2"])
        assert spark.conf.get(name) == "20000"
    finally:
        spark.conf.unset(name)


def test_local_rows_are_scored_by_the_query_not_inside_the_optimizer(spark: SparkSession) -> None:
    # A DataFrame made from local rows (as `sarcokit cohort --engine spark` makes one) is a
    # LocalRelation, and Spark's ConvertToLocalRelation would compute every rule for every row
    # inside the optimizer, on the driver, interpreted: 26 s for 20,000 rows and a driver out of
    # memory at 100,000. evaluate excludes that rule unless the session's owner set the list.
    name = "spark.sql.optimizer.excludedRules"
    spark.conf.unset(name)
    try:
        result = sarcokit.spark.evaluate(to_spark(spark, random_cohort(50, seed=3)))
        plan = result._jdf.queryExecution().optimizedPlan()
        assert plan.getClass().getSimpleName() != "LocalRelation"
        assert (
            spark.conf.get(name) == "org.apache.spark.sql.catalyst.optimizer.ConvertToLocalRelation"
        )
    finally:
        spark.conf.unset(name)


def test_a_shared_folder_that_is_not_one_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sarcokit.spark import SHARED_VARIABLE, shared_folder

    monkeypatch.delenv(SHARED_VARIABLE, raising=False)
    assert shared_folder() is None
    monkeypatch.setenv(SHARED_VARIABLE, str(tmp_path))
    assert shared_folder() == tmp_path
    for wrong in (str(tmp_path / "missing"), "relative/folder"):
        monkeypatch.setenv(SHARED_VARIABLE, wrong)
        with pytest.raises(ValueError, match=f"{SHARED_VARIABLE}='{wrong}': expected the absolute"):
            shared_folder()


def test_spark_size_settings_are_read_as_spark_reads_them() -> None:
    from sarcokit.spark import byte_size

    # Spark's units are powers of 1024; a number alone is bytes; 0 is no limit.
    cases = {"1g": 1 << 30, "512m": 512 << 20, "100k": 100 << 10, "2048": 2048, "1kb": 1024,
             "4T": 4 << 40, "0": 0, " 3 m ": 3 << 20}  # fmt: skip
    assert {text: byte_size("spark.driver.maxResultSize", text) for text in cases} == cases
    for wrong in ("1.5g", "g", "-1m", "10 gigabytes"):
        with pytest.raises(ValueError, match=f"maxResultSize = '{wrong}'; expected a whole"):
            byte_size("spark.driver.maxResultSize", wrong)


def test_results_through_the_driver_are_collected_in_slices_under_the_limit() -> None:
    from sarcokit.cohort.run import MIN_SLICE_ROWS, _in_slices

    table = pl.DataFrame({"row": range(10_000)})
    asked: list[int] = []

    def score(start: int, length: int) -> pl.DataFrame:
        part = table.slice(start, length)
        asked.append(part.height)
        # Results of 200 bytes of text per row, each row its own (not one broadcast value).
        return part.with_columns(text=pl.col("row").cast(pl.String).str.pad_start(200, "x"))

    per_row = score(0, table.height).estimated_size() / table.height
    asked.clear()

    limit = int(400 * per_row)  # half of it per slice: 200 rows, below the minimum slice
    scored = pl.concat(list(_in_slices(table.height, score, limit)))
    assert scored["row"].to_list() == list(range(10_000))
    assert asked == [MIN_SLICE_ROWS] * 10
    asked.clear()
    limit = int(6_000 * per_row)  # the first slice from the guess, then 3,000 rows as measured
    scored = pl.concat(list(_in_slices(table.height, score, limit)))
    assert scored["row"].to_list() == list(range(10_000))
    # (Polars' estimate has a small fixed part: within a few rows of 3,000, never over it.)
    assert asked[0] == MIN_SLICE_ROWS and all(2_950 <= n <= 3_000 for n in asked[1:-1]), asked
    assert sum(asked) == 10_000 and max(asked) * per_row <= limit / 2
    asked.clear()
    assert pl.concat(list(_in_slices(table.height, score, 0))).height == 10_000  # 0: no limit
    assert asked == [10_000]
    asked.clear()
    assert pl.concat(list(_in_slices(0, score, limit))).height == 0
    assert asked == [0]


def test_a_master_that_cannot_be_reached_is_refused_at_once_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from sarcokit.spark import MASTER_VARIABLE, _unreachable_masters, local_session

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"spark://127.0.0.1:{port}"
    monkeypatch.setenv(MASTER_VARIABLE, url)
    # Refused before any JVM starts (Spark itself retries for a minute, then says only that
    # its context was stopped).
    with pytest.raises(ValueError, match=f"{MASTER_VARIABLE}='{url}': no Spark master answers"):
        local_session()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        answering = listening.getsockname()[1]
        # With several masters (standby masters), one that answers is enough.
        assert _unreachable_masters(f"spark://127.0.0.1:{port},127.0.0.1:{answering}") == []
        assert len(_unreachable_masters(f"spark://127.0.0.1:{port},127.0.0.1:x")) == 2
        assert _unreachable_masters(f"spark://[::1]:{port},127.0.0.1:{answering}") == []
    assert _unreachable_masters("yarn") == _unreachable_masters("local[2]") == []


def sarcokit_cohort(
    cohort: Path, output: Path, engine: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`sarcokit cohort --engine <engine>` as a user runs it, in its own process."""
    command = [
        str(Path(sys.executable).parent / "sarcokit"),
        "cohort", str(cohort), "--output", str(output), "--engine", engine,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def test_a_master_spark_cannot_use_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    from sarcokit.spark import MASTER_VARIABLE

    cohort = tmp_path / "cohort.csv"
    random_cohort(50, seed=3).write_csv(cohort)
    env = {**os.environ, MASTER_VARIABLE: "nonsense://host"}
    done = sarcokit_cohort(cohort, tmp_path / "out.parquet", "spark", env)
    assert done.returncode == 2, done.stderr[-3000:]
    said = f"Spark could not start a session on {MASTER_VARIABLE}='nonsense://host'"
    assert said in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
