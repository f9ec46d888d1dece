"""The emitted SQL gives, column for column, what the Polars engine gives: in DuckDB, in the
local PostgreSQL and in Spark, for every built-in definition and a local criteria file, on a
cohort with missing values and values exactly on every cut-off of the criteria files."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sarcokit
import sarcokit.sql
import test_spark
from sarcokit.definitions import DEFINITION_IDS, definitions, definitions_hash, load_definition
from sarcokit.fields import field_specs
from sarcokit.screening import instruments
from sarcokit.thresholds import Threshold

ROWS = 1_500
EXAMPLE = Path(__file__).parents[1] / "examples" / "local_definition.toml"
POSTGRES_URL = os.environ.get(
    "SARCOKIT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
# Heights with two decimals; a cut-off on a ratio is reached by a numerator with a few decimals
# (5.7 kg/m² at 1.60 m is 14.592 kg), which binary floating point divides to 5.699999999999999.
HEIGHTS = (1.5, 1.55, 1.6, 1.62, 1.7, 1.75, 1.8)


def _thresholds() -> list[Threshold]:
    chosen = [*definitions(None), *definitions((_local_id(),))]
    return [t.threshold for d in chosen for t in d.tests] + [i.test for i in instruments().values()]


def _local_id() -> str:
    return load_definition(EXAMPLE).id


def _random_value(name: str, rng: np.random.Generator) -> Any:
    spec = field_specs()[name]
    if spec.kind == "boolean":
        return bool(rng.random() < 0.4)
    if spec.kind == "category":
        return str(rng.choice(list(spec.values)))
    if spec.kind == "text":
        return None
    low, high = spec.min or 0.0, spec.max if spec.max is not None else 100.0
    if spec.kind == "integer":
        return int(rng.integers(int(low), int(high) + 1))
    return round(float(rng.uniform(low, high)), 1)


def cohort(rows: int, seed: int) -> pl.DataFrame:
    """Every field of the record: random plausible values, a fifth of them missing, values on
    each cut-off, ratios landing on their cut-off, and a few implausible values."""
    rng = np.random.default_rng(seed)
    specs = {n: s for n, s in field_specs().items() if s.kind != "text"}
    data: dict[str, list[Any]] = {
        name: [_random_value(name, rng) for _ in range(rows)] for name in specs
    }
    # Realistic bodies, so the derived values fall near their cut-offs.
    data["sex"] = [str(rng.choice(["male", "female"])) for _ in range(rows)]
    data["age"] = [int(rng.integers(40, 96)) for _ in range(rows)]
    data["height_m"] = [float(rng.choice(HEIGHTS)) for _ in range(rows)]
    data["weight_kg"] = [round(float(rng.uniform(40, 100)), 1) for _ in range(rows)]
    data["asm_kg"] = [round(float(rng.uniform(10, 28)), 2) for _ in range(rows)]
    data["grip_kg"] = [round(float(rng.uniform(8, 50)), 0) for _ in range(rows)]
    data["asm_method"] = [str(rng.choice(["dxa", "bia", "ct", "equation"])) for _ in range(rows)]
    row = 0
    for test in _thresholds():
        for variant in test.variants:
            for step in (0.0, -0.1, 0.1):
                target = Decimal(repr(variant.value)) + Decimal(repr(step))
                row = (row + 7) % rows
                _place(data, test.input, target, variant.sex, row, rng)
                if variant.age_from is not None:
                    data["age"][row] = int(variant.age_from)
                if variant.age_below is not None and rng.random() < 0.5:
                    data["age"][row] = int(variant.age_below) - 1
    frame = pl.DataFrame(data, schema={n: _polars_type(n) for n in data}, strict=False)
    frame = frame.with_columns(pl.Series("id", [f"s{i:05d}" for i in range(rows)]))
    missing = {c: pl.Series(rng.random(rows) < 0.2) for c in frame.columns if c != "id"}
    frame = frame.with_columns(
        pl.when(missing[c]).then(None).otherwise(pl.col(c)).alias(c) for c in missing
    )
    # Unit slips and a value given in two units, which validation rejects by name.
    return frame.with_columns(
        pl.when(pl.int_range(rows) % 53 == 1)
        .then(170.0)
        .otherwise(pl.col("height_m"))
        .alias("height_m"),
        pl.when(pl.int_range(rows) % 61 == 2)
        .then(80.0)
        .otherwise(None)
        .cast(pl.Float64)
        .alias("weight_lb"),
    )


def _polars_type(name: str) -> pl.DataType:
    kind = field_specs()[name].kind
    return {"boolean": pl.Boolean(), "integer": pl.Int64(), "number": pl.Float64()}.get(
        kind, pl.String()
    )


def _place(
    data: dict[str, list[Any]],
    name: str,
    target: Decimal,
    sex: str | None,
    row: int,
    rng: np.random.Generator,
) -> None:
    """Put a value on a cut-off: the field itself, or the inputs of a ratio on it exactly."""
    if sex is not None:
        data["sex"][row] = sex
    height = Decimal(repr(data["height_m"][row]))
    ratios = {
        "asmi_kg_m2": ("asm_kg", height * height),
        "bmi_kg_m2": ("weight_kg", height * height),
        "alm_bmi": ("asm_kg", Decimal(repr(data["weight_kg"][row])) / (height * height)),
        "grip_bmi": ("grip_kg", Decimal(repr(data["weight_kg"][row])) / (height * height)),
    }
    if name in ratios:
        numerator, denominator = ratios[name]
        data[numerator][row] = float(target * denominator)
    elif name in data and field_specs()[name].kind in ("number", "integer"):
        value = float(target)
        data[name][row] = int(value) if field_specs()[name].kind == "integer" else value
    elif name in data and field_specs()[name].kind == "boolean":
        data[name][row] = bool(rng.random() < 0.5)


def expected_result(frame: pl.DataFrame, chosen: list[str] | None) -> pl.DataFrame:
    result = sarcokit.evaluate(frame, chosen)
    labels = [n for n, t in result.schema.items() if isinstance(t, pl.Enum | pl.Categorical)]
    return result.with_columns(pl.col(labels).cast(pl.String)).sort("id")


def assert_same(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Every column identical, floats to the last bit (a division by a number is written as
    Polars computes it, a multiplication by the reciprocal)."""
    got = got.sort("id")
    assert got.columns == expected.columns
    floats = [name for name, dtype in expected.schema.items() if dtype.is_float()]
    assert_frame_equal(got.drop(floats), expected.drop(floats), check_dtypes=False)
    for name in floats:
        a, b = got[name].cast(pl.Float64), expected[name]
        assert a.is_null().equals(b.is_null()), f"{name}: nulls differ"
        differ = (a != b).fill_null(False)
        assert not differ.any(), (
            f"{name}: {a.filter(differ)[:3].to_list()} != {b.filter(differ)[:3].to_list()}"
        )


