"""The Python entry points: assess one record or many, evaluate a whole frame."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import polars as pl

from sarcokit.definitions import DefinitionRef, definitions, definitions_hash
from sarcokit.engine import INVALID, EstimateAsm, evaluate, polars_dtype
from sarcokit.fields import (
    CONDITIONS,
    InputError,
    Problem,
    describe_token,
    input_columns,
    parse_record,
)
from sarcokit.i18n import Lang
from sarcokit.result import Result, derived_of, explain, screening_of, secondary_of
from sarcokit.scalar import Unsupported, evaluate_rows
from sarcokit.secondary.conditions import recognise


@cache
def _schema() -> dict[str, pl.DataType]:
    return {name: polars_dtype(spec.dtype()) for name, (spec, _) in input_columns().items()}


@cache
def _common_fields() -> frozenset[str]:
    # Every unit of a common field too (height_cm, grip_lb, …): which unit a record used must
    # not pick a pipeline of its own, since compiling one costs ~0.3 s of CPU and a server
    # holding the interpreter lock for it stalls every request in flight (issue 9).
    return frozenset(
        {"id"} | {name for name, (spec, _) in input_columns().items() if spec.group != "secondary"}
    )


def _frame_schema(parsed: Sequence[Mapping[str, Any]]) -> dict[str, pl.DataType]:
    # The common fields (in every unit) always, the secondary ones only when carried: the engine
    # compiles one pipeline per set of present columns and folds what reads only absent ones into
    # literals (most of the cost of a one-row frame is the secondary tools). Records that differ
    # only in which common fields (or units) they give then share one pipeline.
    carried = {name for row in parsed for name in row} | _common_fields()
    return {name: dtype for name, dtype in _schema().items() if name in carried}


def _frame(parsed: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    schema = _frame_schema(parsed)
    return (
        pl.DataFrame(parsed, schema=schema, orient="row") if parsed else pl.DataFrame(schema=schema)
    )


def records_frame(records: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Valid records as one typed frame for `evaluate`; a bad record raises InputError."""
    return _frame([parse_record(record) for record in records])


def assess_many(
    records: Iterable[Mapping[str, Any]],
    *,
    definitions: Sequence[DefinitionRef] | None = None,
    lang: Lang = "en",
    estimate_asm: EstimateAsm | None = None,
    sex_coding: Mapping[Any, str] | None = None,
) -> list[Result]:
    """Assess records in order; a bad record gives a Result carrying its problems, in place.

    `definitions` are ids (the current version of each) or exact Definition versions."""
    chosen = _definitions(definitions)
    parsed: list[dict[str, Any]] = []
    problems: list[list[Any]] = []
    diagnoses: list[list[str]] = []
    originals = list(records)
    for record in originals:
        if not isinstance(record, Mapping):
            expected = "a JSON object with the fields of the subject record"
            message = f"record {record!r} is a {type(record).__name__}; expected {expected}"
            parsed.append({})
            problems.append([Problem("record", record, expected, message)])
            diagnoses.append([])
            continue
        try:
            row = parse_record(record, sex_coding)
            diagnoses.append(row.pop(CONDITIONS, []))
            parsed.append(row)
            problems.append([])
        except InputError as error:
            parsed.append({"id": record.get("id")} if isinstance(record.get("id"), str) else {})
            problems.append(error.problems)
            diagnoses.append([])
    rows = _evaluated(parsed, chosen, estimate_asm)
    results: list[Result] = []
    digest = definitions_hash(chosen)
    for record, row, found, given in zip(originals, rows, problems, diagnoses, strict=True):
        subject = record.get("id") if isinstance(record, Mapping) else None
        if not found and row[INVALID] is not None:
            found = [describe_token(token, record) for token in row[INVALID].split(" ")]
        if found:
            results.append(Result(subject, problems=found))
            continue
        recognised, others = recognise(given)
        results.append(
            Result(
                subject,
                derived=derived_of(row),
                screening=screening_of(row),
                definitions={d.id: explain(d, row, lang, recognised) for d in chosen},
                secondary=secondary_of(row, recognised, others, lang),
                definitions_sha256=digest,
                lang=lang,
            )
        )
    return results


# Up to this many records are evaluated row by row in plain Python (~0.1 ms each, against
# ~12-25 ms of query planning for any Polars frame); larger batches go through Polars.
SCALAR_MAX_ROWS = 64


def _evaluated(
    parsed: Sequence[Mapping[str, Any]],
    chosen: Sequence[DefinitionRef],
    estimate_asm: EstimateAsm | None,
) -> Iterable[dict[str, Any]]:
    """The explained result row of each parsed record, by the faster path for their number."""
    if len(parsed) <= SCALAR_MAX_ROWS:
        schema = _frame_schema(parsed)
        try:
            return evaluate_rows(parsed, schema, chosen, estimate_asm=estimate_asm, explain=True)
        except Unsupported:  # the columnar engine is the reference and runs every pipeline
            pass
    evaluated = evaluate(_frame(parsed), chosen, estimate_asm=estimate_asm, explain=True)
    return evaluated.iter_rows(named=True)


def assess(
    record: Mapping[str, Any],
    *,
    definitions: Sequence[DefinitionRef] | None = None,
    lang: Lang = "en",
    estimate_asm: EstimateAsm | None = None,
    sex_coding: Mapping[Any, str] | None = None,
) -> Result:
    """Assess one subject under the chosen definitions (all by default)."""
    return assess_many(
        [record],
        definitions=definitions,
        lang=lang,
        estimate_asm=estimate_asm,
        sex_coding=sex_coding,
    )[0]


def _definitions(ids: Sequence[DefinitionRef] | None) -> list[Any]:
    return definitions(tuple(ids) if ids else None)
