"""`sarcokit cohort`: read, map, score on a chosen engine, split scored from rejected, summarise.

Every row read ends in one of three places: scored, rejected (a problem with a value, named
with field, value and reason in `<output>.rejects.csv`) or excluded (outside the study's scope,
in `<output>.excluded.csv`). rows read = scored + rejected + excluded, always.
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from sarcokit.cohort.mapping import (
    apply_mapping,
    identity_mapping,
    load_mapping,
)
from sarcokit.cohort.outcomes import FollowUp, outcome_tables, write_outcomes
from sarcokit.cohort.readers import (
    DEFAULT_NA,
    READ_PROBLEMS,
    JoinReport,
    ReadOptions,
    read_inputs,
    read_table,
)
from sarcokit.cohort.summary import CohortSummary, Flow, SurveyDesign, build_summary
from sarcokit.engine import INVALID, EstimateAsm, evaluate
from sarcokit.fields import CONDITIONS, describe_token, field_specs, input_columns
from sarcokit.secondary.conditions import condition_column, condition_exprs, known_conditions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Engine = Literal["polars", "duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("polars", "duckdb", "spark")

# Column added to every input row: its 1-based position in the (first) input file.
ROW = "source_row"
# Column the mapping adds where a source value could not be mapped (e.g. sex = 9); the run adds
# the row's read problems (ragged, blank) and a repeated id to it.
MAPPING_PROBLEMS = "mapping_problems"
# Column naming why a row is outside the study's scope (null: inside).
EXCLUDED = "excluded_because"
# Column of the rows' count of an id held more than once (dropped after use).
_REPEATS = "_rows_with_id"
# Suffix of the copy of each field as mapped, kept only on rows the engine finds invalid (the
# engine's own copy is null there) so that a reject names the value that was read.
AS_READ = "__as_read"
_PLAUSIBLE_AGE = (field_specs()["age"].min or 0, field_specs()["age"].max or 120)


class StrictError(RuntimeError):
    """`--strict` and at least one row was rejected or one input column is unused."""


@dataclass(frozen=True)
class Scope:
    """The study's age range: rows outside it are excluded (counted), not rejected."""

    age_min: float | None = 18
    age_max: float | None = None

    def reason(self) -> pl.Expr:
        """Why a row is outside the scope, or null."""
        age = pl.col("age")
        reasons: list[tuple[pl.Expr, str]] = []
        # An age no person has is a data error (rejected); a real age outside the study's range
        # is an exclusion.
        real = age.is_between(0, _PLAUSIBLE_AGE[1])
        if self.age_min is not None:
            reasons.append((real & (age < self.age_min), f"age under {self.age_min:g}"))
        if self.age_max is not None:
            reasons.append((real & (age > self.age_max), f"age over {self.age_max:g}"))
        expr: Any = pl.lit(None, dtype=pl.String)
        for condition, text in reversed(reasons):
            expr = pl.when(condition).then(pl.lit(text)).otherwise(expr)
        result: pl.Expr = expr
        return result


@dataclass(frozen=True)
class CohortRun:
    """What a cohort run read, scored, rejected and wrote."""

    flow: Flow
    results: Path
    rejects: Path
    summary_folder: Path
    report: Path | None
    join: JoinReport | None
    summary: CohortSummary
    excluded: Path | None = None


