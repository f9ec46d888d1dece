"""Mapping files: which columns of a cohort's files become which fields of the subject record.

A mapping file is TOML::

    [mapping]
    name = "NHANES 2011-2014"     # a label for reports
    id = "SEQN"                   # the column that becomes the record's `id`
    key = "SEQN"                  # optional: the column several input files are joined on
    keep = ["WTMEC2YR"]           # optional: columns passed through unchanged (weights, strata)

    [fields.sex]                  # a field of the subject record, or its name in another unit
    column = "RIAGENDR"           # the source: exactly one of column, max_of, mean_of, sum_of,
                                  # constant
    values = { 1 = "male", 2 = "female" }    # optional, with column: source code → field value
    unit = "g"                    # optional: the unit of the source
    factor = 0.001                # only for a unit sarcokit does not know: field = source × factor
    optional = true               # optional: leave the field out when none of its columns exists

Reading options may be declared in [mapping] too (the command line overrides them):
`na = ["NA", ".", "-999"]` missing-value codes (default NA, N/A, ., empty), `decimal = ","` for
comma decimals, `header_rows = 2` for a spreadsheet header over two rows, `visit = "wave"` for a
column that tells repeated measurements of one id apart.

Sources: `column` copies one column. `max_of` is the best of the trials done (a null trial was
not done; all null is null). `mean_of` averages the trials done. `sum_of` adds parts and is null
when any part is null (a limb not measured is not 0 g). `constant` is one value for every row.

Units: a field's name carries its unit (height_m, grip_kg). A source in a unit that fields.toml
lists for the field (height_cm, weight_lb, asm_g, ...) is written to that column, so the engine
converts it and checks its range in one place: name the target height_cm, or write
`unit = "cm"` under height_m. A unit fields.toml does not list needs `factor`.

Value maps: a non-null source value that is not in the map leaves the field null and names
itself in the row's `mapping_problems` ("sex: 3 not in map"), so the row can be rejected with a
reason. A text value mapped to a number field that is not a number is named there too.

A timed walk is two fields: walk_distance_m (often a constant) and walk_time_s; the engine
computes gait speed = distance / time.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import polars as pl

from sarcokit.cohort.readers import DEFAULT_NA
from sarcokit.fields import (
    _FALSE,
    _TRUE,
    GAIT_SPEED,
    WALK_DISTANCE,
    WALK_TIME,
    FieldSpec,
    Kind,
    field_specs,
    input_columns,
)

Source = Literal["column", "max_of", "mean_of", "sum_of", "constant"]
_SOURCES: tuple[Source, ...] = get_args(Source)
_FIELD_KEYS = (*_SOURCES, "values", "unit", "factor", "optional")
_MAPPING_KEYS = ("name", "id", "key", "keep", "na", "decimal", "header_rows", "visit")
ID = "id"
PROBLEMS = "mapping_problems"
# Staged columns, dropped by the final select.
_TEXT, _NUMBER, _FIELD, _CHECK = "_text:", "_number:", "_field:", "_check:"
_DIRECT = "_direct:"
_TYPES: dict[Kind, pl.DataType] = {
    "text": pl.String(),
    "number": pl.Float64(),
    "integer": pl.Int64(),
    "boolean": pl.Boolean(),
    "category": pl.String(),
}


class MappingError(ValueError):
    """A mapping file is wrong or does not fit its input; one line per problem, naming the file."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class FieldMap:
    """One [fields.<target>] table: where a field of the subject record comes from."""

    target: str  # the name in the mapping file
    canonical: str  # the field of the subject record it supplies
    output: str  # the column written: the field, or the field's name in the source's unit
    kind: Kind
    source: Source
    columns: tuple[str, ...] = ()
    constant: Any = None
    values: dict[str, Any] = field(default_factory=dict)  # source code as written → field value
    factor: float | None = None
    optional: bool = False


