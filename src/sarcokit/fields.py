"""The subject record: field names, units, alternative units, plausible ranges and codes."""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any, Literal

import narwhals as nw

Kind = Literal["text", "number", "integer", "boolean", "category"]

# Inputs that are not fields of their own but combine into one (gait speed = distance / time).
WALK_DISTANCE = "walk_distance_m"
WALK_TIME = "walk_time_s"
GAIT_SPEED = "gait_speed_m_s"
GRIP_TRIALS = "grip_kg_trials"
# Diagnoses (ICD-10 codes or names): a list, kept beside the frame for secondary sarcopenia.
CONDITIONS = "conditions"
GRIP = "grip_kg"

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


@dataclass(frozen=True)
class Alternative:
    """Another unit a field may be given in: canonical = value × factor."""

    name: str
    unit: str
    factor: float = 1.0
    divide_by: float | None = None

    def to_canonical(self, value: float) -> float:
        """Convert a value in this unit to the canonical unit."""
        return value / self.divide_by if self.divide_by is not None else value * self.factor

    def expr(self) -> nw.Expr:
        """The conversion as a columnar expression."""
        column = nw.col(self.name)
        return column / self.divide_by if self.divide_by is not None else column * self.factor

    def from_canonical(self, column: nw.Expr) -> nw.Expr:
        """The canonical value expressed in this unit."""
        return column * self.divide_by if self.divide_by is not None else column / self.factor


@dataclass(frozen=True)
class FieldSpec:
    """One field of the subject record."""

    name: str
    kind: Kind
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)
    alternatives: tuple[Alternative, ...] = ()
    group: str = "primary"
    # A repeated test (grip): at most this many trials per record, in any of its units, as
    # `<input>_trials` (grip_kg_trials, grip_lb_trials); the best (highest) is the value. 0: none.
    trials: int = 0
    # The field's one label (English; the clinic translates it): form, result, report, export.
    label: str = ""

    def dtype(self) -> nw.dtypes.DType:
        """The column type of the field in a frame."""
        types: dict[str, nw.dtypes.DType] = {
            "text": nw.String(),
            "number": nw.Float64(),
            "integer": nw.Int64(),
            "boolean": nw.Boolean(),
            "category": nw.String(),
        }
        return types[self.kind]

    def expected(self, unit_name: str | None = None) -> str:
        """What a valid value looks like, in words."""
        if self.kind == "category":
            return "one of " + ", ".join(self.values)
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "text":
            return "text"
        low, high, unit = self.plausible(unit_name)
        what = "a whole number" if self.kind == "integer" else "a number"
        suffix = f" {unit}" if unit else ""
        return f"{what} from {_fmt(low)} to {_fmt(high)}{suffix}"

    def plausible(self, unit_name: str | None = None) -> tuple[float | None, float | None, str]:
        """The plausible range in the unit of this input name: (low, high, unit)."""
        low, high, unit = self.min, self.max, self.unit or ""
        alternative = self.alternative(unit_name) if unit_name else None
        if alternative is not None and low is not None and high is not None:
            low = _from_canonical(alternative, low)
            high = _from_canonical(alternative, high)
            unit = alternative.unit
        return low, high, unit

    def alternative(self, name: str | None) -> Alternative | None:
        """The alternative unit with this input name, if any."""
        return next((a for a in self.alternatives if a.name == name), None)


def _from_canonical(alternative: Alternative, value: float) -> float:
    if alternative.divide_by is not None:
        return value * alternative.divide_by
    return value / alternative.factor


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.6g}"


@cache
def field_specs() -> dict[str, FieldSpec]:
    """All fields of the subject record, by canonical name."""
    raw = tomllib.loads(files("sarcokit").joinpath("reference/fields.toml").read_text("utf-8"))
    specs: dict[str, FieldSpec] = {}
    for name, entry in raw["fields"].items():
        alternatives = tuple(
            Alternative(
                alt_name,
                str(alt["unit"]),
                float(alt.get("factor", 1.0)),
                float(alt["divide_by"]) if "divide_by" in alt else None,
            )
            for alt_name, alt in entry.get("alternatives", {}).items()
        )
        specs[name] = FieldSpec(
            name=name,
            kind=entry["kind"],
            unit=entry.get("unit"),
            min=entry.get("min"),
            max=entry.get("max"),
            values=tuple(entry.get("values", ())),
            labels=dict(entry.get("labels", {})),
            alternatives=alternatives,
            group=entry.get("group", "primary"),
            trials=int(entry.get("trials", 0)),
            label=str(entry.get("label", "")),
        )
    return specs


