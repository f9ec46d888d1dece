"""A few records through the compiled pipeline without a query engine.

A one-row Polars frame costs ~12-25 ms, nearly all of it query planning; the rules themselves
take microseconds. This module reads the *same* compiled Polars expressions the columnar engine
runs (`engine._polars_stages`, built from the criteria files), walks their serialized trees once
and generates one straight-line Python function per pipeline, with Polars' null semantics: `and`
/ `or` are Kleene, comparisons and arithmetic with a null are null, `when` without a true
predicate takes the `otherwise` branch. There is no second implementation of any definition:
a criteria change reaches both paths through the one expression tree, and a property test holds
this path to the columnar one.

Within a stage every expression reads the columns as they were before the stage (Polars'
`with_columns`); identical sub-expressions over the same inputs are computed once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

import narwhals as nw
import polars as pl

from sarcokit.definitions import (
    DefinitionKey,
    DefinitionRef,
    definition_key,
    definition_version,
    definitions,
)
from sarcokit.engine import (
    INVALID,
    PIPELINE_CACHE_SIZE,
    EstimateAsm,
    _from_tree,
    _output_columns,
    _polars_stages,
    _tree,
    problem_columns,
    reciprocal,
    render_problems,
)
from sarcokit.fields import check_frame_types, input_columns

Row = dict[str, Any]


class Unsupported(ValueError):
    """The compiled pipeline uses an operation this evaluator does not know."""


_COMPARISONS = {"Lt": "<", "LtEq": "<=", "Gt": ">", "GtEq": ">=", "Eq": "==", "NotEq": "!="}
_ARITHMETIC = {"Plus": "+", "Minus": "-", "Multiply": "*"}


def _nan_compare(op: str, left: Any, right: Any) -> bool:
    """Polars orders floats totally: NaN equals NaN and is greater than every number."""
    rank_left = (1, 0.0) if left != left else (0, left)
    rank_right = (1, 0.0) if right != right else (0, right)
    result: bool = {
        "<": rank_left < rank_right,
        "<=": rank_left <= rank_right,
        ">": rank_left > rank_right,
        ">=": rank_left >= rank_right,
        "==": rank_left == rank_right,
        "!=": rank_left != rank_right,
    }[op]
    return result


def _divide_by_zero(numerator: Any) -> float:
    """IEEE division by zero, as Polars gives it (a float, never an error)."""
    if numerator != numerator or numerator == 0:
        return math.nan
    return math.inf if numerator > 0 else -math.inf


def _round(value: Any, decimals: int) -> Any:
    """Polars' round-half-to-even at `decimals`: rint(value × 10^d) / 10^d on floats."""
    if isinstance(value, int) or not math.isfinite(value):
        return value
    scale = 10.0**decimals
    return round(value * scale) / scale


def _floor(value: Any) -> Any:
    if isinstance(value, int) or not math.isfinite(value):
        return value
    return float(math.floor(value))


def _log(value: Any, base: Any) -> float:
    if value != value or value < 0:
        return math.nan
    if value == 0:
        return -math.inf
    if math.isinf(value):
        return math.inf
    return math.log(value) / math.log(base) if base != math.e else math.log(value)


_CONVERT: dict[str, Callable[[Any], Any]] = {"float": float, "int": int}
_NAME = re.compile(r"\b[tic]\d+\b")

_HELPERS: dict[str, Any] = {
    "_nan_compare": _nan_compare,
    "_divide_by_zero": _divide_by_zero,
    "_round": _round,
    "_floor": _floor,
    "_log": _log,
}


def _literal(node: Mapping[str, Any]) -> Any:
    """A literal's value, read by Polars itself (lists and Enum labels are stored as Arrow)."""
    value = pl.select(_from_tree(node).alias("value")).to_series()
    if isinstance(value.dtype, pl.List):
        return frozenset(value[0].to_list())
    return value[0]