@dataclass(frozen=True)
class Mapping:
    """A checked mapping file."""

    path: Path
    name: str
    id: str
    key: str | None
    keep: tuple[str, ...]
    fields: tuple[FieldMap, ...]
    na: tuple[str, ...] | None = None
    decimal: str = "."
    header_rows: int | None = None
    visit: str | None = None
    implicit: bool = False  # made from the input's column names: no id column is needed

    def used_columns(self) -> set[str]:
        """Every source column the mapping reads."""
        used = {self.id, *self.keep, *(c for f in self.fields for c in f.columns)}
        return used | ({self.key} if self.key else set()) | ({self.visit} if self.visit else set())

    def skipped(self, columns: Collection[str]) -> tuple[str, ...]:
        """Optional fields left out because none of their columns is in the input."""
        return tuple(
            f.target
            for f in self.fields
            if f.optional and not any(column in columns for column in f.columns)
        )


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping file and check it against the subject record; MappingError lists all."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(path, [f"cannot be read: {error}"]) from error
    except tomllib.TOMLDecodeError as error:
        raise MappingError(path, [f"is not valid TOML: {error}"]) from error
    problems: list[str] = [
        f"unknown table [{name}]; expected [mapping] and [fields.<field>] tables"
        for name in raw
        if name not in ("mapping", "fields")
    ]
    header = raw.get("mapping", {})
    if not isinstance(header, dict) or not header:
        problems.append("no [mapping] table; expected one with name and id")
        header = {}
    _unknown_keys("[mapping]", header, _MAPPING_KEYS, problems)
    name = _text(header, "name", "[mapping]", problems)
    record_id = _text(header, "id", "[mapping]", problems)
    key = _text(header, "key", "[mapping]", problems) if "key" in header else None
    keep = _texts(header, "keep", "[mapping]", problems) if "keep" in header else ()
    blocks = raw.get("fields", {})
    if not isinstance(blocks, dict) or not blocks:
        problems.append("no [fields.<field>] tables; expected at least one")
        blocks = {}
    maps = [m for target, block in blocks.items() if (m := _field_map(target, block, problems))]
    _check_together(maps, keep, problems)
    na = _texts(header, "na", "[mapping]", problems) if "na" in header else None
    decimal = header.get("decimal", ".")
    if decimal not in (".", ","):
        problems.append(f"[mapping] decimal = {decimal!r}; expected '.' or ','")
    header_rows = header.get("header_rows")
    if header_rows is not None and (not isinstance(header_rows, int) or header_rows < 1):
        problems.append(f"[mapping] header_rows = {header_rows!r}; expected a whole number >= 1")
    visit = _text(header, "visit", "[mapping]", problems) if "visit" in header else None
    if problems or name is None or record_id is None:
        raise MappingError(path, problems)
    return Mapping(
        path, name, record_id, key, keep, tuple(maps), na, str(decimal), header_rows, visit
    )


def identity_mapping(columns: Sequence[str], name: str = "input columns") -> Mapping:
    """The mapping a file without one gets: every subject-record column as itself."""
    fields = []
    for column in columns:
        if column == ID or column not in input_columns():
            continue
        spec, _ = input_columns()[column]
        if spec.kind not in _TYPES:
            continue
        fields.append(FieldMap(column, spec.name, column, spec.kind, "column", columns=(column,)))
    return Mapping(Path(name), name, ID, None, (), tuple(fields), implicit=True)