def load_cohort(
    inputs: Sequence[Path],
    *,
    key: str | None,
    mapping: Path | None,
    encoding: str | None,
    options: ReadOptions | None = None,
    decimal: str | None = None,
    keep: Sequence[str] = (),
    keep_input: bool = False,
    visit: str | None = None,
) -> tuple[pl.LazyFrame, list[str], JoinReport | None, list[str], list[str]]:
    """The input rows as subject-record columns (+ kept columns), numbered in input order.

    Returns the frame, the kept columns, the join report, the input columns nothing uses and
    the columns each row must hold once (id, and the visit when declared; none when the input
    has no id). Without a mapping, every column named as a field of the subject record is that
    field.
    """
    spec = load_mapping(mapping) if mapping is not None else None
    options = options or ReadOptions()
    if spec is not None:
        options = ReadOptions(
            as_text=options.as_text,
            delimiter=options.delimiter,
            na_values=options.na_values
            if options.na_values != DEFAULT_NA
            else spec.na or DEFAULT_NA,
            header_rows=options.header_rows if options.header_rows != 1 else spec.header_rows or 1,
        )
    join: JoinReport | None = None
    key = key or (spec.key if spec is not None else None)
    if len(inputs) > 1:
        if key is None:
            raise ValueError("several input files need --key (the column they share)")
        frame, join = read_inputs(inputs, key, encoding=encoding, options=options)
    else:
        frame = read_table(inputs[0], encoding=encoding, options=options)
    frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    raw = [c for c in frame.collect_schema().names() if c not in (ROW, READ_PROBLEMS)]
    if spec is None:
        spec = identity_mapping(raw)
    visit = visit or spec.visit
    written = {"id", MAPPING_PROBLEMS, *(f.output for f in spec.fields)}
    extra = [c for c in (*keep, *([visit] if visit else [])) if c in raw and c not in written]
    # Input columns go on to the results unchanged unless a field of the subject record (or a
    # result column) has the name: those are the engine's inputs and must not be overwritten.
    passed: list[str] = []
    if keep_input:
        # The fields go on as the engine validated them; other columns as they were read.
        outputs = [f.output for f in spec.fields if all(c in raw for c in f.columns)]
        passed = [*outputs, *(c for c in raw if c not in written and c not in input_columns())]
    used = spec.used_columns() | set(keep) | {key or ""} | ({visit} if visit else set())
    unused = [c for c in raw if c not in used]
    through = list(dict.fromkeys([ROW, *extra, *(c for c in passed if c not in written)]))
    if READ_PROBLEMS in frame.collect_schema():
        through.append(READ_PROBLEMS)
    mapped = apply_mapping(
        frame,
        spec,
        keep=[c for c in through if c not in spec.keep],
        na_values=None if options.na_values == DEFAULT_NA else options.na_values,
        decimal=decimal,
    )
    schema = mapped.collect_schema()
    problems = [pl.col(MAPPING_PROBLEMS)]
    if READ_PROBLEMS in schema:
        problems.insert(0, pl.format("row: {}", pl.col(READ_PROBLEMS)))
    id_keys = ["id", *([visit] if visit else [])] if not spec.implicit or "id" in raw else []
    combined = pl.concat_str(problems, separator="; ", ignore_nulls=True)
    mapped = mapped.with_columns(pl.when(combined != "").then(combined).alias(MAPPING_PROBLEMS))
    if READ_PROBLEMS in schema:
        mapped = mapped.drop(READ_PROBLEMS)
    kept = [name for name in mapped.collect_schema() if name in spec.keep or name in extra]
    kept += [name for name in passed if name not in kept]
    return mapped, kept, join, unused, id_keys


def with_repeated_ids(frame: pl.LazyFrame, keys: Sequence[str]) -> pl.LazyFrame:
    """Name a row whose id (and visit) is on another row too: which one is right cannot be told.

    The ids held more than once are found first (one pass over the key columns), so the rows
    themselves stream: a count over a window would hold the whole file in memory.
    """
    if not keys:
        return frame
    counted = (
        frame.select(keys)
        .filter(pl.col("id").is_not_null())
        .group_by(keys)
        .agg(pl.len().alias(_REPEATS))
        .filter(pl.col(_REPEATS) > 1)
        .collect()
    )
    if counted.is_empty():
        return frame
    what = "id and " + keys[1] if len(keys) > 1 else "id"
    message = pl.format(
        f"id: id = '{{}}' is on {{}} rows, expected each {what} once (repeated measurements "
        "need a declared visit column, --visit)",
        pl.col("id"),
        pl.col(_REPEATS),
    )
    problems = pl.concat_str([pl.col(MAPPING_PROBLEMS), message], separator="; ", ignore_nulls=True)
    return (
        frame.join(
            counted.lazy(), on=list(keys), how="left", maintain_order="left", nulls_equal=False
        )
        .with_columns(
            pl.when(pl.col(_REPEATS).is_not_null())
            .then(problems)
            .otherwise(pl.col(MAPPING_PROBLEMS))
            .alias(MAPPING_PROBLEMS)
        )
        .drop(_REPEATS)
    )