class _Emitter:
    """Generates the statements of one pipeline, one temporary per distinct sub-expression."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self._memo: dict[Any, str] = {}
        self._literals: dict[str, str] = {}

    def _assign(self, key: Any, code: str, args: Sequence[str]) -> str:
        if key in self._memo:
            return self._memo[key]
        if all(self.known(arg) for arg in args):
            # Every operand is a constant (a literal, or an input the record cannot have):
            # the value is the same for every row, so it is computed here, once.
            name = self.constant(eval(code, {**_HELPERS, **self.constants}))
        else:
            name = f"t{len(self._memo)}"
            self.lines.append(f"    {name} = {code}")
        self._memo[key] = name
        return name

    def live(self, roots: Sequence[str]) -> list[str]:
        """The statements the outputs depend on, in order (a result column may not need every
        intermediate one, e.g. a branch whose predicate turned out constant)."""
        needed = set(roots)
        kept: list[str] = []
        for line in reversed(self.lines):
            target, _, code = line.strip().partition(" = ")
            if target in needed:
                needed.update(_NAME.findall(code))
                kept.append(line)
        return kept[::-1]

    def known(self, name: str) -> bool:
        """Whether the name is a constant rather than a per-row temporary."""
        return name in ("None", "True", "False") or name in self.constants

    def constant(self, value: Any) -> str:
        """A name for a constant value."""
        # Other constants are bound as default arguments (fast local reads); inlined numbers
        # would make `x is None` tests on them syntax warnings.
        if value is None or isinstance(value, bool):
            return repr(value)
        name = f"c{len(self.constants)}"
        self.constants[name] = value
        return name

    def value(self, name: str) -> Any:
        """The value of a known constant."""
        return {"None": None, "True": True, "False": False}.get(name, self.constants.get(name))

    def _inverse(self, name: str) -> float | None:
        """`engine.reciprocal` of a known constant; None for a per-row value."""
        return reciprocal(self.value(name)) if self.known(name) else None

    def literal(self, node: Mapping[str, Any]) -> str:
        text = json.dumps(node, sort_keys=True)
        if text not in self._literals:
            self._literals[text] = self.constant(_literal(node))
        return self._literals[text]

    def expr(self, node: Any, columns: Mapping[str, str]) -> str:
        """The temporary (or literal) holding the node's value for the row."""
        if not isinstance(node, dict) or len(node) != 1:
            raise Unsupported(f"expression node {str(node)[:200]}")
        ((kind, body),) = node.items()
        if kind == "Column":
            if body not in columns:
                raise Unsupported(f"column {body!r} read before it exists")
            return columns[body]
        if kind == "Alias":
            return self.expr(body[0], columns)
        if kind == "Literal":
            return self.literal(node)
        if kind == "BinaryExpr":
            return self._binary(body, columns)
        if kind == "Ternary":
            p, t, f = (self.expr(body[k], columns) for k in ("predicate", "truthy", "falsy"))
            if self.known(p):
                return t if self.value(p) is True else f
            return self._assign(("if", p, t, f), f"{t} if {p} is True else {f}", [p, t, f])
        if kind == "Cast":
            return self._cast(body, columns)
        if kind == "Function":
            args = [self.expr(arg, columns) for arg in body["input"]]
            return self._function(body["function"], args)
        raise Unsupported(f"expression kind {kind}")

    def _binary(self, body: Mapping[str, Any], columns: Mapping[str, str]) -> str:
        a, b = self.expr(body["left"], columns), self.expr(body["right"], columns)
        op = body["op"]
        null = f"{a} is None or {b} is None"
        # Kleene logic with one side known: true and x = x, false or x = x.
        for one, other in ((a, b), (b, a)):
            if self.known(one) and op in ("And", "Or") and self.value(one) is (op == "And"):
                return other
        if op == "And":
            code = f"False if {a} is False or {b} is False else (None if {null} else True)"
        elif op == "Or":
            code = f"True if {a} is True or {b} is True else (None if {null} else False)"
        elif op in _COMPARISONS:
            sign = _COMPARISONS[op]
            exact = f"{a} {sign} {b} if {a} == {a} and {b} == {b}"
            code = f"None if {null} else ({exact} else _nan_compare({sign!r}, {a}, {b}))"
        elif op in _ARITHMETIC:
            code = f"None if {null} else {a} {_ARITHMETIC[op]} {b}"
        elif op == "TrueDivide" and not self.known(a) and (inverse := self._inverse(b)) is not None:
            code = f"None if {null} else {a} * {self.constant(inverse)}"  # as Polars computes it
        elif op == "TrueDivide":
            code = f"None if {null} else ({a} / {b} if {b} else _divide_by_zero({a}))"
        else:
            raise Unsupported(f"binary operator {op}")
        return self._assign((op, a, b), code, [a, b])

    def _cast(self, body: Mapping[str, Any], columns: Mapping[str, str]) -> str:
        a = self.expr(body["expr"], columns)
        dtype = body["dtype"]
        to = {json.dumps({"Literal": "Float64"}): "float", json.dumps({"Literal": "Int64"}): "int"}
        convert = to.get(json.dumps(dtype))
        if convert is None:
            raise Unsupported(f"cast to {dtype}")
        code = f"None if {a} is None else {convert}({a})"
        return self._assign(("cast", convert, a), code, [a])

    def _function(self, function: Any, args: list[str]) -> str:
        name = json.dumps(function, sort_keys=True)
        a = args[0] if args else "None"
        if function == {"Boolean": "Not"}:
            code = f"None if {a} is None else not {a}"
        elif function == {"Boolean": "IsNull"}:
            code = f"{a} is None"
        elif function == {"Boolean": {"IsIn": {"nulls_equal": False}}}:
            code = f"None if {a} is None else {a} in {args[1]}"
        elif function in ({"Boolean": "AnyHorizontal"}, {"Boolean": "AllHorizontal"}):
            if len(args) == 1:
                return a
            decisive = function == {"Boolean": "AnyHorizontal"}
            hit = " or ".join(f"{x} is {decisive}" for x in args)
            null = " or ".join(f"{x} is None" for x in args)
            code = f"{decisive} if {hit} else (None if {null} else {not decisive})"
        elif function == "FillNull":
            code = f"{args[1]} if {a} is None else {a}"
        elif function == "Coalesce":
            code = args[-1]
            for x in reversed(args[:-1]):
                code = f"{x} if {x} is not None else ({code})"
        elif function == "Floor":
            code = f"None if {a} is None else _floor({a})"
        elif function == "Log":
            code = f"None if {a} is None else _log({a}, {args[1]})"
        elif isinstance(function, dict) and "Clip" in function:
            bounds = function["Clip"]
            rest = iter(args[1:])
            low = next(rest) if bounds["has_min"] else None
            high = next(rest) if bounds["has_max"] else None
            code = a
            if high is not None:
                code = f"{high} if {a} > {high} else {code}"
            if low is not None:
                code = f"{low} if {a} < {low} else ({code})"
            code = f"None if {a} is None else ({code})"
        elif isinstance(function, dict) and "Round" in function:
            if function["Round"].get("mode") != "HalfToEven":
                raise Unsupported(f"function {name}")
            code = f"None if {a} is None else _round({a}, {function['Round']['decimals']})"
        elif isinstance(function, dict) and "ConcatHorizontal" in function.get("StringExpr", {}):
            options = function["StringExpr"]["ConcatHorizontal"]
            if not options["ignore_nulls"]:
                raise Unsupported(f"function {name}")
            parts = ", ".join(args)
            code = f"{options['delimiter']!r}.join([x for x in ({parts},) if x is not None])"
        else:
            raise Unsupported(f"function {name}")
        return self._assign((name, *args), code, args)