def apply_mapping(
    frame: pl.LazyFrame,
    mapping: Mapping,
    *,
    keep: Sequence[str] = (),
    na_values: Sequence[str] | None = None,
    decimal: str | None = None,
) -> pl.LazyFrame:
    """The input as subject-record columns: id, the mapped fields, kept columns, problems.

    Lazy: every field is a Polars expression. `keep` passes further columns through, such as a
    row number the caller added. MappingError names each column the mapping needs that the
    input lacks or has in a type the field cannot take. Cells equal to a missing-value code
    (`na_values`, else the mapping's `na`, else NA, N/A, ., empty) are missing; numbers with
    a comma decimal are read only when `decimal` (or the mapping) is ",".
    """
    schema = frame.collect_schema()
    problems: list[str] = []
    kept = list(dict.fromkeys([*mapping.keep, *keep]))
    reading = _Reading(
        tuple(na_values if na_values is not None else (mapping.na or DEFAULT_NA)),
        (decimal or mapping.decimal) == ",",
    )
    numbers = {
        c
        for f in mapping.fields
        if f.kind in ("number", "integer") and not f.values and f.source != "constant"
        for c in f.columns
        if c in schema and schema[c] == pl.String
    }
    frame, reading = reading.stage(frame, sorted(numbers))
    implicit_id = mapping.implicit and mapping.id not in schema
    named = [] if implicit_id else [(mapping.id, "id")]
    for name, role in [*named, *((k, "keep") for k in kept)]:
        if name not in schema:
            problems.append(f"[mapping] {role}: {_absent(name, schema.names())}")
    skipped = mapping.skipped(schema.names())
    exprs: list[pl.Expr] = []
    checks: list[pl.Expr] = []
    for field_map in mapping.fields:
        if field_map.target in skipped:
            continue
        missing = [c for c in field_map.columns if c not in schema]
        for column in missing:
            why = _absent(column, schema.names())
            if field_map.optional:
                why += " (an optional field is left out only when all its columns are absent)"
            problems.append(f"[fields.{field_map.target}] {why}")
        if not missing:
            expr, field_checks = _field_expr(field_map, schema, problems, reading)
            exprs.append(expr)
            checks += field_checks
    written = {ID, PROBLEMS, *(f.output for f in mapping.fields)}
    problems += [
        f"keep: {name!r} is also a column the mapping writes" for name in keep if name in written
    ]
    id_expr = _id_expr(mapping.id, schema, problems) if mapping.id in schema else None
    if implicit_id:
        id_expr = pl.lit(None, dtype=pl.String).alias(ID)
    if problems or id_expr is None:
        raise MappingError(mapping.path, problems)
    # Fields and checks are computed in one step into columns of their own, and joined into
    # the problem text in the next: one expression holding all of them made Polars' optimiser
    # take minutes on wide files.
    outputs = [e.meta.output_name() for e in exprs]
    frame = frame.with_columns(
        *(e.alias(_FIELD + name) for e, name in zip(exprs, outputs, strict=True)),
        *(c.alias(f"{_CHECK}{i}") for i, c in enumerate(checks)),
    )
    names = [pl.col(f"{_CHECK}{i}") for i in range(len(checks))]
    found = pl.concat_str(names, separator="; ", ignore_nulls=True) if checks else pl.lit("")
    return frame.select(
        id_expr,
        *(pl.col(_FIELD + name).alias(name) for name in outputs),
        *(pl.col(name) for name in kept),
        pl.when(found != "").then(found).alias(PROBLEMS),
    )