# The local[2] session of the Spark tests, shared.
spark_session = test_spark.spark

CHOICES = [None, *([d] for d in DEFINITION_IDS)]


@pytest.fixture(scope="module")
def subjects() -> pl.DataFrame:
    frame = cohort(ROWS, seed=5)
    result = sarcokit.evaluate(frame)
    # The cohort exercises what it is meant to: rejected rows, and every kind of answer.
    assert 0 < result["invalid_fields"].null_count() < frame.height
    assert result["ewgsop2_category"].n_unique() >= 5
    assert (result["awgs2025_category"] == "not_applicable").any()
    return frame


@pytest.mark.parametrize("chosen", CHOICES, ids=lambda c: "all" if c is None else c[0])
def test_duckdb_runs_the_sql_like_polars(subjects: pl.DataFrame, chosen: list[str] | None) -> None:
    connection = duckdb.connect()
    connection.register("subjects", subjects.to_arrow())
    sql = sarcokit.sql.to_sql(chosen, "duckdb", present=subjects.columns)
    got = connection.sql(sql).pl()
    assert_same(got, expected_result(subjects, chosen))


def test_measured_bodies_give_the_same_bits_in_duckdb() -> None:
    # Heights measured to the millimetre: the equations read height in cm as height_m / 0.01,
    # which Polars computes as height_m * 100.0; true division differed in the last bit on
    # about one row in twenty of the Wen 2011 ASM estimate.
    rng = np.random.default_rng(17)
    rows = 2_000
    bodies = pl.DataFrame(
        {
            "id": list(range(rows)),
            "sex": rng.choice(["male", "female"], rows).tolist(),
            "age": rng.integers(60, 95, rows).tolist(),
            "height_m": rng.uniform(1.40, 1.90, rows).round(3).tolist(),
            "weight_kg": rng.uniform(40, 100, rows).round(1).tolist(),
            "grip_kg": rng.uniform(10, 45, rows).round(1).tolist(),
        }
    )
    connection = duckdb.connect()
    connection.register("subjects", bodies.to_arrow())
    got = connection.sql(sarcokit.sql.to_sql(None, "duckdb", present=bodies.columns)).pl()
    assert_same(got, expected_result(bodies, None))


def test_a_local_criteria_file_compiles_too(subjects: pl.DataFrame) -> None:
    chosen = [_local_id(), "ewgsop2"]
    connection = duckdb.connect()
    connection.register("subjects", subjects.to_arrow())
    got = connection.sql(sarcokit.sql.to_sql(chosen, present=subjects.columns)).pl()
    assert_same(got, expected_result(subjects, chosen))


def test_absent_columns_read_as_unknown_and_a_view_can_be_made() -> None:
    frame = cohort(300, seed=9).select("id", "sex", "age", "grip_kg", "height_m", "asm_kg")
    connection = duckdb.connect()
    connection.register("cohort_input", frame.to_arrow())
    connection.execute(
        sarcokit.sql.to_sql(
            ["ewgsop2"], table="cohort_input", view="sarcopenia", present=frame.columns
        )
    )
    got = connection.sql("SELECT * FROM sarcopenia").pl()
    assert_same(got, expected_result(frame, ["ewgsop2"]))