def to_canonical(input_name: str, value: float) -> float:
    """A value given under an input name (height_cm, grip_lb) in its field's canonical unit,
    rounded at 1e-9 as the engine rounds it (binary conversion error only)."""
    spec, alternative_name = input_columns()[input_name]
    alternative = spec.alternative(alternative_name)
    return value if alternative is None else round(alternative.to_canonical(value), 9)


TRIALS_SUFFIX = "_trials"


@cache
def trial_inputs() -> dict[str, tuple[FieldSpec, str]]:
    """Every list of trials a record may carry: its name → (field, the unit input it is in)."""
    found: dict[str, tuple[FieldSpec, str]] = {}
    for spec in field_specs().values():
        if spec.trials:
            for name in (spec.name, *(a.name for a in spec.alternatives)):
                found[f"{name}{TRIALS_SUFFIX}"] = (spec, name)
    return found


def trials_name(input_name: str) -> str | None:
    """The name of the list of trials of this unit input, if its field is a repeated test."""
    name = f"{input_name}{TRIALS_SUFFIX}"
    return name if name in trial_inputs() else None


@cache
def input_columns() -> dict[str, tuple[FieldSpec, str | None]]:
    """Every column a record may carry: name → (field, alternative name or None)."""
    columns: dict[str, tuple[FieldSpec, str | None]] = {}
    for spec in field_specs().values():
        columns[spec.name] = (spec, None)
        for alternative in spec.alternatives:
            columns[alternative.name] = (spec, alternative.name)
    return columns


@dataclass(frozen=True)
class Problem:
    """Why a value was rejected: the field, the value, what was expected, in one sentence."""

    field: str
    value: Any
    expected: str
    message: str
    # What kind of problem, for a reader-language message at the edge: "range", "not_number",
    # "not_whole", "not_recognised", "conflict" (empty when only the message says).
    code: str = ""
    # For a value plausible in another of the field's units: that unit's input name.
    suggestion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready data."""
        return {
            "field": self.field,
            "value": self.value,
            "expected": self.expected,
            "message": self.message,
        }


class InputError(ValueError):
    """A record could not be read; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def _fold(label: str) -> str:
    return re.sub(r"\s+", " ", label.strip().casefold())


def _parse_number(name: str, spec: FieldSpec, value: Any) -> float | int:
    given = value.strip() if isinstance(value, str) else value
    if isinstance(value, bool):
        raise _problem(name, value, spec, "a boolean is not a number", "not_number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = (
                float(text)
                if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text)
                else None
            )
        except ValueError:
            value = None
        if value is None:
            raise _problem(name, text, spec, "not a number", "not_number")
    if not isinstance(value, int | float) or not math.isfinite(value):
        # Named as typed: "1e309", not the infinity it overflowed to.
        raise _problem(name, given, spec, "not a finite number", "not_number")
    if spec.kind == "integer":
        if float(value) != int(value):
            raise _problem(name, value, spec, "not a whole number", "not_whole")
        return int(value)
    return float(value)


def _problem(name: str, value: Any, spec: FieldSpec, why: str, code: str = "") -> InputError:
    expected = spec.expected(name if name != spec.name else None)
    message = f"{name} = {value!r}: {why}; expected {expected}"
    return InputError([Problem(name, value, expected, message, code)])