def _field_map(target: str, block: Any, problems: list[str]) -> FieldMap | None:
    where = f"[fields.{target}]"
    if target == ID:
        problems.append(f"{where}: the record id is set by id = ... in [mapping]")
        return None
    if target not in input_columns():
        close = _closest_field(target)
        hint = f"; did you mean {close}?" if close else ""
        problems.append(f"{where}: {target!r} is not a field of the subject record{hint}")
        return None
    if not isinstance(block, dict):
        problems.append(f"{where}: expected a table of keys, found {block!r}")
        return None
    _unknown_keys(where, block, _FIELD_KEYS, problems)
    spec, alternative = input_columns()[target]
    sources = [s for s in _SOURCES if s in block]
    if len(sources) != 1:
        found = ", ".join(sources) or "none"
        problems.append(f"{where}: expected exactly one of {', '.join(_SOURCES)}; found {found}")
        return None
    source = sources[0]
    columns: tuple[str, ...] = ()
    if source == "column":
        column = _text(block, "column", where, problems)
        columns = (column,) if column else ()
    elif source != "constant":
        columns = _texts(block, source, where, problems)
        if spec.kind not in ("number", "integer"):
            problems.append(f"{where}: {source} combines numbers; {target} is a {spec.kind}")
    if source == "constant":
        _check_value(f"{where} constant", spec, alternative, block["constant"], problems)
    values = block.get("values", {})
    if "values" in block:
        if source != "column" or not isinstance(values, dict) or not values:
            problems.append(f"{where}: values must be a table of codes, with column")
            values = {}
        for code, value in values.items():
            _check_value(f"{where} values.{code}", spec, alternative, value, problems)
    optional = block.get("optional", False)
    if not isinstance(optional, bool) or (optional and source == "constant"):
        problems.append(f"{where}: optional must be true or false, on a field read from columns")
    output, factor = _unit(where, target, spec, alternative, block, problems)
    return FieldMap(
        target=target,
        canonical=spec.name,
        output=output,
        kind=spec.kind,
        source=source,
        columns=columns,
        constant=block.get("constant"),
        values=values,
        factor=factor,
        optional=optional is True,
    )


def _closest_field(name: str) -> str | None:
    score = {c: difflib.SequenceMatcher(None, name, c).ratio() for c in input_columns()}
    # On a tie the canonical name wins: 'grip' should suggest grip_kg, not grip_lb.
    best = max(score, key=lambda c: (score[c], c in field_specs()))
    return best if score[best] >= 0.6 else None


def _check_value(
    where: str, spec: FieldSpec, alternative: str | None, value: Any, problems: list[str]
) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    fits = {
        "category": isinstance(value, str) and value in spec.values,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": number,
        "text": isinstance(value, str),
    }[spec.kind]
    if not fits:
        problems.append(f"{where} = {value!r}; expected {spec.expected(alternative)}")


def _unit(
    where: str,
    target: str,
    spec: FieldSpec,
    alternative: str | None,
    block: dict[str, Any],
    problems: list[str],
) -> tuple[str, float | None]:
    """The column to write, and the factor to apply for a unit sarcokit does not know."""
    unit, factor = block.get("unit"), block.get("factor")
    if unit is None:
        if factor is not None:
            problems.append(f"{where}: factor needs unit = the unit of the source")
        return target, None
    if spec.kind not in ("number", "integer") or not isinstance(unit, str):
        problems.append(f"{where}: unit = {unit!r}; expected a unit name, on a number field")
        return target, None
    known = {str(spec.unit): spec.name} | {a.unit: a.name for a in spec.alternatives}
    if alternative is not None and known.get(unit) != target:
        problems.append(
            f"{where}: {target} is a field in another unit already; unit = {unit!r} contradicts "
            f"it (name the target {spec.name} to give the source's unit)"
        )
        return target, None
    if unit in known:
        if factor is not None:
            problems.append(
                f"{where}: sarcokit converts {unit} itself (as {known[unit]}); remove factor"
            )
        return known[unit], None
    if not isinstance(factor, int | float) or isinstance(factor, bool) or factor <= 0:
        problems.append(
            f"{where}: unit {unit!r} is not one sarcokit converts for {spec.name} (it knows "
            f"{', '.join(known)}); give factor = the number of {spec.unit} in one {unit}"
        )
        return target, None
    return spec.name, float(factor)


def _check_together(maps: list[FieldMap], keep: tuple[str, ...], problems: list[str]) -> None:
    """Two sources for one field would be a guess; half a timed walk gives no speed."""
    seen: dict[str, str] = {}
    for field_map in maps:
        if field_map.canonical in seen:
            problems.append(
                f"[fields.{field_map.target}] and [fields.{seen[field_map.canonical]}] both "
                f"supply {field_map.canonical}; keep one"
            )
        seen[field_map.canonical] = field_map.target
    walk = [name for name in (WALK_DISTANCE, WALK_TIME) if name in seen]
    if GAIT_SPEED in seen and walk:
        problems.append(
            f"[fields.{seen[GAIT_SPEED]}] and [fields.{walk[0]}] both supply gait speed; keep one"
        )
    elif len(walk) == 1:
        other = WALK_TIME if walk[0] == WALK_DISTANCE else WALK_DISTANCE
        problems.append(f"[fields.{walk[0]}] needs [fields.{other}]: gait speed is distance / time")
    outputs = {ID, PROBLEMS, *(m.output for m in maps)}
    for name in keep:
        if name in outputs:
            problems.append(f"[mapping] keep: {name!r} is also a column the mapping writes")


