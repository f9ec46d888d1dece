"""The rules as SQL: one query that computes the engine's result columns inside a database.

The query is compiled from the very expressions the columnar engine runs (`engine.stages`, built
from the criteria files), so there is one source of the cut-offs and of the logic. Each stage of
the pipeline becomes one common table expression (in Spark, one subquery) that lists every
column once: an expression is computed once and later stages refer to it by name, which keeps
the SQL flat (no nesting of expressions from stage to stage) and cheap to parse and plan.

Three-valued logic carries over unchanged: Kleene `and`/`or`/`not` are SQL's own, a null
condition in `CASE WHEN` falls through exactly as `when/then` does in Polars, and unknown is
never written as false except where the engine itself fills it (`COALESCE`).

Dialects: DuckDB, PostgreSQL and Spark SQL. The input table needs the subject-record columns of
`reference/fields.toml` that the data has (name them with `present`; the others are read as
unknown) and, optionally, `id`.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import narwhals as nw
import polars as pl

from sarcokit.definitions import (
    DefinitionKey,
    DefinitionRef,
    definition_key,
    definition_version,
    definitions,
    definitions_hash,
)
from sarcokit.engine import (
    ASM_EQUATIONS,
    PIPELINE_CACHE_SIZE,
    EstimateAsm,
    output_names,
    polars_dtype,
    reciprocal,
    stages,
)
from sarcokit.engine import _output_columns as output_columns
from sarcokit.fields import input_columns

__all__ = ["DIALECTS", "CompiledQuery", "Dialect", "SqlError", "compile_query", "to_sql"]

Dialect = Literal["duckdb", "postgres", "spark"]
DIALECTS: tuple[Dialect, ...] = ("duckdb", "postgres", "spark")


class SqlError(ValueError):
    """A request the SQL compiler cannot satisfy (unknown dialect, name or expression)."""


# Narrow integers (score points, whose sums are widened to Int64 before they are output): every
# dialect has SMALLINT and INTEGER, and a byte fits in a SMALLINT.
_NARROW = {"UInt8": "SMALLINT", "Int16": "SMALLINT", "Int32": "INTEGER"}
_TYPES: dict[Dialect, dict[str, str]] = {
    "duckdb": {
        "Boolean": "BOOLEAN",
        "Float64": "DOUBLE",
        "Int64": "BIGINT",
        "String": "VARCHAR",
        **_NARROW,
    },
    "postgres": {
        "Boolean": "BOOLEAN",
        "Float64": "DOUBLE PRECISION",
        "Int64": "BIGINT",
        "String": "TEXT",
        **_NARROW,
    },
    "spark": {
        "Boolean": "BOOLEAN",
        "Float64": "DOUBLE",
        "Int64": "BIGINT",
        "String": "STRING",
        **_NARROW,
    },
}

_COMPARISONS = {
    "__eq__": "=",
    "__ne__": "<>",
    "__lt__": "<",
    "__le__": "<=",
    "__gt__": ">",
    "__ge__": ">=",
}
_ARITHMETIC = {"__add__": "+", "__sub__": "-", "__mul__": "*", "__truediv__": "/"}
_REFLECTED = {"__radd__": "+", "__rsub__": "-", "__rmul__": "*", "__rtruediv__": "/"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _value(argument: Any) -> Any:
    """The Python value an argument is: itself, or the value of `lit(value)`; None for any
    other expression."""
    if isinstance(argument, nw.Expr):
        nodes = argument._nodes
        return nodes[0].kwargs["value"] if len(nodes) == 1 and nodes[0].name == "lit" else None
    return argument


@dataclass(frozen=True)
class _Sql:
    """A rendered expression and its top-level connective (AND / OR), so that chains of one
    connective stay flat instead of nesting a bracket per operand."""

    text: str
    connective: str | None = None
    # A Boolean column, as far as it is known (casts of Booleans differ between dialects).
    boolean: bool = False


class _Translator:
    """Narwhals expression trees → SQL text in one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        # Columns of Boolean type at the stage being translated (a cast needs to know).
        self.booleans: set[str] = set()

    def quote(self, name: str) -> str:
        """An identifier, quoted for the dialect."""
        if not _NAME.fullmatch(name):
            raise SqlError(f"name {name!r}: expected letters, digits and _ only")
        return f"`{name}`" if self.dialect == "spark" else f'"{name}"'

    def type_name(self, dtype: Any) -> str:
        """The SQL type of a Narwhals type (labels are text in SQL)."""
        key = dtype.__name__ if isinstance(dtype, type) else type(dtype).__name__
        key = "String" if key in ("Enum", "Categorical") else key
        try:
            return _TYPES[self.dialect][key]
        except KeyError:
            raise SqlError(f"type {dtype}: no SQL type for it") from None

    def literal(self, value: Any, dtype: Any = None) -> str:
        """A typed literal: floats exactly as Python holds them, nulls typed when known."""
        if value is None:
            return "NULL" if dtype is None else f"CAST(NULL AS {self.type_name(dtype)})"
        if isinstance(value, bool):
            text = "TRUE" if value else "FALSE"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise SqlError(f"literal {value!r}: only finite numbers can be written in SQL")
            # repr round-trips the double; the exponent makes it a DOUBLE (not a DECIMAL) in
            # DuckDB and Spark. PostgreSQL reads it as numeric, which would turn integer
            # arithmetic into exact decimal arithmetic, so it is cast there.
            shown = repr(value)
            shown = shown if "e" in shown else f"{shown}e0"
            text = f"CAST({shown} AS DOUBLE PRECISION)" if self.dialect == "postgres" else shown
            text = f"({text})" if value < 0 else text
        elif isinstance(value, str):
            text = "'" + value.replace("'", "''") + "'"
        else:
            raise SqlError(f"literal {value!r}: unsupported type {type(value).__name__}")
        if dtype is not None and not isinstance(value, str):
            return f"CAST({text} AS {self.type_name(dtype)})"
        return text

    def operand(self, value: Any, str_as_lit: bool) -> _Sql:
        """An argument of a node: an expression, a column name or a literal."""
        if isinstance(value, nw.Expr):
            return self.expr(value)
        if isinstance(value, str) and not str_as_lit:
            return _Sql(self.quote(value))
        return _Sql(self.literal(value))

    def expr(self, expression: nw.Expr) -> _Sql:
        """One expression (its chain of nodes: a source, then methods applied in turn)."""
        nodes = expression._nodes
        current = self.source(nodes[0])
        for node in nodes[1:]:
            current = self.method(current, node)
        return current

    def source(self, node: Any) -> _Sql:
        name = node.name
        if name == "col":
            (column,) = node.kwargs["names"]
            return _Sql(self.quote(column), boolean=column in self.booleans)
        if name == "lit":
            return _Sql(self.literal(node.kwargs["value"], node.kwargs.get("dtype")))
        if name == "when_then":
            return self.case(node)
        if name in ("all_horizontal", "any_horizontal"):
            connective = "AND" if name == "all_horizontal" else "OR"
            if node.kwargs.get("ignore_nulls", False) is not False:
                raise SqlError(f"{name}(ignore_nulls=True) has no SQL translation here")
            return self.connect(connective, [self.operand(e, False) for e in node.exprs])
        if name == "coalesce":
            parts = [self.operand(e, False).text for e in node.exprs]
            return _Sql(f"COALESCE({', '.join(parts)})")
        if name == "concat_str":
            if not node.kwargs.get("ignore_nulls"):
                raise SqlError("concat_str(ignore_nulls=False) has no SQL translation here")
            separator = self.literal(node.kwargs["separator"])
            parts = [self.operand(e, False).text for e in node.exprs]
            return _Sql(f"CONCAT_WS({separator}, {', '.join(parts)})")
        raise SqlError(f"expression {name!r} has no SQL translation")

    def connect(self, connective: str, parts: Sequence[_Sql]) -> _Sql:
        """Operands joined by AND / OR; an operand of the same connective is not bracketed."""
        if len(parts) == 1:
            return parts[0]
        texts = [p.text if p.connective in (None, connective) else f"({p.text})" for p in parts]
        return _Sql(f" {connective} ".join(texts), connective)

    def case(self, node: Any) -> _Sql:
        """A when/then chain as one flat CASE (the engine nests `otherwise(when(...))`)."""
        branches: list[str] = []
        otherwise: _Sql | None = None
        while True:
            condition, then, *rest = node.exprs
            condition_sql = self.operand(condition, False)
            # `when(lit(False))` only gives a chain its first branch; it never holds.
            if condition_sql.text != "FALSE":
                branches.append(f"WHEN {condition_sql.text} THEN {self.operand(then, True).text}")
            if not rest:
                break
            (following,) = rest
            nested = following._nodes if isinstance(following, nw.Expr) else ()
            if len(nested) == 1 and nested[0].name == "when_then":
                node = nested[0]
                continue
            otherwise = self.operand(following, True)
            break
        if not branches:
            return otherwise or _Sql("NULL")
        tail = f" ELSE {otherwise.text}" if otherwise is not None else ""
        return _Sql(f"CASE {' '.join(branches)}{tail} END")

    def method(self, receiver: _Sql, node: Any) -> _Sql:
        name = node.name
        args = [self.operand(e, node.str_as_lit) for e in node.exprs]
        this = receiver.text if receiver.connective is None else f"({receiver.text})"
        if name == "alias":
            return receiver
        if name in ("__and__", "__or__"):
            return self.connect("AND" if name == "__and__" else "OR", [receiver, *args])
        if name == "__invert__":
            return _Sql(f"(NOT {this})")
        if name in _COMPARISONS:
            return _Sql(f"({this} {_COMPARISONS[name]} {self.bracket(args[0])})")
        if name == "__truediv__":
            # PostgreSQL divides integers as integers; Polars' `/` is always true division.
            numerator = f"CAST({this} AS DOUBLE PRECISION)" if self.dialect == "postgres" else this
            if (inverse := reciprocal(_value(node.exprs[0]))) is not None:
                return _Sql(f"({numerator} * {self.literal(inverse)})")  # as Polars computes it
            return _Sql(f"({numerator} / {self.bracket(args[0])})")
        if name in _ARITHMETIC:
            return _Sql(f"({this} {_ARITHMETIC[name]} {self.bracket(args[0])})")
        if name in _REFLECTED:
            return _Sql(f"({self.bracket(args[0])} {_REFLECTED[name]} {this})")
        if name == "is_null":
            return _Sql(f"({this} IS NULL)")
        if name == "fill_null":
            if node.kwargs.get("strategy") is not None:
                raise SqlError("fill_null(strategy=...) has no SQL translation")
            return _Sql(f"COALESCE({receiver.text}, {args[0].text})")
        if name == "is_in":
            values = list(node.kwargs["other"])
            if not values:
                return _Sql(f"CASE WHEN {this} IS NULL THEN NULL ELSE FALSE END")
            listed = ", ".join(self.literal(v) for v in values)
            return _Sql(f"({this} IN ({listed}))")
        if name == "cast":
            return self.cast(receiver, node.kwargs["dtype"])
        if name == "round":
            return self.round(receiver, int(node.kwargs["decimals"]))
        if name in ("clip", "clip_lower", "clip_upper"):
            return self.clip(name, receiver, node.exprs)
        if name == "log":
            base = float(node.kwargs["base"])
            if base == math.e:
                return _Sql(f"LN({receiver.text})")
            return _Sql(f"(LN({receiver.text}) / LN({self.literal(base)}))")
        if name == "floor":
            floor = f"FLOOR({receiver.text})"
            # Spark's FLOOR returns a whole-number type; Polars keeps the float.
            return _Sql(f"CAST({floor} AS DOUBLE)" if self.dialect == "spark" else floor)
        raise SqlError(f"method {name!r} has no SQL translation")

    def bracket(self, value: _Sql) -> str:
        return value.text if value.connective is None else f"({value.text})"

    def cast(self, receiver: _Sql, dtype: Any) -> _Sql:
        target = self.type_name(dtype)
        if receiver.boolean and target != "BOOLEAN" and self.dialect == "postgres":
            # PostgreSQL casts a Boolean only to integer or text; Polars reads it as 1 / 0.
            one = "1" if target == "BIGINT" else self.literal(1.0)
            zero = "0" if target == "BIGINT" else self.literal(0.0)
            return _Sql(
                f"CASE WHEN {receiver.text} THEN {one} WHEN NOT {receiver.text} THEN {zero} END"
            )
        if target == "BIGINT" and self.dialect != "spark":
            # Polars truncates a float cast to an integer; DuckDB and PostgreSQL would round.
            return _Sql(f"CAST(TRUNC({receiver.text}) AS BIGINT)")
        return _Sql(f"CAST({receiver.text} AS {target})")

    def round(self, receiver: _Sql, decimals: int) -> _Sql:
        # Polars rounds half to even (an exact tie such as 6.5116015625 at 9 decimals goes to
        # ...562); PostgreSQL's ROUND of a double does too, DuckDB and Spark need their own.
        even = {"duckdb": "ROUND_EVEN({}, 0)", "postgres": "ROUND({})", "spark": "BROUND({})"}
        if decimals == 0:
            return _Sql(even[self.dialect].format(receiver.text))
        # Scaled, rounded to a whole number and scaled back, as Polars does: the engine's
        # rounding of ratios at 1e-9 (equations.EXACT); two-argument ROUND differs on some
        # doubles (and PostgreSQL has none for doubles).
        scale = self.literal(float(10**decimals))
        scaled = even[self.dialect].format(f"{self.bracket(receiver)} * {scale}")
        return _Sql(f"({scaled} / {scale})")

    def clip(self, name: str, receiver: _Sql, bounds: Sequence[Any]) -> _Sql:
        # CASE rather than GREATEST/LEAST: those skip nulls, and a null value must stay null.
        this = self.bracket(receiver)
        lower = bounds[0] if name in ("clip", "clip_lower") else None
        upper = bounds[-1] if name in ("clip", "clip_upper") else None
        branches = []
        if lower is not None:
            low = self.operand(lower, True).text
            branches.append(f"WHEN {this} < {low} THEN {low}")
        if upper is not None:
            high = self.operand(upper, True).text
            branches.append(f"WHEN {this} > {high} THEN {high}")
        return _Sql(f"CASE {' '.join(branches)} ELSE {this} END")