def test_the_header_names_the_definitions_hash() -> None:
    compiled = sarcokit.sql.compile_query(["ewgsop2", "awgs2019"], "postgres")
    assert compiled.definitions_sha256 == definitions_hash(["ewgsop2", "awgs2019"])
    assert f"definitions_sha256: {compiled.definitions_sha256}" in compiled.sql
    # The cut-offs come from the criteria files: EWGSOP2's grip cut-offs appear as literals.
    assert "27.0e0" in compiled.sql and "16.0e0" in compiled.sql


def test_spark_sql_names_the_setting_it_needs_and_nests_its_stages() -> None:
    sql = sarcokit.sql.to_sql(["awgs2019"], "spark", table="t")
    # HotSpot's HugeMethodLimit, the value Spark's documentation advises for this setting.
    assert "-- run with SET spark.sql.codegen.hugeMethodLimit=8000\n" in sql
    assert "WITH" not in sql and sql.count("SELECT") == sql.count(") AS s") + 1 > 2


def test_bad_requests_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="dialect 'oracle'"):
        sarcokit.sql.compile_query(None, "oracle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="present=\\['grip'\\]"):
        sarcokit.sql.compile_query(None, present=["grip"])
    with pytest.raises(ValueError, match="name 'a b'"):
        sarcokit.sql.compile_query(None, view="a b")


# PostgreSQL ---------------------------------------------------------------------------------

_PG_TYPES = {pl.Boolean: "BOOLEAN", pl.Int64: "BIGINT", pl.Float64: "DOUBLE PRECISION"}


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    import psycopg

    schema = f"sarcokit_sql_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
        connection.execute(f'SET search_path TO "{schema}"')
        connection.execute("SET statement_timeout = '120s'")
        try:
            yield connection
        finally:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _pg_load(connection: Any, frame: pl.DataFrame, table: str) -> None:
    columns = ", ".join(
        f'"{name}" {_PG_TYPES.get(type(dtype), "TEXT")}' for name, dtype in frame.schema.items()
    )
    connection.execute(f'CREATE TABLE "{table}" ({columns})')
    with connection.cursor() as cursor:
        names = ", ".join(f'"{n}"' for n in frame.columns)
        with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for record in frame.iter_rows():
                copy.write_row(record)


def _pg_frame(connection: Any, sql: str) -> pl.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        names = [d.name for d in cursor.description]
        rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)


@pytest.mark.parametrize("chosen", [None, [_local_id(), "awgs2019"]], ids=["all", "local"])
def test_postgres_runs_the_sql_like_polars(
    postgres: Any, subjects: pl.DataFrame, chosen: list[str] | None
) -> None:
    table = f"subjects_{secrets.token_hex(3)}"
    _pg_load(postgres, subjects, table)
    sql = sarcokit.sql.to_sql(chosen, "postgres", table=table, present=subjects.columns)
    assert_same(_pg_frame(postgres, sql), expected_result(subjects, chosen))


# Spark --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chosen", [None, [_local_id(), "sdoc2020"]], ids=["all", "local"])
def test_spark_runs_the_sql_like_polars(
    spark_session: Any, subjects: pl.DataFrame, chosen: list[str] | None
) -> None:
    spark = spark_session
    table = f"subjects_{secrets.token_hex(3)}"
    spark.createDataFrame(
        subjects.to_arrow(compat_level=pl.CompatLevel.oldest())
    ).createOrReplaceTempView(table)
    sql = sarcokit.sql.to_sql(chosen, "spark", table=table, present=subjects.columns)
    got = pl.from_arrow(spark.sql(sql).toArrow())
    assert isinstance(got, pl.DataFrame)
    assert_same(got, expected_result(subjects, chosen))


# The command ----------------------------------------------------------------------------------


def test_the_command_prints_a_view_that_duckdb_runs(subjects: pl.DataFrame) -> None:
    from typer.testing import CliRunner

    from sarcokit.cli import app

    frame = subjects.select("id", "sex", "age", "grip_kg", "height_m", "asm_kg", "asm_method")
    result = CliRunner().invoke(
        app,
        [
            "sql",
            "--dialect",
            "duckdb",
            "--definitions",
            "awgs2019",
            "--criteria",
            str(EXAMPLE),
            "--table",
            "records",
            "--view",
            "assessed",
            "--fields",
            ",".join(frame.columns),
        ],
    )
    assert result.exit_code == 0, result.output
    connection = duckdb.connect()
    connection.register("records", frame.to_arrow())
    connection.execute(result.output)
    got = connection.sql("SELECT * FROM assessed").pl()
    assert_same(got, expected_result(frame, ["awgs2019", _local_id()]))


def test_the_command_refuses_unknown_fields_and_dialects() -> None:
    from typer.testing import CliRunner

    from sarcokit.cli import app

    result = CliRunner().invoke(app, ["sql", "--fields", "id,grip"])
    assert result.exit_code == 2
    assert "--fields grip" in result.output
    result = CliRunner().invoke(app, ["sql", "--dialect", "oracle"])
    assert result.exit_code == 2
    assert "--dialect 'oracle'" in result.output