def _parse_value(name: str, spec: FieldSpec, value: Any, sex_coding: Mapping[Any, str]) -> Any:
    if spec.kind == "text":
        return str(value)
    if spec.kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | str) and _fold(str(value)) in _TRUE | _FALSE:
            return _fold(str(value)) in _TRUE
        raise _problem(name, value, spec, "not a yes/no answer")
    if spec.kind == "category":
        if name == "sex" and sex_coding:
            key = value if value in sex_coding else str(value)
            if key in sex_coding:
                return sex_coding[key]
            codes = ", ".join(f"{k}={v}" for k, v in sex_coding.items())
            raise InputError(
                [
                    Problem(
                        name,
                        value,
                        f"a declared code ({codes})",
                        f"sex = {value!r} is not one of the declared codes ({codes})",
                    )
                ]
            )
        if isinstance(value, str):
            folded = _fold(value)
            if folded in spec.values:
                return folded
            if value.strip() in spec.labels:
                return spec.labels[value.strip()]
        # Said in terms of the record, not of one surface: the command line names its own option.
        hint = (
            " (codes such as 1/2 are read only with a declared sex coding)" if name == "sex" else ""
        )
        raise _problem(name, value, spec, "not a recognised value" + hint)
    if isinstance(value, str) and spec.labels:
        labels = {_fold(k): v for k, v in spec.labels.items()}
        if _fold(value) in labels:
            return labels[_fold(value)]
    return _parse_number(name, spec, value)


def parse_record(
    record: Mapping[str, Any], sex_coding: Mapping[Any, str] | None = None
) -> dict[str, Any]:
    """Check one input record's names and types; labels and codes become values.

    Raises InputError naming every field that cannot be read. Units and ranges are checked
    later, in columns, so that frames and records share one validation.
    """
    columns = input_columns()
    problems: list[Problem] = []
    row: dict[str, Any] = {}
    for name, value in record.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name in trial_inputs():
            try:
                row[name] = _parse_trials(name, value)
            except InputError as error:
                problems.extend(error.problems)
            continue
        if name == CONDITIONS:
            try:
                row[CONDITIONS] = _parse_conditions(value)
            except InputError as error:
                problems.extend(error.problems)
            continue
        if name not in columns:
            problems.append(_unknown_field(name, value))
            continue
        spec, _ = columns[name]
        try:
            row[name] = _parse_value(name, spec, value, sex_coding or {})
        except InputError as error:
            problems.extend(error.problems)
    for name in [n for n in row if n in trial_inputs()]:
        # The best trial is the value, in the unit the trials were given in.
        spec, unit_input = trial_inputs()[name]
        trials = row.pop(name)
        given = [n for n in (spec.name, *(a.name for a in spec.alternatives)) if n in row]
        if given:
            problems.append(_conflict(given[0], name, row[given[0]]))
        else:
            row[unit_input] = max(trials)
    if problems:
        raise InputError(problems)
    return row


def _parse_trials(name: str, value: Any) -> list[float]:
    spec, unit_input = trial_inputs()[name]
    unit = spec.plausible(unit_input)[2]
    expected = f"a list of 1 to {spec.trials} values in {unit}"
    if not isinstance(value, list | tuple) or not value or len(value) > spec.trials:
        shown = f"{len(value)} trials" if isinstance(value, list | tuple) and value else value
        message = f"{name} = {shown!r}: expected {expected}"
        raise InputError([Problem(name, shown, expected, message, "trials")])
    problems: list[Problem] = []
    trials: list[float] = []
    low, high, _ = spec.plausible(unit_input)
    for number, trial in enumerate(value, start=1):
        # Each trial is named with its number, so a clinician knows which one to fix.
        where = f"{name}[{number}]"
        try:
            parsed = float(_parse_number(unit_input, spec, trial))
        except InputError as error:
            problems.extend(
                Problem(where, p.value, p.expected, f"trial {number}: {p.message}", p.code)
                for p in error.problems
            )
            continue
        if (low is not None and parsed < low) or (high is not None and parsed > high):
            slip = unit_slip(spec, unit_input if unit_input != spec.name else None, parsed)
            message = f"trial {number} of {name} = {parsed:g} is outside the plausible range"
            hint = f". Did you mean {slip[0]} (the value in {slip[1]})?" if slip else ""
            problems.append(
                Problem(
                    where,
                    parsed,
                    spec.expected(unit_input),
                    f"{message}; expected {spec.expected(unit_input)}{hint}",
                    "range",
                    slip[0] if slip else None,
                )
            )
            continue
        trials.append(parsed)
    if problems:
        raise InputError(problems)
    return trials


