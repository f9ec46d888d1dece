"""The de-identified research export as a typed table, with the data dictionary that explains it.

Each visit becomes one row: who (a pseudonym, sex, age capped at 90, days since the first visit,
the visit's number), what was measured (every subject-record field in its canonical unit, and
each grip trial beside the best), and what was stored as its result (derived values,
screening, each definition's category and component states, secondary-sarcopenia values). The
result columns are read from the stored result; nothing is re-assessed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
from fastapi import Response

from sarcokit.equations import UNITS
from sarcokit.fields import (
    CONDITIONS,
    FieldSpec,
    field_specs,
    input_columns,
    to_canonical,
    trial_inputs,
)
from sarcokit.i18n import catalogue
from sarcokit.secondary.conditions import recognise

ExportKind = Literal["csv", "parquet"]
ColumnType = Literal["string", "integer", "number", "boolean"]
Origin = Literal["subject", "measurement", "derived", "screening", "definition", "secondary"]

_POLARS: dict[ColumnType, type[pl.DataType]] = {
    "string": pl.String,
    "integer": pl.Int64,
    "number": pl.Float64,
    "boolean": pl.Boolean,
}
_KINDS: dict[str, ColumnType] = {
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "category": "string",
    "text": "string",
}
# The patient record owns these; the export has its own de-identified forms of them.
_FROM_PATIENT = frozenset({"id", "sex", "age"})
# The form asks three trials: the export always has at least their three columns.
MIN_TRIAL_COLUMNS = 3
_SUBJECT = ("subject", "sex", "age", "days_since_first_visit", "visit")
# A constant of the instrument, not of the visit.
_CONSTANTS = frozenset({"provisional"})


@dataclass(frozen=True)
class Column:
    """One column of the export: its name, type, unit and meaning."""

    name: str
    type: ColumnType
    unit: str
    description: str
    origin: Origin

    def as_row(self) -> dict[str, str]:
        """The column as a row of the data dictionary."""
        return {
            "column": self.name,
            "type": self.type,
            "unit": self.unit,
            "description": self.description,
            "origin": self.origin,
        }


def trial_column(field: str, number: int) -> str:
    """The name of one trial's column (1-based), in the field's canonical unit."""
    return f"{field}_trial_{number}"


def canonical_measurements(measurements: Mapping[str, Any]) -> dict[str, Any]:
    """A visit's stored measurements under canonical field names and units, trials apart.

    Values entered in another unit (grip in lb, height in cm) are converted as the engine
    converts them (rounded at 1e-9, which removes binary conversion error only); conditions
    become the engine's condition ids, never the text as typed.
    """
    columns, listed = input_columns(), trial_inputs()
    row: dict[str, Any] = {}
    for name, value in measurements.items():
        if name in listed:
            spec, unit_input = listed[name]
            trials = [to_canonical(unit_input, float(t)) for t in value]
            for number, trial in enumerate(trials, start=1):
                row[trial_column(spec.name, number)] = trial
            row.setdefault(spec.name, max(trials))
        elif name == CONDITIONS:
            recognised, _ = recognise(value if isinstance(value, list) else [str(value)])
            row[CONDITIONS] = "; ".join(recognised)
        elif name in columns and name not in _FROM_PATIENT:
            spec, _ = columns[name]
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = to_canonical(name, float(value)) if spec.kind == "number" else value
            row[spec.name] = value
    return row


def result_columns(result: Mapping[str, Any]) -> dict[str, tuple[Origin, Any]]:
    """A stored result as flat columns (with where each came from), named as in the cohort
    tool's results file where the cohort tool has the same value."""
    row: dict[str, tuple[Origin, Any]] = {
        name: ("derived", value) for name, value in result.get("derived", {}).items()
    }
    for block, values in result.get("screening", {}).items():
        for key, value in values.items():
            if key not in _CONSTANTS:
                row[f"{block}_{key}"] = ("screening", value)
    for definition_id, answer in result.get("definitions", {}).items():
        if not isinstance(answer, Mapping):
            continue
        row[f"{definition_id}_category"] = ("definition", answer.get("category"))
        for part in ("components", "outcomes", "case_finding"):
            for name, state in answer.get(part, {}).items():
                row[f"{definition_id}_{name}"] = ("definition", state)
    for name, value in _flatten(result.get("secondary", {}), "secondary").items():
        row[name] = ("secondary", value)
    return row