def score(
    frame: pl.LazyFrame,
    *,
    definitions: Sequence[str] | None,
    estimate_asm: EstimateAsm | None,
    keep: Sequence[str],
    engine: Engine,
    workspace: Path,
) -> pl.LazyFrame:
    """Run the engine on the chosen backend, in the input's row order.

    Polars streams the rows through the engine. DuckDB and Spark (local mode, or a cluster
    whose nodes share the workspace's folder) read them from a Parquet file in `workspace` and
    write their results to another there, so memory stays bounded (DuckDB held 4.5 GB for a
    million rows when it took and gave them as one table); otherwise a Spark cluster's
    executors may not see this machine's folders, so there the rows travel through the driver.
    Whatever the backend, the result has the Polars engine's column types
    (categories and states as Enum, whole-number scores as integers), so that every engine
    writes the same files: the tables list categories in their definition's order.
    """
    if engine == "polars":
        return evaluate(frame, definitions, estimate_asm=estimate_asm, keep=keep)
    rows = workspace / f"{engine}-rows.parquet"
    # Row groups of 100,000 rows: DuckDB and Spark split a file by them, one task per core.
    frame.sink_parquet(rows, row_group_size=100_000)
    if engine == "duckdb":
        import duckdb

        connection = duckdb.connect()
        # Kept explicit: the rows come back in the order they were read, with no sort.
        connection.execute("SET preserve_insertion_order = true")
        relation = connection.read_parquet(str(rows))
        scored = evaluate(relation, definitions, estimate_asm=estimate_asm, keep=keep)
        done = workspace / "duckdb-scored.parquet"
        scored.write_parquet(str(done))
        result = pl.scan_parquet(done)
    else:
        result = _score_on_spark(rows, workspace, definitions, estimate_asm, keep).sort(ROW)
    empty = pl.scan_parquet(rows).clear().collect()
    typed = evaluate(empty, definitions, estimate_asm=estimate_asm, keep=keep).schema
    found = result.collect_schema()
    return result.cast({n: t for n, t in typed.items() if found[n] != t})


def _score_on_spark(
    rows: Path,
    workspace: Path,
    definitions: Sequence[str] | None,
    estimate_asm: EstimateAsm | None,
    keep: Sequence[str],
) -> pl.LazyFrame:
    """The rows scored by Spark: from and to Parquet files in local mode, and on a cluster
    whose nodes share the workspace's folder (SARCOKIT_SPARK_SHARED); through the driver
    otherwise, a slice of rows per job.

    Collected through the driver in one job, a million rows' results (1 GiB) exceeded Spark's
    `spark.driver.maxResultSize` and the run was refused after all the work was done. A
    cluster's executors may not see this machine's folders, so without a shared folder the
    rows travel through the driver as Arrow, in slices whose results stay under that limit.
    """
    from sarcokit.spark import evaluate as spark_evaluate
    from sarcokit.spark import local_session, shared_folder

    session = local_session()
    shared = shared_folder()
    local = (session.sparkContext.master or "").startswith("local")
    scored = workspace / "spark-scored"
    if local or (shared is not None and workspace.is_relative_to(shared)):
        # file: URIs, so that a cluster whose default file system is another (HDFS) still
        # reads and writes the shared folder.
        out = spark_evaluate(
            session.read.parquet(rows.as_uri()), definitions, estimate_asm=estimate_asm, keep=keep
        )
        out.write.parquet(scored.as_uri())
    else:
        _score_through_driver(session, rows, scored, definitions, estimate_asm, keep)
    return pl.scan_parquet(scored / "*.parquet")