@dataclass(frozen=True)
class _Reading:
    na: tuple[str, ...]
    decimal_comma: bool
    staged: frozenset[str] = frozenset()  # text columns already parsed into _TEXT/_NUMBER

    def stage(self, frame: pl.LazyFrame, columns: Collection[str]) -> tuple[pl.LazyFrame, _Reading]:
        """Parse text number columns once, in steps, so no expression is computed twice."""
        frame = frame.with_columns(
            pl.col(c).cast(pl.Float64, strict=False).alias(_DIRECT + c) for c in columns
        )
        frame = frame.with_columns(
            self._text(pl.col(c), self._plain(pl.col(_DIRECT + c))).alias(_TEXT + c)
            for c in columns
        )
        frame = frame.with_columns(
            self._number(pl.col(_DIRECT + c), pl.col(_TEXT + c)).alias(_NUMBER + c) for c in columns
        )
        return frame, _Reading(self.na, self.decimal_comma, frozenset(columns))

    def parse(self, cell: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """A text column's cells as numbers: (what is left to read as text, the numbers).

        The first is null where the cell is missing or already read as a finite number; else
        it is the cell trimmed (null when a missing-value code). The second is the number, read
        from the cell as written or else from that text (null if neither reads, or missing).
        """
        direct = cell.cast(pl.Float64, strict=False)
        text = self._text(cell, self._plain(direct))
        return text, self._number(direct, text)

    def _plain(self, direct: pl.Expr) -> pl.Expr:
        """Cells read as a finite number as written, and not a missing-value code such as -999.

        Most cells of a cohort file are such plain numbers: they are read once and never
        trimmed or looked up among the codes, the per-cell work of the text path.
        """
        numbers = pl.Series([c.strip() for c in self.na]).cast(pl.Float64, strict=False)
        codes = numbers.filter(numbers.is_finite()).to_list()
        plain = direct.is_finite().fill_null(False)
        return plain & ~direct.is_in(codes) if codes else plain

    def _text(self, cell: pl.Expr, plain: pl.Expr) -> pl.Expr:
        """The cells that are not plain numbers, trimmed; null where missing (or plain)."""
        trimmed = pl.when(~plain).then(cell).str.strip_chars()
        text = pl.when(~trimmed.is_in([c.strip() for c in self.na])).then(trimmed)
        return text.str.replace(",", ".", literal=True) if self.decimal_comma else text

    def _number(self, direct: pl.Expr, text: pl.Expr) -> pl.Expr:
        """The plain number, else the text read as one."""
        parsed = text.cast(pl.Float64, strict=False)
        return pl.when(self._plain(direct)).then(direct).otherwise(parsed)

    def missing(self, column: str, dtype: pl.DataType) -> pl.Expr:
        """The column with its missing-value codes as null (text trimmed first)."""
        source = pl.col(column)
        if dtype == pl.String:
            return self.missing_in(source)
        if dtype.is_numeric():
            numbers = [n for c in self.na if (n := _code_number(c.strip(), dtype)) is not None]
            if numbers:
                return pl.when(~source.is_in(numbers)).then(source)
        return source

    def missing_in(self, text: pl.Expr) -> pl.Expr:
        """Text cells with the missing-value codes as null (trimmed first)."""
        codes = [c.strip() for c in self.na]
        return pl.when(~text.str.strip_chars().is_in(codes)).then(text)


def _lookup(
    cell: pl.Expr, table: dict[Any, Any], dtype: pl.DataType, otherwise: pl.Expr | None = None
) -> pl.Expr:
    """The value `table` gives each cell, `otherwise` (null) for any other: comparisons.

    Not `replace_strict`: Polars' streaming engine runs that on whole columns, so the one pass
    over a cohort file held every row of the mapped columns until the end (peak memory grew by
    about 0.6 GB per million rows). Comparisons stream, batch by batch.
    """
    rest = pl.lit(None, dtype=dtype) if otherwise is None else otherwise
    chain: Any = pl
    for key, value in table.items():
        chain = chain.when(cell == key).then(pl.lit(value, dtype=dtype))
    if chain is pl:
        return rest
    result: pl.Expr = chain.otherwise(rest)
    return result


def _shortcut(
    cell: pl.Expr, read: Callable[[pl.Expr], pl.Expr], spellings: Sequence[str]
) -> tuple[pl.Expr, pl.Expr]:
    """`read(cell)`, with the usual spellings compared rather than read; and the other cells.

    A cohort file writes its answers a few ways ("female", "true"). What `read` makes of
    each of those is worked out once, on the spellings themselves, so the result is exactly
    `read(cell)`; cells equal to one take it by a plain comparison. Only the other cells
    (null elsewhere in the second expression) go through `read`'s trimming, case folding and
    look-ups, which Polars skips on a column with no value. A spelling `read` makes null
    (a missing-value code) is left to `read`.
    """
    frame = pl.DataFrame({"cell": list(dict.fromkeys(spellings))}, schema={"cell": pl.String})
    known = frame.with_columns(read(pl.col("cell")).alias("value")).drop_nulls("value")
    pairs = list(known.iter_rows())
    if not pairs:
        return read(cell), cell
    hit = pl.any_horizontal(cell == spelling for spelling, _ in pairs)
    rest = pl.when(~hit).then(cell)
    return _lookup(cell, dict(pairs), known.schema["value"], otherwise=read(rest)), rest


def _field_expr(
    field_map: FieldMap, schema: pl.Schema, problems: list[str], reading: _Reading | None = None
) -> tuple[pl.Expr, list[pl.Expr]]:
    """The field as an expression, and the per-row problem messages it can raise."""
    reading = reading or _Reading(DEFAULT_NA, decimal_comma=False)
    where = f"[fields.{field_map.target}]"
    checks: list[pl.Expr | None] = []
    if field_map.source == "constant":
        expr = pl.lit(field_map.constant, dtype=_TYPES[field_map.kind])
    elif field_map.values:
        expr, value_check = _value_map(field_map, schema, problems, reading)
        checks.append(value_check)
    elif field_map.kind in ("number", "integer"):
        parts = []
        for column in field_map.columns:
            part, check = _number(
                field_map.target, column, schema[column], where, problems, reading
            )
            parts.append(part)
            checks.append(check)
        match field_map.source:
            case "max_of":
                expr = pl.max_horizontal(parts)
            case "mean_of":
                expr = pl.mean_horizontal(parts)
            case "sum_of":
                expr = pl.sum_horizontal(parts, ignore_nulls=False)
            case _:
                expr = parts[0]
    else:
        expr, as_is_check = _as_is(field_map, schema, where, problems, reading)
        checks.append(as_is_check)
    if field_map.factor is not None:
        # Rounding at 1e-9, as the engine does for its own conversions, removes binary error
        # (1655 mm × 0.001 is 1.6550000000000002); it cannot change a value given to fewer places.
        expr = (expr * field_map.factor).round(9)
    return expr.alias(field_map.output), [c for c in checks if c is not None]


def _number(
    target: str,
    column: str,
    dtype: pl.DataType,
    where: str,
    problems: list[str],
    reading: _Reading | None = None,
) -> tuple[pl.Expr, pl.Expr | None]:
    """A numeric input; text is read as numbers, and text that is not one is a row problem."""
    reading = reading or _Reading(DEFAULT_NA, decimal_comma=False)
    source = reading.missing(column, dtype)
    if dtype.is_numeric():
        return source, None
    if dtype == pl.Null:
        return source.cast(pl.Float64), None
    if dtype == pl.String:
        # A cell that is not a number (17.5 kg, abc, 17,5 undeclared) rejects its row, named;
        # the other rows are still good. The message is built from a column that is null except
        # on bad rows, so clean rows cost no string formatting.
        if column in reading.staged:
            text, parsed = pl.col(_TEXT + column), pl.col(_NUMBER + column)
        else:
            text, parsed = reading.parse(pl.col(column))
        bad = text.is_not_null() & (parsed.is_null() | parsed.is_infinite() | parsed.is_nan())
        bad_value = pl.when(bad).then(pl.col(column))
        parts = [pl.lit(f"{target}: {column} = '"), bad_value, pl.lit("' is not a number")]
        if not reading.decimal_comma:
            hint = " (a comma decimal is read only when declared: --decimal-comma)"
            # Null wherever the value is good, so clean rows carry no text at all.
            comma = bad_value.str.contains(",", literal=True)
            parts.append(pl.when(comma).then(pl.lit(hint)).when(~comma).then(pl.lit("")))
        return pl.when(~bad).then(parsed), pl.concat_str(parts)
    problems.append(f"{where} column {column} has type {dtype}; expected numbers")
    return source, None


def _as_is(
    field_map: FieldMap,
    schema: pl.Schema,
    where: str,
    problems: list[str],
    reading: _Reading | None = None,
) -> tuple[pl.Expr, pl.Expr | None]:
    """A category, boolean or text column without a value map: its values must already fit."""
    reading = reading or _Reading(DEFAULT_NA, decimal_comma=False)
    column = field_map.columns[0]
    dtype = schema[column]
    source = reading.missing(column, dtype)
    if dtype == pl.Null:
        return source.cast(_TYPES[field_map.kind]), None
    if field_map.kind == "boolean" and dtype == pl.Boolean:
        return source, None
    if field_map.kind == "boolean" and dtype == pl.String:
        # yes/no, true/false, 1/0 in any case, as fields.py reads a single record.
        answers = [*_TRUE, *_FALSE]

        def folded(cell: pl.Expr) -> pl.Expr:
            return reading.missing_in(cell).str.strip_chars().str.to_lowercase()

        def answer(cell: pl.Expr) -> pl.Expr:
            return _lookup(
                folded(cell),
                dict.fromkeys(_TRUE, True) | dict.fromkeys(_FALSE, False),
                pl.Boolean(),
            )

        spellings = [s for a in answers for s in (a, a.capitalize(), a.upper())]
        parsed, rest = _shortcut(pl.col(column), answer, spellings)
        bad = folded(rest).is_not_null() & answer(rest).is_null()
        # Null wherever the cell is an answer, so good rows carry no text at all.
        message = pl.concat_str(
            pl.lit(f"{field_map.target}: {column} = '"),
            pl.when(bad).then(pl.col(column)),
            pl.lit("' is not a yes/no answer"),
        )
        return parsed, message
    if field_map.kind == "category" and dtype == pl.String:
        # Labels are matched without regard to case or spaces where they are unambiguous
        # (Female, F, 女); anything else goes on as written for the engine to name.
        spec = field_specs()[field_map.canonical]
        labels = {value: value for value in spec.values}
        labels |= {label.casefold(): value for label, value in spec.labels.items()}

        def category(cell: pl.Expr) -> pl.Expr:
            source = reading.missing_in(cell)
            folded = source.str.strip_chars().str.to_lowercase()
            known = _lookup(folded, labels, pl.String())
            return pl.coalesce(known, source.cast(pl.String))

        spellings = [s for v in spec.values for s in (v, v.capitalize(), v.upper())]
        return _shortcut(pl.col(column), category, spellings)[0], None
    if field_map.kind != "boolean" and (dtype == pl.String or _is_categorical(dtype)):
        return source.cast(pl.String), None
    expected = "true/false" if field_map.kind == "boolean" else "text"
    problems.append(
        f"{where} column {column} has type {dtype}; expected {expected}, or declare what its "
        f"codes mean with values = {{ ... }}"
    )
    return source, None


def _value_map(
    field_map: FieldMap, schema: pl.Schema, problems: list[str], reading: _Reading | None = None
) -> tuple[pl.Expr, pl.Expr]:
    """Codes to field values; a code not in the map is null with a row problem, never a guess."""
    where = f"[fields.{field_map.target}]"
    column = field_map.columns[0]
    dtype = schema[column]
    text = _is_categorical(dtype) or dtype == pl.Null
    source = pl.col(column).cast(pl.String) if text else pl.col(column)
    if reading is not None and not text:
        source = reading.missing(column, dtype)
    if dtype == pl.String:
        source = source.str.strip_chars()
    codes: list[Any] = []
    if dtype.is_numeric():
        for code in field_map.values:
            number = _code_number(code, dtype)
            if number is None:
                kind = "whole numbers" if dtype.is_integer() else "numbers"
                problems.append(f"{where} values: code {code!r} but column {column} has {kind}")
            codes.append(number)
        if len(set(codes)) < len(codes):
            problems.append(f"{where} values: two codes are the same number in column {column}")
    elif text or dtype == pl.String:
        codes = list(field_map.values)
    else:
        problems.append(f"{where} column {column} has type {dtype}; values maps need codes")
    table = dict(zip(codes, field_map.values.values(), strict=True))
    mapped = _lookup(
        source, {k: v for k, v in table.items() if k is not None}, _TYPES[field_map.kind]
    )
    message = pl.format(f"{field_map.target}: {{}} not in map", source)
    check = pl.when(source.is_not_null() & ~source.is_in(codes)).then(message)
    return mapped, check


def _code_number(code: str, dtype: pl.DataType) -> float | int | None:
    try:
        number = float(code)
    except ValueError:
        return None
    if dtype.is_integer():
        return int(number) if number.is_integer() else None
    return number


def _id_expr(column: str, schema: pl.Schema, problems: list[str]) -> pl.Expr | None:
    dtype = schema[column]
    source = pl.col(column)
    if dtype == pl.String:
        return source.alias(ID)
    if dtype.is_integer() or _is_categorical(dtype):
        return source.cast(pl.String).alias(ID)
    if dtype.is_float():
        # SAS transport and SPSS store every number as a double: SEQN 62161 is read as 62161.0,
        # and the id must read 62161 as the codebook does.
        whole = (source == source.round(0)) & (source.abs() < 2**53)
        as_whole = source.cast(pl.Int64, strict=False).cast(pl.String)
        return pl.when(whole).then(as_whole).otherwise(source.cast(pl.String)).alias(ID)
    problems.append(f"[mapping] id: column {column} has type {dtype}; expected text or numbers")
    return None


def _is_categorical(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Categorical | pl.Enum)


def _text(table: dict[str, Any], key: str, where: str, problems: list[str]) -> str | None:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        problems.append(f"{where} {key} = {value!r}; expected a non-empty text")
        return None
    return value


def _texts(table: dict[str, Any], key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    value = table.get(key)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v for v in value)
        or len(set(value)) < len(value)
    ):
        problems.append(f"{where} {key} = {value!r}; expected a list of different column names")
        return ()
    return tuple(value)


def _unknown_keys(
    where: str, table: dict[str, Any], allowed: tuple[str, ...], problems: list[str]
) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"{where}: unknown key {key!r}{hint}")


def _absent(column: str, columns: list[str]) -> str:
    # Exports change case (SEQN, seqn) more often than they misspell.
    close = [c for c in columns if c.casefold() == column.casefold()]
    close = close or difflib.get_close_matches(column, columns, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"column {column!r} is not in the input{hint}"