def _flatten(block: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in block.items():
        name = f"{prefix}_{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        elif isinstance(value, list):
            # Lists of texts (condition context) belong to the page; ids are kept.
            if all(isinstance(v, str) for v in value):
                flat[name] = "; ".join(value)
        else:
            flat[name] = value
    return flat


def _observed_type(values: Iterable[Any]) -> ColumnType:
    seen = {type(v) for v in values if v is not None}
    if not seen or seen <= {str}:
        return "string"
    if seen == {bool}:
        return "boolean"
    if seen <= {int}:
        return "integer"
    if seen <= {int, float}:
        return "number"
    return "string"


def _field_label(spec: FieldSpec, messages: Mapping[str, str]) -> str:
    # The field's one label (fields.toml), as the form and report show it.
    return spec.label or messages.get(f"input.{spec.name}", spec.name.replace("_", " "))


def _field_column(spec: FieldSpec, messages: Mapping[str, str]) -> Column:
    label = _field_label(spec, messages)
    return Column(spec.name, _KINDS[spec.kind], spec.unit or "", label, "measurement")


def dictionary(visits: Sequence[Mapping[str, Any]]) -> list[Column]:
    """The export's columns for these visits (each with `measurements` and `result`), in order:
    subject, measurements with the grip trials, then the stored results."""
    messages = catalogue("en")
    specs = field_specs()
    columns = [
        Column("subject", "string", "", "pseudonym of the patient (keyed hash)", "subject"),
        Column("sex", "string", "", "male or female", "subject"),
        Column("age", "integer", "years", "age at the visit (90 means 90 or older)", "subject"),
        Column(
            "days_since_first_visit", "integer", "days", "days since the first visit", "subject"
        ),
        Column(
            "visit", "integer", "", "the visit's number for this patient (1 = first)", "subject"
        ),
    ]
    results = [result_columns(visit.get("result", {})) for visit in visits]
    found: dict[str, Origin] = {}
    for values in results:
        found.update({name: origin for name, (origin, _) in values.items()})
    trials = _trial_counts(visits)
    for spec in specs.values():
        # A value the result also holds (gait speed, from a timed walk too) is exported once.
        if spec.name in _FROM_PATIENT or spec.name in found:
            continue
        columns.append(_field_column(spec, messages))
        if spec.trials:
            columns.extend(
                Column(
                    trial_column(spec.name, n),
                    "number",
                    spec.unit or "",
                    f"{_field_label(spec, messages)}, trial {n}",
                    "measurement",
                )
                for n in range(1, trials.get(spec.name, 0) + 1)
            )
    columns.append(
        Column(CONDITIONS, "string", "", "recognised conditions ('; '-separated)", "measurement")
    )
    for name, origin in found.items():
        observed = _observed_type(values[name][1] for values in results if name in values)
        measured = specs.get(name)
        unit = (measured.unit or "") if measured is not None else UNITS.get(name, "")
        label = (
            _field_label(measured, messages)
            if measured is not None
            else messages.get(f"input.{name}", name.replace("_", " "))
        )
        columns.append(Column(name, observed, unit, label, origin))
    return columns


def _trial_counts(visits: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many trial columns each repeated test needs: the most any visit has, at least
    MIN_TRIAL_COLUMNS."""
    counts: dict[str, int] = {}
    for name, (spec, _) in trial_inputs().items():
        given = [len(v["measurements"].get(name) or ()) for v in visits if "measurements" in v]
        counts[spec.name] = max([counts.get(spec.name, MIN_TRIAL_COLUMNS), *given])
    return counts


def table(visits: Sequence[Mapping[str, Any]]) -> tuple[pl.DataFrame, list[Column]]:
    """The export as a typed frame, and its dictionary.

    Each visit is a mapping with `subject`, `sex`, `age`, `days_since_first_visit`, `visit`,
    `measurements` (as stored) and `result` (as stored).
    """
    columns = dictionary(visits)
    schema = {column.name: _POLARS[column.type] for column in columns}
    rows = []
    for visit in visits:
        row = {name: visit.get(name) for name in _SUBJECT}
        row.update(canonical_measurements(visit.get("measurements", {})))
        row.update({n: value for n, (_, value) in result_columns(visit.get("result", {})).items()})
        rows.append({name: row.get(name) for name in schema})
    return pl.DataFrame(rows, schema=schema), columns


def to_csv(frame: pl.DataFrame) -> bytes:
    """The frame as UTF-8 CSV: booleans as true/false, missing as an empty cell."""
    return frame.write_csv().encode("utf-8")


def to_parquet(frame: pl.DataFrame) -> bytes:
    """The frame as Parquet (zstd), keeping every column's type."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def dictionary_csv(columns: Sequence[Column]) -> bytes:
    """The data dictionary as CSV: column, type, unit, description, origin."""
    return (
        pl.DataFrame(
            [c.as_row() for c in columns],
            schema=dict.fromkeys(("column", "type", "unit", "description", "origin"), pl.String),
        )
        .write_csv()
        .encode("utf-8")
    )


_MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def file_response(
    frame: pl.DataFrame, kind: ExportKind, stem: str = "sarcokit-deidentified"
) -> Response:
    """The export as a download of the chosen kind."""
    body = to_csv(frame) if kind == "csv" else to_parquet(frame)
    return Response(
        body,
        media_type=_MEDIA[kind],
        headers={"Content-Disposition": f'attachment; filename="{stem}.{kind}"'},
    )