def _converter(dtype: pl.DataType) -> str:
    """How a value of the column is made the Python type Polars returns for it."""
    if dtype == pl.Float64 or dtype == pl.Float32:
        return "float"
    if dtype.is_integer():
        return "int"
    return ""


@lru_cache(maxsize=PIPELINE_CACHE_SIZE)
def _compiled(
    keys: tuple[DefinitionKey, ...],
    estimate_asm: EstimateAsm | None,
    schema: tuple[tuple[str, pl.DataType], ...],
    explain: bool,
) -> Callable[[Mapping[str, Any]], Row]:
    """The generated function for one choice of definitions and one record schema."""
    frame_schema = pl.Schema(dict(schema))
    check_frame_types(nw.from_native(pl.DataFrame(schema=frame_schema)).collect_schema())
    given = frozenset(name for name in input_columns() if name in frame_schema)
    stages = _polars_stages(keys, estimate_asm, given)
    # Keyed by exact versions (id, SHA-256): two versions of one local definition never share.
    chosen = [definition_version(k) for k in keys]
    output = _output_columns(chosen, set(frame_schema), explain, [])
    lazy = pl.LazyFrame(schema=frame_schema)
    for stage in stages:
        lazy = lazy.with_columns(*stage)
    out_schema = lazy.select(output).collect_schema()

    emitter = _Emitter()
    columns: dict[str, str] = {}
    for index, (name, dtype) in enumerate(schema):
        convert = _converter(dtype)
        value = f"row.get({name!r})"
        if convert:
            value = f"None if (v := {value}) is None else {convert}(v)"
        emitter.lines.append(f"    i{index} = {value}")
        columns[name] = f"i{index}"
    for stage in stages:
        bound: dict[str, str] = {}
        for expr in stage:
            tree = _tree(expr)
            bound[expr.meta.output_name()] = emitter.expr(tree, columns)
        columns = {**columns, **bound}
    results = []
    flags = [columns[name] for name in problem_columns(given) if name in columns]
    for name in output:
        if name == INVALID and flags:
            # The problem text from the same flags the columnar engine renders.
            results.append(f"        {name!r}: _render(({', '.join(flags)},)),")
            continue
        convert = _converter(out_schema[name])
        value = columns[name]
        if convert and emitter.known(value):
            constant = emitter.value(value)
            value = emitter.constant(None if constant is None else _CONVERT[convert](constant))
        elif convert:
            value = f"None if {value} is None else {convert}({value})"
        results.append(f"        {name!r}: {value},")
    defaults = "".join(f", {name}={name}" for name in emitter.constants)
    source = "\n".join(
        [
            f"def evaluate_row(row{defaults}):",
            *emitter.live([columns[name] for name in output] + flags),
            "    return {",
            *results,
            "    }",
        ]
    )
    namespace: dict[str, Any] = {
        **_HELPERS,
        **emitter.constants,
        "_render": partial(render_problems, given),
    }
    label = "+".join(k[0] for k in keys)
    exec(compile(source, f"<sarcokit pipeline {label}>", "exec"), namespace)
    function: Callable[[Mapping[str, Any]], Row] = namespace["evaluate_row"]
    return function


def evaluate_rows(
    rows: Sequence[Mapping[str, Any]],
    schema: Mapping[str, pl.DataType],
    definition_ids: Sequence[DefinitionRef] | None = None,
    *,
    estimate_asm: EstimateAsm | None = None,
    explain: bool = False,
) -> list[Row]:
    """What `evaluate(pl.DataFrame(rows, schema=schema), …).iter_rows(named=True)` gives.

    `rows` hold values already parsed to the schema's types (`fields.parse_record`); a column
    of the schema missing from a row is null. Raises Unsupported if the pipeline uses an
    operation this evaluator does not implement (the columnar engine is then the way).
    """
    chosen = definitions(tuple(definition_ids) if definition_ids else None)
    keys = tuple(definition_key(d) for d in chosen)
    function = _compiled(keys, estimate_asm, tuple(schema.items()), explain)
    return [function(row) for row in rows]