def _output_name(expression: nw.Expr) -> str:
    """The column an expression produces: its last alias, else the column it starts from."""
    for node in reversed(expression._nodes):
        if node.name == "alias":
            return str(node.kwargs["name"])
    # Anything else (a literal, a horizontal function) is named as Polars names it.
    return output_names([expression])[0]


def _columns_of(expression: nw.Expr) -> set[str]:
    """The columns an expression reads."""
    found: set[str] = set()
    for node in expression._nodes:
        if node.name == "col":
            found.update(node.kwargs["names"])
        for argument in node.exprs:
            if isinstance(argument, nw.Expr):
                found |= _columns_of(argument)
            elif isinstance(argument, str) and not node.str_as_lit:
                found.add(argument)
    return found


@dataclass(frozen=True)
class CompiledQuery:
    """SQL computing the result columns, and what it was compiled from."""

    sql: str
    dialect: Dialect
    definition_ids: tuple[str, ...]
    columns: tuple[str, ...]
    definitions_sha256: str


def compile_query(
    definition_ids: Sequence[DefinitionRef] | None = None,
    dialect: Dialect = "duckdb",
    *,
    table: str = "subjects",
    view: str | None = None,
    present: Collection[str] | None = None,
    estimate_asm: EstimateAsm | None = None,
    keep: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> CompiledQuery:
    """Compile the definitions (all by default) to one SQL query over `table`.

    `present` names the subject-record columns the table has (all of them by default); the
    others are read as unknown. An `id` column in `present` or `keep` is carried through.
    With `view`, the query is a `CREATE VIEW`; otherwise a `SELECT`. `columns` narrows the
    result to some of its columns (the database then skips the work only they need).
    """
    # Keyed by exact versions (id, SHA-256): a local file loaded anew compiles anew.
    chosen = definitions(tuple(definition_ids) if definition_ids else None)
    return _compile(
        tuple(definition_key(d) for d in chosen),
        dialect,
        table,
        view,
        None if present is None else tuple(present),
        estimate_asm,
        tuple(keep),
        None if columns is None else tuple(columns),
    )


# Compiling walks every expression of the pipeline (seconds for all definitions); a DuckDB or
# Spark frame evaluated again with the same columns reuses the query.
@lru_cache(maxsize=PIPELINE_CACHE_SIZE)
def _compile(
    keys: tuple[DefinitionKey, ...],
    dialect: Dialect,
    table: str,
    view: str | None,
    present: tuple[str, ...] | None,
    estimate_asm: EstimateAsm | None,
    keep: tuple[str, ...],
    columns: tuple[str, ...] | None,
) -> CompiledQuery:
    if dialect not in DIALECTS:
        raise SqlError(f"dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    if estimate_asm is not None and estimate_asm not in ASM_EQUATIONS:
        raise SqlError(f"estimate_asm={estimate_asm!r}; expected one of {sorted(ASM_EQUATIONS)}")
    chosen = [definition_version(k) for k in keys]
    ids = tuple(d.id for d in chosen)
    inputs = input_columns()
    if present is None:
        present = tuple(name for name in inputs if name != "id")
    unknown = sorted(set(present) - set(inputs))
    if unknown:
        raise SqlError(f"present={unknown}: not subject-record fields (see fields.toml)")
    given = frozenset(name for name in inputs if name in present)
    carried = [*(["id"] if "id" in {*present, *keep} else []), *(k for k in keep if k != "id")]
    result = output_columns(chosen, {*present, *carried}, False, [k for k in keep if k != "id"])
    if columns is not None:
        missing = [c for c in columns if c not in result]
        if missing:
            raise SqlError(f"columns={missing}: not result columns (expected some of {result})")
        result = [c for c in result if c in columns or c in carried]
    sql = _Translator(dialect)
    pipeline = [
        {_output_name(expression): expression for expression in stage}
        for stage in stages(keys, estimate_asm, given)
        if stage
    ]
    # An empty frame of the input's types, carried through the stages, tells each stage
    # which columns are Boolean.
    frame: Any = nw.from_native(
        pl.DataFrame(schema={n: polars_dtype(s.dtype()) for n, (s, _) in inputs.items()})
    )
    booleans = []
    for produced in pipeline:
        booleans.append({n for n, t in frame.collect_schema().items() if t == nw.Boolean})
        frame = frame.with_columns(*produced.values())
    # Each stage carries only the columns some later stage or the result reads, and computes
    # only those of its expressions: a plan a tenth the size (Spark analyses every column of
    # every stage, and the result of one definition needs few of the inputs).
    needed_after: list[set[str]] = []
    needed = {*result, *carried}
    for produced in reversed(pipeline):
        needed_after.append(needed)
        used = [expression for name, expression in produced.items() if name in needed]
        needed = (needed - produced.keys()).union(*(_columns_of(e) for e in used))
    needed_after.reverse()
    # The first table expression reads the table: its columns as they are, absent fields as
    # typed nulls, so later stages can name every field.
    names = [*carried, *(n for n in inputs if n in needed and n not in carried and n != "id")]
    first = [sql.quote(name) for name in carried]
    for name in names[len(carried) :]:
        spec, _ = inputs[name]
        if name in given:
            first.append(sql.quote(name))
        else:
            first.append(f"CAST(NULL AS {sql.type_name(spec.dtype())}) AS {sql.quote(name)}")
    ctes = [("s0", first, sql.quote(table) if _NAME.fullmatch(table) else table)]
    for produced, after, sql.booleans in zip(pipeline, needed_after, booleans, strict=True):
        computed = {n: e for n, e in produced.items() if n in after}
        if not computed:
            continue
        select = [
            f"{sql.expr(computed[n]).text} AS {sql.quote(n)}" if n in computed else sql.quote(n)
            for n in names
            if n in after
        ]
        added = [n for n in computed if n not in names]
        select += [f"{sql.expr(computed[n]).text} AS {sql.quote(n)}" for n in added]
        names = [*(n for n in names if n in after), *added]
        ctes.append((f"s{len(ctes)}", select, ctes[-1][0]))
    # PostgreSQL pulls each stage up into the next, substituting every expression where it is
    # named: without common subexpressions the query grows exponentially (minutes to plan,
    # gigabytes of memory). OFFSET 0 keeps a stage a subquery, evaluated once per row and
    # streamed, not materialised.
    fence = "\n  OFFSET 0" if dialect == "postgres" else ""
    final = ", ".join(sql.quote(n) for n in result)
    if dialect == "spark":
        # Spark analyses a chain of WITH clauses several times slower than the same stages as
        # nested subqueries (InlineCTE, ResolveWithCTE and DeduplicateRelations walk the chain
        # again for each one): all definitions analysed in a third of the time. The stages
        # read inside out: the innermost subquery, s0, reads the table.
        nested = ctes[0][2]
        for name, select, _ in ctes:
            nested = "(\nSELECT\n    " + ",\n    ".join(select) + f"\nFROM {nested}\n) AS {name}"
        query = f"SELECT {final}\nFROM {nested}"
    else:
        body = ",\n".join(
            f"{name} AS (\n  SELECT\n    " + ",\n    ".join(select) + f"\n  FROM {source}{fence}\n)"
            for name, select, source in ctes
        )
        query = f"WITH\n{body}\nSELECT {final}\nFROM {ctes[-1][0]}"
    digest = definitions_hash(chosen)
    header = (
        f"-- sarcokit rules as {dialect} SQL: {', '.join(ids)}\n"
        f"-- definitions_sha256: {digest}\n" + "".join(f"-- {d.id}: {d.sha256}\n" for d in chosen)
    )
    if dialect == "spark":
        # The settings sarcokit.spark gives sessions, for whoever runs the text.
        from sarcokit.spark import SQL_CONF

        header += "".join(f"-- run with SET {k}={v}\n" for k, (_, v) in SQL_CONF.items())
        header += (
            "-- (without them this code is too large for the JVM's compiler, and over rows made\n"
            "-- from local data it runs inside the optimizer: several times slower)\n"
        )
    if view is not None:
        query = f"CREATE VIEW {sql.quote(view)} AS\n{query}"
    return CompiledQuery(header + query, dialect, ids, tuple(result), digest)


def to_sql(
    definition_ids: Sequence[DefinitionRef] | None = None,
    dialect: Dialect = "duckdb",
    **options: Any,
) -> str:
    """The SQL text of `compile_query` (same arguments)."""
    return compile_query(definition_ids, dialect, **options).sql


def evaluate_native(
    native: Any,
    definition_ids: Sequence[DefinitionRef],
    estimate_asm: EstimateAsm | None,
    present: Collection[str],
    keep: Sequence[str],
) -> Any | None:
    """The engine's result for a DuckDB relation or a Spark DataFrame, by compiled SQL; None for
    any other frame (the caller evaluates it through Narwhals)."""
    module = type(native).__module__
    fields = [name for name in present if name in input_columns()]
    passed = [name for name in keep if name != "id"]
    options: dict[str, Any] = {"present": fields, "estimate_asm": estimate_asm, "keep": passed}
    if module.startswith("duckdb") and hasattr(native, "query"):
        name = f"sarcokit_input_{uuid.uuid4().hex}"
        sql = to_sql(definition_ids, "duckdb", table=name, **options)
        return native.query(name, sql)
    if module.startswith("pyspark.sql") and hasattr(native, "sparkSession"):
        name = f"sarcokit_input_{uuid.uuid4().hex}"
        native.createOrReplaceTempView(name)
        from sarcokit.spark import tune_session

        tune_session(native.sparkSession)
        return native.sparkSession.sql(to_sql(definition_ids, "spark", table=name, **options))
    return None