def _parse_conditions(value: Any) -> list[str]:
    """A list of codes or names, or one string separated by ';' or ','."""
    if isinstance(value, str):
        items = [part.strip() for part in re.split(r"[;,]", value)]
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        expected = "a list of ICD-10 codes or condition names"
        raise InputError(
            [Problem(CONDITIONS, value, expected, f"{CONDITIONS} = {value!r}: expected {expected}")]
        )
    return [item for item in items if item]


def _unknown_field(name: str, value: Any) -> Problem:
    # Canonical names first: 'grip' should suggest grip_kg, not the alternative grip_lb.
    close = difflib.get_close_matches(name, list(field_specs()), n=1) or difflib.get_close_matches(
        name, [*input_columns(), *trial_inputs(), CONDITIONS], n=1
    )
    hint = f"; did you mean {close[0]}?" if close else ""
    return Problem(name, value, "a field of the subject record", f"unknown field {name!r}{hint}")


def _conflict(first: str, second: str, value: Any) -> Problem:
    return Problem(
        first,
        value,
        f"either {first} or {second}, not both",
        f"{first} and {second} are both given; give one of them",
        "conflict",
    )


# ---------------------------------------------------------------------------------------------
# Columnar validation and unit conversion, shared by single records and whole frames.


def conversion_sources() -> dict[str, list[str]]:
    """For each canonical field, the input columns that can supply it."""
    sources = {
        name: [name, *(a.name for a in spec.alternatives)] for name, spec in field_specs().items()
    }
    sources[GAIT_SPEED] = [GAIT_SPEED, WALK_DISTANCE]
    return sources


# Up to this many codes, a text column is compared with each rather than tested with `is_in`:
# Polars' `is_in` on text costs about as much as eight equality tests (it hashes every value).
EQUALITY_CODES = 6


def one_of(column: nw.Expr, codes: Sequence[str]) -> nw.Expr:
    """Whether a text column holds one of the codes (null where it is null)."""
    if 0 < len(codes) <= EQUALITY_CODES:
        return nw.any_horizontal([column == code for code in codes], ignore_nulls=False)
    return column.is_in(list(codes))


def _out_of_range(name: str, spec: FieldSpec, alternative: Alternative | None) -> nw.Expr | None:
    column = nw.col(name)
    if spec.kind == "category":
        return ~column.is_null() & ~one_of(column, spec.values)
    if spec.kind not in ("number", "integer") or spec.min is None or spec.max is None:
        return None
    low = spec.min if alternative is None else _from_canonical(alternative, spec.min)
    high = spec.max if alternative is None else _from_canonical(alternative, spec.max)
    bad = (column < low) | (column > high)
    if spec.kind == "integer":
        bad = bad | (column.round(0) != column)
    return bad


def problem_tokens(present: Collection[str]) -> list[tuple[str, nw.Expr]]:
    """Columnar checks: (token, expression true where the row has that problem).

    A token is a column name (value out of range) or 'a/b' (both a and b given). Only columns
    the input has are checked: an absent column is all null and can have no problem.
    """
    checks: list[tuple[str, nw.Expr]] = []
    for name, (spec, alternative_name) in input_columns().items():
        bad = _out_of_range(name, spec, spec.alternative(alternative_name))
        if bad is not None and name in present:
            checks.append((name, bad))
    for canonical, names in conversion_sources().items():
        for other in names[1:]:
            if canonical not in present or other not in present:
                continue
            both = ~nw.col(canonical).is_null() & ~nw.col(other).is_null()
            checks.append((f"{canonical}/{other}", both))
    return checks