def _score_through_driver(
    session: SparkSession,
    rows: Path,
    scored: Path,
    definitions: Sequence[str] | None,
    estimate_asm: EstimateAsm | None,
    keep: Sequence[str],
) -> None:
    """Send the rows to Spark from this process and write its results into the folder
    `scored`, a slice per job, each slice's results under `spark.driver.maxResultSize`."""
    from sarcokit.spark import SHARED_VARIABLE, byte_size
    from sarcokit.spark import evaluate as spark_evaluate

    source = pl.scan_parquet(rows)
    setting = "spark.driver.maxResultSize"
    limit = session.sparkContext.getConf().get(setting, "1g")

    def score(start: int, length: int) -> pl.DataFrame:
        # Arrow both ways, in the types Spark reads: through pandas an integer column with a
        # missing value came back as floats (an MSRA total of 30 written as 30.0).
        arrow = source.slice(start, length).collect().to_arrow(compat_level=pl.CompatLevel.oldest())
        out = spark_evaluate(
            session.createDataFrame(arrow), definitions, estimate_asm=estimate_asm, keep=keep
        )
        try:
            return pl.DataFrame(out.toArrow())
        except Exception as error:  # Spark's own error types depend on its version and mode
            if "maxResultSize" not in str(error):
                raise
            raise ValueError(
                f"--engine spark: the results of {arrow.num_rows:,} rows are larger than the "
                f"driver may collect ({setting} = {limit}); raise it, name a "
                f"folder every node shares in {SHARED_VARIABLE}, or score the data where it "
                "lives with sarcokit.spark.evaluate in a Spark job (README)"
            ) from None

    # Each slice's results go to a file as they come, so that this process holds one slice
    # at a time, not every result and then their concatenation.
    scored.mkdir()
    height = source.select(pl.len()).collect().item()
    for index, part in enumerate(_in_slices(height, score, byte_size(setting, limit))):
        part.write_parquet(scored / f"{index:06d}.parquet")


# Through the driver, each job's results are kept to this share of spark.driver.maxResultSize
# (Spark counts its serialized batches, not Polars' estimate of the frame), and the first job,
# before any result is measured, assumes this many bytes per row (measured: about 1,070 for all
# definitions). A slice never has fewer rows than the minimum, where a job's own cost would
# dominate: a limit too small for it is refused rather than run in thousands of jobs.
RESULT_SHARE = 0.5
FIRST_GUESS_BYTES_PER_ROW = 4096
MIN_SLICE_ROWS = 1_000


def _in_slices(
    height: int, score: Callable[[int, int], pl.DataFrame], limit: int
) -> Iterator[pl.DataFrame]:
    """`score(start, length)` of `height` rows in slices whose results stay under `limit`
    bytes (0: no limit, one slice), each slice sized from the bytes per row so far."""
    if limit == 0 or height == 0:
        yield score(0, height)
        return
    size = max(MIN_SLICE_ROWS, int(limit * RESULT_SHARE / FIRST_GUESS_BYTES_PER_ROW))
    start, scored_rows, scored_bytes = 0, 0, 0.0
    while start < height:
        part = score(start, size)
        yield part
        start += size
        scored_rows += part.height
        scored_bytes += part.estimated_size()
        if scored_rows:
            per_row = max(scored_bytes / scored_rows, 1.0)
            size = max(MIN_SLICE_ROWS, int(limit * RESULT_SHARE / per_row))


