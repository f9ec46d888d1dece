"""`sarcokit cohort`: read, map, score on a chosen engine, split scored from rejected, summarise."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from sarcokit.cohort.mapping import apply_mapping, load_mapping
from sarcokit.cohort.outcomes import FollowUp, outcome_tables, write_outcomes
from sarcokit.cohort.readers import JoinReport, read_inputs, read_table
from sarcokit.cohort.summary import CohortSummary, Flow, SurveyDesign, build_summary
from sarcokit.engine import INVALID, EstimateAsm, evaluate
from sarcokit.fields import CONDITIONS, describe_token
from sarcokit.secondary.conditions import condition_column, condition_exprs, known_conditions

Engine = Literal["polars", "duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("polars", "duckdb", "spark")

# Column added to every input row: its 1-based position in the (first) input file.
ROW = "source_row"
# Column the mapping adds where a source value could not be mapped (e.g. sex = 9).
MAPPING_PROBLEMS = "mapping_problems"


class StrictError(RuntimeError):
    """`--strict` and at least one row was rejected."""


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


def load_cohort(
    inputs: Sequence[Path], *, key: str | None, mapping: Path | None, encoding: str | None
) -> tuple[pl.LazyFrame, list[str], JoinReport | None]:
    """The input rows as subject-record columns (+ kept columns), numbered in input order."""
    join: JoinReport | None = None
    if len(inputs) > 1:
        if key is None:
            raise ValueError("several input files need --key (the column they share)")
        frame, join = read_inputs(inputs, key, encoding=encoding)
    else:
        frame = read_table(inputs[0], encoding=encoding)
    frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    kept: list[str] = []
    if mapping is not None:
        spec = load_mapping(mapping)
        frame = apply_mapping(frame, spec, keep=[ROW])
        kept = [name for name in frame.collect_schema() if name in spec.keep]
    return frame, kept, join


def score(
    frame: pl.LazyFrame,
    *,
    definitions: Sequence[str] | None,
    estimate_asm: EstimateAsm | None,
    keep: Sequence[str],
    engine: Engine,
) -> pl.LazyFrame:
    """Run the engine on the chosen backend; Polars streams, DuckDB and Spark materialise."""
    if engine == "polars":
        return evaluate(frame, definitions, estimate_asm=estimate_asm, keep=keep)
    table = frame.collect()
    if engine == "duckdb":
        import duckdb

        connection = duckdb.connect()
        relation = connection.from_arrow(table.to_arrow())
        scored = evaluate(relation, definitions, estimate_asm=estimate_asm, keep=keep)
        return pl.DataFrame(scored.to_arrow_table()).lazy().sort(ROW)
    from sarcokit.spark import evaluate as spark_evaluate
    from sarcokit.spark import local_session

    session = local_session()
    spark_frame = session.createDataFrame(table.to_pandas())
    out = spark_evaluate(spark_frame, definitions, estimate_asm=estimate_asm, keep=keep)
    return pl.from_pandas(out.toPandas()).lazy().sort(ROW)


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


def rejects_table(rejected: pl.DataFrame, source: pl.LazyFrame) -> pl.DataFrame:
    """One row per problem: source row, id, field, value and the reason in words."""
    rows = rejected[ROW].to_list()
    values = {
        row[ROW]: row
        for row in source.filter(pl.col(ROW).is_in(rows)).collect().iter_rows(named=True)
    }
    records: list[dict[str, Any]] = []
    for row in rejected.iter_rows(named=True):
        raw = values[row[ROW]]
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
            field, _, _reason = text.partition(": ")
            records.append(
                {ROW: row[ROW], "id": raw.get("id"), "field": field, "value": None, "reason": text}
            )
    schema = {
        ROW: pl.UInt32,
        "id": pl.String,
        "field": pl.String,
        "value": pl.String,
        "reason": pl.String,
    }
    return pl.DataFrame(records, schema=schema, orient="row")


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
    age_breaks: Sequence[int] = (60, 70, 80),
    reference: str | None = None,
    design: SurveyDesign | None = None,
    standard: str | None = None,
    report: Path | None = None,
    step: Callable[[str], None] = lambda _: None,
    follow_up: FollowUp | None = None,
) -> CohortRun:
    """Score a cohort file end to end and write results, rejects, summary tables and report."""
    from sarcokit.definitions import DEFINITION_IDS

    chosen = list(definitions or DEFINITION_IDS)
    step("reading")
    source, kept, join = load_cohort(inputs, key=key, mapping=mapping, encoding=encoding)
    design_columns = [c for c in (design.weight, design.strata, design.psu) if c] if design else []
    group_columns = [g for g in by if g not in ("sex", "age_band")]
    # sex and age group the tables; calf_cm is the score of the calf screening tool.
    conditions: list[str] = []
    if CONDITIONS in source.collect_schema():
        given = source.select(pl.col(CONDITIONS).cast(pl.String).unique()).collect()[CONDITIONS]
        expressions = condition_exprs(given.to_list())
        source = source.with_columns(pl.col(CONDITIONS).cast(pl.String)).with_columns(expressions)
        conditions = [condition_column(c) for c in known_conditions()]
    needed = [ROW, *kept, *design_columns, *group_columns, "sex", "age", "calf_cm", *conditions]
    needed += follow_up.columns if follow_up else []
    passthrough = list(dict.fromkeys(needed))
    schema = source.collect_schema()
    if MAPPING_PROBLEMS in schema:
        passthrough.append(MAPPING_PROBLEMS)
    step(f"scoring on {engine}")
    scored = score(
        source, definitions=chosen, estimate_asm=estimate_asm, keep=passthrough, engine=engine
    )
    rejected_rows = pl.col(INVALID).is_not_null()
    if MAPPING_PROBLEMS in schema:
        rejected_rows = rejected_rows | pl.col(MAPPING_PROBLEMS).is_not_null()
    workspace = Path(tempfile.mkdtemp(prefix="sarcokit-"))
    try:
        everything = workspace / "all.parquet"
        scored.sink_parquet(everything)
        step("writing results")
        all_rows = pl.scan_parquet(everything)
        provenance = definitions_metadata(chosen)
        _write(
            all_rows.filter(~rejected_rows),
            output,
            {"sarcokit.definitions": json.dumps(provenance, ensure_ascii=False)},
        )
        rejected = all_rows.filter(rejected_rows).collect()
        counts = all_rows.select(pl.len()).collect().item()
        flow = Flow(counts, counts - rejected.height, rejected.height)
        rejects_path = output.with_name(output.stem + ".rejects.csv")
        rejects_table(rejected, source).write_csv(rejects_path)
        if strict and rejected.height:
            raise StrictError(
                f"{rejected.height} of {counts} rows were rejected; see {rejects_path}"
            )
        step("statistics")
        summary = build_summary(
            all_rows.filter(~rejected_rows),
            inputs=[str(p) for p in inputs],
            definitions=chosen,
            flow=flow,
            by=by,
            age_breaks=age_breaks,
            reference=reference,
            design=design,
            standard=standard,
            conditions=conditions,
        )
        if follow_up is not None:
            step("follow-up")
            outcomes = outcome_tables(all_rows.filter(~rejected_rows), follow_up, chosen)
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
    return CohortRun(flow, output, rejects_path, folder, report, join, summary)