def canonical_exprs() -> list[nw.Expr]:
    """Canonical fields filled from whichever unit the input used."""
    exprs: list[nw.Expr] = []
    for name, spec in field_specs().items():
        if spec.alternatives:
            # Rounding at 1e-9 removes binary representation error from the conversion (165 cm
            # × 0.01 is 1.6500000000000001); it cannot change a value given to fewer decimals.
            converted = (a.expr().round(9) for a in spec.alternatives)
            exprs.append(nw.coalesce(nw.col(name), *converted).alias(name))
    speed = nw.col(WALK_DISTANCE) / nw.col(WALK_TIME)
    exprs.append(nw.coalesce(nw.col(GAIT_SPEED), speed.round(9)).alias(GAIT_SPEED))
    return exprs


def describe_token(token: str, row: Mapping[str, Any]) -> Problem:
    """Turn a columnar problem token into a sentence naming field, value and what was expected."""
    if "/" in token:
        first, second = token.split("/")
        if second == WALK_DISTANCE:
            second = f"{WALK_DISTANCE} + {WALK_TIME}"
        return _conflict(first, second, row.get(first))
    spec, alternative_name = input_columns()[token]
    value = row.get(token)
    expected = spec.expected(alternative_name)
    message = f"{token} = {value!r} is outside the plausible range; expected {expected}"
    code = "range"
    if spec.kind == "category":
        message = f"{token} = {value!r} is not recognised; expected {expected}"
        code = "not_recognised"
    slip = unit_slip(spec, alternative_name, value)
    if slip:
        message += f". Did you mean {slip[0]} (the value in {slip[1]})?"
    return Problem(token, value, expected, message, code, slip[0] if slip else None)


def unit_slip(spec: FieldSpec, given: str | None, value: Any) -> tuple[str, str] | None:
    """Another unit of the same field in which the value would be plausible: (input, unit)."""
    if not isinstance(value, int | float) or spec.min is None or spec.max is None:
        return None
    units = [(spec.name, spec.unit or "", None), *((a.name, a.unit, a) for a in spec.alternatives)]
    for name, unit, alternative in units:
        if name == given or (given is None and name == spec.name):
            continue
        canonical = value if alternative is None else alternative.to_canonical(value)
        if spec.min <= canonical <= spec.max:
            return name, unit
    return None


def _dtype_fits(kind: Kind, dtype: nw.dtypes.DType) -> bool:
    if kind in ("number", "integer"):
        return dtype.is_numeric()
    if kind == "boolean":
        return dtype == nw.Boolean
    return dtype == nw.String or dtype == nw.Categorical or dtype == nw.Enum


def check_frame_types(schema: Mapping[str, nw.dtypes.DType]) -> None:
    """Reject a frame whose input columns have a type no value of the field can have."""
    problems = []
    for name, dtype in schema.items():
        if name == "id" or name not in input_columns():
            continue
        spec, _ = input_columns()[name]
        if dtype == nw.Unknown or dtype == nw.Object:  # all-null or untyped: values decide
            continue
        if not _dtype_fits(spec.kind, dtype):
            expected = {"number": "numbers", "integer": "whole numbers", "boolean": "booleans"}
            wanted = expected.get(spec.kind, "text")
            problems.append(
                Problem(
                    name,
                    str(dtype),
                    f"a column of {wanted}",
                    f"column {name} has type {dtype}; expected a column of {wanted}",
                )
            )
    if problems:
        raise InputError(problems)


def validation_error_column(present: Collection[str]) -> nw.Expr:
    """A string column listing every problem token of the row, or null when the row is valid."""
    checks = problem_tokens(present)
    if not checks:
        return nw.lit(None, dtype=nw.String())
    flags = [bad.fill_null(False) for _, bad in checks]
    tokens = [
        nw.when(flag).then(nw.lit(token)) for (token, _), flag in zip(checks, flags, strict=True)
    ]
    joined = nw.concat_str(tokens, separator=" ", ignore_nulls=True)
    # Almost every row is valid; guarding the text with a cheap Boolean made this stage ~30%
    # faster on Polars (0.38 → 0.27 s per 3 M rows), the same answer either way.
    return nw.when(nw.any_horizontal(flags, ignore_nulls=False)).then(joined)