def _write(frame: pl.LazyFrame, path: Path, metadata: dict[str, str] | None = None) -> None:
    if path.suffix.lower() == ".csv":
        frame.sink_csv(path)
    else:
        frame.sink_parquet(path, metadata=metadata)


def definitions_metadata(definition_ids: Sequence[str]) -> dict[str, Any]:
    """Which definition files produced a run: each file's SHA-256 and the combined hash."""
    from sarcokit.definitions import SCHEMA_VERSION, definition, definitions_hash

    return {
        "definitions_sha256": definitions_hash(definition_ids),
        "schema": SCHEMA_VERSION,
        "definitions": [
            {
                "id": d.id,
                "sha256": d.sha256,
                "local": d.local,
                "path": d.path,
                "citation": d.citation,
            }
            for d in map(definition, definition_ids)
        ],
    }


_QUOTED = re.compile(r" = '(.*?)'(?: is | are |;|$)")


def rejects_table(rejected: pl.DataFrame) -> pl.DataFrame:
    """One row per problem: source row, id, field, value and the reason in words.

    A field's value is named as it was read (its `AS_READ` copy): the engine's own column is
    null on a row it finds invalid.
    """
    records: list[dict[str, Any]] = []
    copies = [c for c in rejected.columns if c.endswith(AS_READ)]
    for row in rejected.iter_rows(named=True):
        raw = row | {c.removesuffix(AS_READ): row[c] for c in copies}
        tokens = (row.get(INVALID) or "").split()
        for token in tokens:
            problem = describe_token(token, raw)
            records.append(
                {
                    ROW: row[ROW],
                    "id": raw.get("id"),
                    "field": problem.field,
                    "value": None if problem.value is None else str(problem.value),
                    "reason": problem.message,
                }
            )
        for text in filter(None, (row.get(MAPPING_PROBLEMS) or "").split("; ")):
            field, _, reason = text.partition(": ")
            quoted = _QUOTED.search(reason)
            records.append(
                {
                    ROW: row[ROW],
                    "id": raw.get("id"),
                    "field": field,
                    "value": quoted.group(1) if quoted else None,
                    "reason": text,
                }
            )
    schema = {
        ROW: pl.Int64,
        "id": pl.String,
        "field": pl.String,
        "value": pl.String,
        "reason": pl.String,
    }
    return pl.DataFrame(records, schema=schema, orient="row")


def unused_note(columns: Sequence[str]) -> list[str]:
    """Each unused input column, with the field it may have meant."""
    notes = []
    for column in columns:
        close = difflib.get_close_matches(column, list(input_columns()), n=1, cutoff=0.75)
        notes.append(f"{column} (did you mean {close[0]}?)" if close else column)
    return notes


def _design_exprs(design: SurveyDesign | None, schema: pl.Schema) -> list[pl.Expr]:
    """Weights read as text (CSV) become numbers; strata and PSU are labels either way."""
    if design is None or design.weight is None or design.weight not in schema:
        return []
    if schema[design.weight] == pl.String:
        return [pl.col(design.weight).str.strip_chars().cast(pl.Float64, strict=False)]
    return []


