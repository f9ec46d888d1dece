"""A patient's measures over visits: canonical values, cut-off lines and meaningful changes."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Any

from sarcokit.definitions import DefinitionRef, resolve
from sarcokit.screening import instruments
from sarcokit.thresholds import SYMBOL, Threshold, applicable_variants
from sarcokit.web.export import canonical_measurements
from sarcokit.web.forms import history_specs
from sarcokit.web.models import Patient, Visit


@dataclass(frozen=True)
class Meaningful:
    """The smallest change between visits that counts as meaningful, and its source."""

    value: float | None
    source: str | None
    citation: str | None
    note: str


@dataclass(frozen=True)
class CutoffLine:
    """A cut-off drawn across a chart, labelled with its inequality and scope."""

    value: float
    label: str


@dataclass(frozen=True)
class Point:
    """One visit's value; `change` is from the previous visit with a value."""

    visit_id: int
    visit_date: date
    value: float
    change: float | None
    meaningful: bool


@dataclass(frozen=True)
class Series:
    """One measure over a patient's visits."""

    input: str
    label: str
    unit: str
    points: tuple[Point, ...]
    cutoffs: tuple[CutoffLine, ...]
    rule: Meaningful
    # Which way is better for this measure ("higher" or "lower"): colours its changes.
    better: str = "higher"


@cache
def meaningful_changes() -> dict[str, Meaningful]:
    """The meaningful-change table (reference/meaningful_change.toml), by measure."""
    path = files("sarcokit").joinpath("reference/meaningful_change.toml")
    raw = tomllib.loads(path.read_text("utf-8"))
    return {
        name: Meaningful(
            value=float(entry["value"]) if "value" in entry else None,
            source=entry.get("source"),
            citation=entry.get("citation"),
            note=entry.get("note", ""),
        )
        for name, entry in raw.items()
    }


def _thresholds(input_name: str, definition_id: DefinitionRef) -> list[Threshold]:
    if input_name == "sarc_f_total":
        return [instruments()["sarc_f"].test]
    return [t.threshold for t in resolve(definition_id).tests if t.threshold.input == input_name]


def cutoff_lines(input_name: str, definition_id: DefinitionRef, sex: str) -> tuple[CutoffLine, ...]:
    """The lead definition's cut-offs for this measure and sex, one line per distinct value."""
    lines: dict[float, list[str]] = {}
    for threshold in _thresholds(input_name, definition_id):
        for variant in applicable_variants(threshold, sex, None):
            scope = "/".join(m.upper() for m in variant.methods) if variant.methods else ""
            op = variant.op or threshold.op  # a cut-off may print its own inequality (SDOC men)
            text = f"{SYMBOL.get(op, op)} {variant.value:g} {scope}".strip()
            lines.setdefault(variant.value, []).append(text)
    return tuple(CutoffLine(v, ", ".join(dict.fromkeys(t))) for v, t in sorted(lines.items()))


def charted_value(visit: Visit, name: str) -> float | None:
    """One charted measure of a visit, read from what was saved (the engine is not run):
    derived values and the SARC-F total from the stored result, measured inputs from the
    measurements in the field's canonical unit."""
    result = visit.result
    derived = result.get("derived") or {}
    if name in derived:
        value = derived[name]
    elif name == "sarc_f_total":
        value = ((result.get("screening") or {}).get("sarc_f") or {}).get("total")
    else:
        # Every unit's trials and values in the canonical unit, as the research export has them.
        value = canonical_measurements(visit.measurements).get(name)
    return None if value is None else float(value)


def canonical_values(visits: Sequence[Visit], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Each visit's charted measures in canonical units, from what each visit saved."""
    return [{name: charted_value(visit, name) for name in columns} for visit in visits]


def history(
    patient: Patient, visits: Sequence[Visit], definition_id: DefinitionRef
) -> list[Series]:
    """Every charted measure over the visits, with cut-off lines and meaningful-change flags."""
    specs = history_specs()
    rows = canonical_values(visits, [s["input"] for s in specs])
    rules = meaningful_changes()
    series = []
    for spec in specs:
        name = spec["input"]
        rule = rules.get(name, Meaningful(None, None, None, ""))
        points: list[Point] = []
        for visit, row in zip(visits, rows, strict=True):
            value = row[name]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            change = float(value) - points[-1].value if points else None
            flagged = (
                change is not None and rule.value is not None and abs(change) >= rule.value - 1e-9
            )
            points.append(Point(visit.id, visit.visit_date, float(value), change, flagged))
        series.append(
            Series(
                input=name,
                label=spec["label"],
                unit=spec["unit"],
                points=tuple(points),
                cutoffs=cutoff_lines(name, definition_id, patient.sex),
                rule=rule,
                better=spec["better"],
            )
        )
    return series