def run_cohort(
    inputs: Sequence[Path],
    output: Path,
    *,
    key: str | None = None,
    mapping: Path | None = None,
    encoding: str | None = None,
    definitions: Sequence[str] | None = None,
    engine: Engine = "polars",
    estimate_asm: EstimateAsm | None = None,
    strict: bool = False,
    by: Sequence[str] = ("sex", "age_band"),
    age_breaks: Sequence[int] | str = (60, 70, 80),
    reference: str | None = None,
    design: SurveyDesign | None = None,
    standard: str | None = None,
    report: Path | None = None,
    step: Callable[[str], None] = lambda _: None,
    follow_up: FollowUp | None = None,
    na_values: Sequence[str] | None = None,
    decimal: str | None = None,
    delimiter: str | None = None,
    header_rows: int | None = None,
    visit: str | None = None,
    keep_input: bool = True,
    scope: Scope | None = None,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
    lead: str | None = None,
) -> CohortRun:
    """Score a cohort file end to end and write results, rejects, summary tables and report."""
    from sarcokit.definitions import DEFINITION_IDS

    chosen = list(definitions or DEFINITION_IDS)
    scope = scope or Scope()
    step("reading")
    design_columns = [c for c in (design.weight, design.strata, design.psu) if c] if design else []
    group_columns = [g for g in by if g not in ("sex", "age_band")]
    options = ReadOptions(
        as_text=True,
        delimiter=delimiter,
        na_values=tuple(na_values) if na_values is not None else DEFAULT_NA,
        header_rows=header_rows or 1,
    )
    source, kept, join, unused, id_keys = load_cohort(
        inputs,
        key=key,
        mapping=mapping,
        encoding=encoding,
        options=options,
        decimal=decimal,
        keep=[*design_columns, *group_columns],
        keep_input=keep_input,
        visit=visit,
    )
    if strict and unused:
        raise StrictError(
            f"{len(unused)} input column(s) are not used by the mapping: "
            f"{', '.join(unused_note(unused))}"
        )
    schema = source.collect_schema()
    source = source.with_columns(*_design_exprs(design, schema))
    # sex and age group the tables; calf_cm is the score of the calf screening tool.
    conditions: list[str] = []
    if CONDITIONS in schema:
        given = source.select(pl.col(CONDITIONS).cast(pl.String).unique()).collect()[CONDITIONS]
        expressions = condition_exprs(given.to_list())
        source = source.with_columns(pl.col(CONDITIONS).cast(pl.String)).with_columns(expressions)
        conditions = [condition_column(c) for c in known_conditions()]
    needed = [ROW, *kept, *design_columns, *group_columns, "sex", "age", "calf_cm", *conditions]
    needed += follow_up.columns if follow_up else []
    passthrough = [
        c
        for c in dict.fromkeys(needed)
        if c in schema or c in conditions or c in ("sex", "age", "calf_cm")
    ]
    passthrough.append(MAPPING_PROBLEMS)
    # Derived values the engine writes itself (gait speed from a timed walk) are not passed.
    written = set(evaluate(source, chosen, keep=[]).collect_schema().names())
    passthrough = [c for c in passthrough if c not in written]
    # Rows read wrongly (ragged, blank) are rejected before any is judged out of scope.
    clean = pl.col(MAPPING_PROBLEMS).is_null() | ~pl.col(MAPPING_PROBLEMS).str.starts_with("row: ")
    outside: pl.Expr = pl.lit(None, dtype=pl.String)
    if "age" in schema:
        outside = pl.when(clean).then(scope.reason())
    fields = [c for c in schema.names() if c in input_columns() and c != "id"]
    source = source.with_columns(
        outside.alias(EXCLUDED), *(pl.col(c).alias(c + AS_READ) for c in fields)
    )
    as_read = [c + AS_READ for c in fields]
    total_rows = source.select(pl.len()).collect().item()
    # With Spark, the workspace is made where the cluster's nodes can read and write it, if
    # such a folder is named (see `_score_on_spark`).
    place = None
    if engine == "spark":
        from sarcokit.spark import shared_folder

        place = shared_folder()
    workspace = Path(tempfile.mkdtemp(prefix="sarcokit-", dir=place))
    try:
        step(f"scoring on {engine}")
        # One pass: every row read is mapped, judged in or out of scope and scored, and written
        # once; the split into results, rejects and exclusions reads that file.
        everything = workspace / "all.parquet"
        scored = score(
            source,
            definitions=chosen,
            estimate_asm=estimate_asm,
            keep=[*passthrough, EXCLUDED, *as_read],
            engine=engine,
            workspace=workspace,
        )
        invalid = pl.col(INVALID).is_not_null()
        scored = scored.with_columns(pl.when(invalid).then(pl.col(c)).alias(c) for c in as_read)
        progress(0, total_rows)
        if engine == "polars":
            scored = scored.with_columns(_progress_column(total_rows, progress))
        scored.sink_parquet(everything, compression="lz4")
        progress(total_rows, total_rows)
        all_rows = with_repeated_ids(pl.scan_parquet(everything), id_keys)
        step("writing results")
        in_scope = all_rows.filter(pl.col(EXCLUDED).is_null()).drop(EXCLUDED)
        rejected_rows = pl.col(INVALID).is_not_null() | pl.col(MAPPING_PROBLEMS).is_not_null()
        scored_rows = in_scope.filter(~rejected_rows).drop(as_read)
        provenance = definitions_metadata(chosen)
        _write(
            scored_rows,
            output,
            {"sarcokit.definitions": json.dumps(provenance, ensure_ascii=False)},
        )
        rejected, excluded = pl.collect_all(
            [
                in_scope.filter(rejected_rows),
                all_rows.filter(pl.col(EXCLUDED).is_not_null()).select(ROW, "id", EXCLUDED),
            ]
        )
        rejects_path = output.with_name(output.stem + ".rejects.csv")
        rejects = rejects_table(rejected)
        rejects.write_csv(rejects_path)
        excluded_path = output.with_name(output.stem + ".excluded.csv")
        excluded.rename({EXCLUDED: "reason"}).write_csv(excluded_path)
        read = total_rows
        in_scope_rows = total_rows - excluded.height
        flow = Flow(
            read,
            in_scope_rows - rejected.height,
            rejected.height,
            excluded.height,
            excluded_by=_counts(excluded, EXCLUDED),
            rejected_by=_counts(rejects.unique([ROW, "field"]), "field"),
            unused_columns=tuple(unused),
        )
        if strict and rejected.height:
            raise StrictError(f"{rejected.height} of {read} rows were rejected; see {rejects_path}")
        step("statistics")
        summary = build_summary(
            scored_rows,
            inputs=[str(p) for p in inputs],
            definitions=chosen,
            flow=flow,
            by=by,
            age_breaks=age_breaks,
            reference=reference,
            design=design,
            standard=standard,
            conditions=conditions,
            lead=lead,
        )
        if follow_up is not None:
            step("follow-up")
            outcomes = outcome_tables(scored_rows, follow_up, chosen)
            summary.extra.update(outcomes)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    folder = output.with_name(output.stem + ".summary")
    summary.write(folder)
    if follow_up is not None:
        write_outcomes(outcomes, folder)
    # The hash of the definition files beside the tables (CSV output has no metadata of its own).
    (folder / "definitions.json").write_text(
        json.dumps(provenance, ensure_ascii=False, indent=2) + "\n", "utf-8"
    )
    if report is not None:
        step("report")
        from sarcokit.cohort.report import render_report

        render_report(summary, report)
    return CohortRun(flow, output, rejects_path, folder, report, join, summary, excluded_path)


def _counts(frame: pl.DataFrame, column: str) -> tuple[tuple[str, int], ...]:
    if frame.is_empty():
        return ()
    counted = frame.group_by(column).len().sort(["len", column], descending=[True, False])
    return tuple((str(reason), int(n)) for reason, n in counted.iter_rows())


def _progress_column(total: int, progress: Callable[[int, int], None]) -> pl.Expr:
    """The row number, unchanged, telling `progress` how far the stream has come.

    Polars calls it once per batch of rows as they stream through (batches may arrive out of
    order, so the furthest row seen is reported); it costs one Python call per batch.
    """
    furthest = [0]

    def tick(rows: pl.Series) -> pl.Series:
        last = rows.max()
        if isinstance(last, int) and last > furthest[0]:
            furthest[0] = last
            progress(min(last, total), total)
        return rows

    return pl.col(ROW).map_batches(tick, return_dtype=pl.Int64, is_elementwise=True)
