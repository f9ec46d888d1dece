"""Criteria → columnar expressions → components and categories, on any Narwhals frame.

One subject is a one-row frame through this same code. Stages run in dependency order:
validation and unit conversion, derived values, screening scores, test flags, components,
categories. Every flag is three-valued: true = low, false = normal, null = unknown.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from functools import cache, lru_cache, partial
from itertools import product
from typing import Any, Literal, NamedTuple

import narwhals as nw
import polars as pl
from narwhals.typing import IntoFrameT

from sarcokit.definitions import (
    INDETERMINATE,
    NOT_APPLICABLE,
    Definition,
    DefinitionKey,
    DefinitionRef,
    category_column,
    definition_key,
    definition_version,
    definitions,
    sarcopenia_column,
)
from sarcokit.equations import DERIVED, body_exprs, estimate_asm_exprs, muscle_exprs
from sarcokit.fields import (
    GAIT_SPEED,
    canonical_exprs,
    check_frame_types,
    field_specs,
    input_columns,
    problem_tokens,
    validation_error_column,
)
from sarcokit.rules import compile_rule
from sarcokit.screening import (
    FLAG_COLUMNS,
    SCORE_COLUMNS,
    bound_columns,
    score_bounds,
    score_stages,
)
from sarcokit.secondary.ct import ct_stages
from sarcokit.secondary.factors import factor_exprs
from sarcokit.secondary.glim import glim_stages
from sarcokit.secondary.liver import liver_exprs
from sarcokit.secondary.osteosarcopenia import bone_exprs, osteosarcopenia_exprs
from sarcokit.thresholds import age_bounds, comparison_exprs, subject_exprs, threshold_expr

INVALID = "invalid_fields"
ASM_ESTIMATED = "asm_estimated"
EstimateAsm = Literal["wen2011"]
ASM_EQUATIONS: dict[str, str] = {"wen2011": "wen2011_asm_kg"}


def test_column(definition: Definition, test_id: str) -> str:
    """Internal column of one test's flag."""
    return f"{definition.id}__{test_id}"


def rule_column(definition: Definition, category_id: str) -> str:
    """Internal column of one category rule's three-valued truth."""
    return f"{definition.id}__rule__{category_id}"


def component_column(definition: Definition, component_id: str) -> str:
    """Public column of a component's state (low / normal / unknown)."""
    return f"{definition.id}_{component_id}"


def _component_flag(definition: Definition, component_id: str) -> nw.Expr:
    """Low if any measured test is low, normal if all measured are normal, else unknown; or,
    for a component whose tests are joined by "or" (normal_when = "all"), normal only when
    every test is known and normal. Null below the age the component applies from."""
    component = next(c for c in definition.components if c.id == component_id)
    flags = [
        nw.col(test_column(definition, t.threshold.id)) for t in definition.tests_of(component_id)
    ]
    if len(flags) == 1 or component.normal_when == "all":
        # Low if any is low, normal only when all are known: Kleene `or` (one test: itself).
        flag = nw.any_horizontal(flags, ignore_nulls=False)
    else:
        # A null `when` condition does not hold (Polars, SQL's CASE and the scalar evaluator
        # alike), so Kleene `or` needs no fill_null: null only where none is low.
        any_low = nw.any_horizontal(flags, ignore_nulls=False)
        any_decided = nw.any_horizontal([~f.is_null() for f in flags], ignore_nulls=False)
        flag = (
            nw.when(any_low)
            .then(nw.lit(True))
            .when(any_decided)
            .then(nw.lit(False))
            .otherwise(nw.lit(None, dtype=nw.Boolean()))
        )
    if component.applies_from_age is not None:
        flag = (
            nw.when(_below_age(component.applies_from_age))
            .then(nw.lit(None, dtype=nw.Boolean()))
            .otherwise(flag)
        )
    return flag


def _below_age(age: float) -> nw.Expr:
    """As a `when` condition: holds where the age is known and below `age` (completed years
    compare the same way); a null condition does not hold, so an unknown age needs no fill."""
    return nw.col("age") < age


def _labels(values: Sequence[str], enum: bool) -> Callable[[str], nw.Expr]:
    """Literal maker for a label column: Enum-typed on Polars, where building millions of
    strings in a when/then chain costs ~30× more than Enum codes; plain text elsewhere."""
    dtype = nw.Enum(list(values)) if enum else nw.String()
    return lambda value: nw.lit(value, dtype=dtype)


def _category(definition: Definition, enum: bool) -> nw.Expr:
    """The first category, in the file's order (most to least severe), whose rule holds;
    `not_applicable` first where the subject is younger than the definition's scope."""
    label = _labels(definition.category_ids, enum)
    first, *rest = definition.categories
    if definition.min_age is not None:
        chain = nw.when(_below_age(definition.min_age)).then(label(NOT_APPLICABLE))
        chain = chain.when(nw.col(rule_column(definition, first.id))).then(label(first.id))
    else:
        chain = nw.when(nw.col(rule_column(definition, first.id))).then(label(first.id))
    # A rule that is null (unknown) does not hold, as a null `when` condition never does.
    for category in rest:
        holds = nw.col(rule_column(definition, category.id))
        chain = chain.when(holds).then(label(category.id))
    return chain.otherwise(label(INDETERMINATE))


def _sarcopenia(definition: Definition) -> nw.Expr:
    category = nw.col(category_column(definition))
    positive = [c.id for c in definition.categories if c.sarcopenia]
    return (
        nw.when(category.is_in([INDETERMINATE, NOT_APPLICABLE]))
        .then(nw.lit(None, dtype=nw.Boolean()))
        .otherwise(category.is_in(positive))
    )


def _state(definition: Definition, component_id: str, enum: bool) -> nw.Expr:
    component = next(c for c in definition.components if c.id == component_id)
    flag = nw.col(_component_flag_column(definition, component_id))
    low, normal = component.states
    label = _labels([low, normal, "unknown", NOT_APPLICABLE], enum)
    chain = nw.when(nw.lit(False)).then(label("unknown"))
    if component.applies_from_age is not None:
        chain = chain.when(_below_age(component.applies_from_age)).then(label(NOT_APPLICABLE))
    # Unknown first: a test for null has no nulls of its own to combine, so this costs about
    # two thirds of "low when true, normal when false, else unknown" on Polars (same answers).
    return (
        chain.when(flag.is_null())
        .then(label("unknown"))
        .when(flag)
        .then(label(low))
        .otherwise(label(normal))
    )


def _valid(expr: nw.Expr) -> nw.Expr:
    """The expression on valid rows, null on rows whose input was rejected."""
    return nw.when(nw.col(INVALID).is_null()).then(expr)


def _ct_low_muscle() -> nw.Expr:
    """CT low muscle by the chosen cut-off set, where CT stands in for the muscle quantity."""
    reference = nw.col("ct_reference")
    chain: Any = nw.when(nw.lit(False)).then(nw.lit(None, dtype=nw.Boolean()))
    for name in field_specs()["ct_reference"].values:
        chain = chain.when(reference == name).then(nw.col(f"ct_low_smi_{name}"))
    chosen: nw.Expr = chain.otherwise(nw.lit(None, dtype=nw.Boolean()))
    return nw.when(nw.col("asm_method") == "ct").then(chosen).alias("ct_low_muscle")


def secondary_stages() -> list[list[nw.Expr]]:
    """CT body composition, then the liver scores (which read the CT flag), GLIM, bone, factors."""
    # The GLIM criteria read only inputs and derived values, so they share the first CT stage
    # rather than adding one.
    criteria, glim = glim_stages()
    first, *rest = ct_stages()
    return [
        [*first, *criteria],
        *rest,
        [_ct_low_muscle(), *liver_exprs(), *glim, *bone_exprs(), *factor_exprs()],
    ]


def _to_polars(expr: nw.Expr) -> pl.Expr:
    """A Narwhals expression as the Polars expression it translates to."""
    namespace = nw.from_native(pl.DataFrame()).__narwhals_namespace__()
    native: pl.Expr = expr._to_compliant_expr(namespace).native  # type: ignore[attr-defined]
    return native


def output_names(exprs: Sequence[nw.Expr]) -> list[str]:
    """The column names a list of expressions produces."""
    return [_to_polars(e).meta.output_name() for e in exprs]


@cache
def secondary_columns(keys: tuple[DefinitionKey | str, ...]) -> tuple[str, ...]:
    """Public columns of the secondary-sarcopenia tools for a choice of definitions (ids, or
    (id, SHA-256) keys of exact versions)."""
    exprs = [e for stage in secondary_stages() for e in stage]
    chosen = [k if isinstance(k, str) else definition_version(k) for k in keys]
    names = output_names([*exprs, *osteosarcopenia_exprs(chosen)])
    return tuple(name for name in names if not name.startswith("__"))


def public_columns(chosen: Sequence[Definition]) -> list[str]:
    """The result columns in contract order (DESIGN.md: `ewgsop2_category`, …, `sarc_f_total`)."""
    screening = [
        column
        for key in FLAG_COLUMNS
        for column in ([SCORE_COLUMNS[key]] if key in SCORE_COLUMNS else []) + [FLAG_COLUMNS[key]]
    ]
    per_definition = [
        name
        for d in chosen
        for name in (
            category_column(d),
            *([sarcopenia_column(d)] if d.diagnoses else []),
            *(component_column(d, c.id) for c in d.components),
        )
    ]
    secondary = secondary_columns(tuple(definition_key(d) for d in chosen))
    return [INVALID, *DERIVED, ASM_ESTIMATED, *screening, *per_definition, *secondary]


def _component_flag_column(definition: Definition, component_id: str) -> str:
    return f"{definition.id}__{component_id}"


# Keyed by the set of columns present, which a stream of records can vary without bound: the
# caches keep the most recent sets (compiling one costs ~0.1-0.2 s, so a form's few field sets
# stay warm while memory stays bounded).
PIPELINE_CACHE_SIZE = 64


@lru_cache(maxsize=PIPELINE_CACHE_SIZE)
def stages(
    keys: tuple[DefinitionKey, ...],
    estimate_asm: EstimateAsm | None,
    present: frozenset[str],
    enum: bool = False,
) -> tuple[tuple[nw.Expr, ...], ...]:
    """The pipeline for a choice of definitions, as dependency-ordered stages of expressions.

    The definitions are given by (id, SHA-256), so two versions of one local definition never
    share a pipeline. It expects every input column to be present (absent ones are added as
    nulls first); `present` names the columns the input really had, so no check is compiled
    for the rest. With `enum`, categories and component states are Enum columns (Polars)
    instead of text.
    """
    chosen = [definition_version(k) for k in keys]
    inputs = [name for name in input_columns() if name != "id"]
    if estimate_asm is None:
        asm: list[nw.Expr] = [nw.lit(False).alias(ASM_ESTIMATED)]
    else:
        asm = estimate_asm_exprs(ASM_EQUATIONS[estimate_asm])
    pipeline: list[list[nw.Expr]] = [
        [validation_error_column(present).alias(INVALID)],
        # Absent inputs are null already; masking them would only hide that they are constant.
        [_valid(nw.col(name)).alias(name) for name in inputs if name in present],
        canonical_exprs(),
        body_exprs(),
        asm,
        muscle_exprs(),
        subject_exprs(age_bounds(t.threshold for d in chosen for t in d.tests)),
        *score_stages(),
        *secondary_stages(),
        comparison_exprs(
            t.threshold for d in chosen for t in d.tests if score_bounds(t.threshold.input) is None
        ),
        [
            threshold_expr(
                t.threshold, score_bounds(t.threshold.input), ages=True, shared=True
            ).alias(test_column(d, t.threshold.id))
            for d in chosen
            for t in d.tests
        ],
        [
            _component_flag(d, c.id).alias(_component_flag_column(d, c.id))
            for d in chosen
            for c in d.components
        ],
        [
            compile_rule(cat.rule, partial(_component_of, d)).alias(rule_column(d, cat.id))
            for d in chosen
            for cat in d.categories
        ],
        [
            *(_valid(_category(d, enum)).alias(category_column(d)) for d in chosen),
            *(
                _valid(_state(d, c.id, enum)).alias(component_column(d, c.id))
                for d in chosen
                for c in d.components
            ),
            _valid(nw.col(ASM_ESTIMATED)).alias(ASM_ESTIMATED),
        ],
        [_sarcopenia(d).alias(sarcopenia_column(d)) for d in chosen if d.diagnoses],
        osteosarcopenia_exprs(chosen),
    ]
    return tuple(tuple(stage) for stage in pipeline)


def _component_of(definition: Definition, component_id: str) -> nw.Expr:
    return nw.col(_component_flag_column(definition, component_id))


class _Compiled(NamedTuple):
    stages: tuple[tuple[pl.Expr, ...], ...]
    # The columns with one value for every row, whatever the rows hold (each a one-row Series).
    constants: dict[str, pl.Series]


def _polars_stages(
    keys: tuple[DefinitionKey, ...], estimate_asm: EstimateAsm | None, present: frozenset[str]
) -> tuple[tuple[pl.Expr, ...], ...]:
    """The stages translated to Polars, with the constants folded (see `_compiled`)."""
    return _compiled(keys, estimate_asm, present).stages


@lru_cache(maxsize=PIPELINE_CACHE_SIZE)
def _compiled(
    keys: tuple[DefinitionKey, ...], estimate_asm: EstimateAsm | None, present: frozenset[str]
) -> _Compiled:
    """The same stages translated to Polars once, so one-row calls do not re-translate them.

    Narwhals translates its expressions on every call, which is most of the cost of assessing
    one subject; the translation depends only on the backend, so it is done once per choice.

    An expression that reads only columns the input lacks (all null) has one value for every
    row: it is computed once here and becomes a literal, so a cohort without CT or laboratory
    columns does not pay for those tools row by row.
    """
    constants: dict[str, pl.Series] = {
        name: pl.Series(name, [None], dtype=polars_dtype(spec.dtype()))
        for name, (spec, _) in input_columns().items()
        if name not in present
    }
    # Absent inputs are added as typed nulls here, translated once, rather than per call.
    compiled: list[tuple[pl.Expr, ...]] = [
        tuple(pl.lit(None, dtype=c.dtype).alias(name) for name, c in constants.items())
    ]
    pipeline = list(stages(keys, estimate_asm, present, enum=True))
    # Validation as Boolean flags and a Boolean (null when valid) instead of text for every row;
    # the text is rendered at the end for the rejected rows only (`render_problems`).
    flags = _problem_flags(present)
    if flags:
        compiled.append(flags)
        pipeline[0] = (_to_nw_invalid(len(flags)),)
    # The columns' types as the pipeline goes (a folded null keeps the type it would have had).
    shape = pl.DataFrame(schema=_input_schema()).with_columns(*flags)
    for stage in pipeline:
        exprs = []
        folded: dict[str, pl.Series] = {}
        varying: list[str] = []
        translated = [_to_polars(e) for e in stage]
        typed = shape.with_columns(*translated).schema
        booleans = {name for name, dtype in shape.schema.items() if dtype == pl.Boolean}
        integers = {name for name, dtype in shape.schema.items() if dtype.is_integer()}
        nulls = {name for name, value in constants.items() if value[0] is None}
        for expr in translated:
            roots = expr.meta.root_names()
            name = expr.meta.output_name()
            if set(roots) <= constants.keys():
                value = pl.DataFrame([constants[r] for r in dict.fromkeys(roots)]).select(expr)
                column = value.to_series() if value.height else pl.Series([None])
                folded[column.name] = column
                expr = pl.lit(column[0], dtype=column.dtype).alias(column.name)
            elif (one := _single_value(expr, constants, booleans)) is not _VARIES:
                # One value whatever the present inputs hold (an equation with an absent term,
                # a test of an absent measurement whatever the sex).
                folded[name] = pl.Series(name, [one], dtype=typed[name])
                expr = pl.lit(one, dtype=typed[name]).alias(name)
            else:
                varying.append(name)
                expr = _simplified(expr, nulls, integers, booleans, shape, typed[name])
            exprs.append(expr)
        shape = shape.with_columns(*exprs)
        constants.update(folded)
        # A stage may overwrite an absent input from a present one (creatinine in mg/dL from
        # µmol/L): from here on that column varies and must not be folded as null.
        for name in varying:
            constants.pop(name, None)
        compiled.append(tuple(exprs))
    # The second pipeline stage nulls the inputs of rejected rows.
    masks = len(compiled) - len(pipeline) + 1
    return _Compiled(_shared_comparisons(compiled, masks), constants)


# The text inputs (sex, race, how ASM was measured, ...) are compared with the same few values
# by validation, equations, scores and thresholds alike: 45 comparisons of every row's text on
# a cohort, ~10% of a large frame's time. Each distinct comparison is made once, into a
# Boolean column the expressions read instead (13 on that cohort).


def _comparison_column(column: str, value: str) -> str:
    # Not `__{column}_is_{value}`: `__sex_is_male` is the rules' "may be male" (true if unknown).
    return f"__equals__{column}__{value}"


def _text_comparison(node: dict[str, Any], columns: set[str]) -> tuple[str, str] | None:
    """(column, value) when the tree node compares one of `columns` with a text literal."""
    binary = node.get("BinaryExpr")
    if not binary or binary["op"] != "Eq" or "Column" not in binary["left"]:
        return None
    value = binary["right"].get("Literal", {}).get("Scalar", {}).get("String")
    column = binary["left"]["Column"]
    return (column, value) if column in columns and isinstance(value, str) else None


def _shared_comparisons(
    compiled: list[tuple[pl.Expr, ...]], masks: int
) -> tuple[tuple[pl.Expr, ...], ...]:
    """The stages with each comparison of a text input with a literal made once, first.

    The comparison columns are nulled on rejected rows in the stage `masks` that nulls the
    inputs themselves, so every expression reads what it read before, row by row. A text
    input that a later stage overwrites keeps its comparisons where they are.
    """
    text = {name for name, dtype in _input_schema().items() if dtype == pl.String}
    masked = {e.meta.output_name() for e in compiled[masks]}
    later = {e.meta.output_name() for stage in compiled[masks + 1 :] for e in stage}
    columns = (text & masked) - later
    taken = {e.meta.output_name() for stage in compiled for e in stage}
    pairs: dict[tuple[str, str], None] = {}

    def shared(node: dict[str, Any]) -> Any:
        pair = _text_comparison(node, columns)
        if pair is None or _comparison_column(*pair) in taken:
            return None
        pairs[pair] = None
        return {"Column": _comparison_column(*pair)}

    stages = [
        tuple(
            _rewritten(expr, shared) if columns & set(expr.meta.root_names()) else expr
            for expr in stage
        )
        for stage in compiled
    ]
    if not pairs:
        return tuple(stages)
    names = [_comparison_column(*pair) for pair in pairs]
    stages[masks] += tuple(_to_polars(_valid(nw.col(name)).alias(name)) for name in names)
    first = tuple((pl.col(c) == pl.lit(v)).alias(_comparison_column(c, v)) for c, v in pairs)
    return (stages[0], first, *stages[1:])


def reciprocal(divisor: Any) -> float | None:
    """1 / `divisor` when it is a finite nonzero number, else None.

    Polars divides a column by a number as the column times the number's reciprocal (h / 0.01
    is exactly h * 100.0, not the true quotient's last bit); the SQL and scalar evaluators
    write such a division so too, so that every engine gives the same bits.
    """
    if isinstance(divisor, bool) or not isinstance(divisor, int | float) or not divisor:
        return None
    return 1.0 / divisor if math.isfinite(divisor) else None


def _tree(expr: pl.Expr) -> Any:
    """A Polars expression as its serialized tree."""
    return json.loads(expr.meta.serialize(format="json"))


def _from_tree(tree: Any) -> pl.Expr:
    """The Polars expression a serialized tree describes (the inverse of `_tree`)."""
    return pl.Expr.deserialize(io.StringIO(json.dumps(tree)), format="json")


def _rewritten(expr: pl.Expr, rule: Callable[[dict[str, Any]], Any]) -> pl.Expr:
    """`expr` with each node of its tree replaced by what `rule` makes of it (None: kept).

    A node is rewritten until the rule leaves it as it is, then its children are visited.
    """

    def visit(node: Any) -> Any:
        if isinstance(node, list):
            return [visit(item) for item in node]
        if not isinstance(node, dict):
            return node
        while (replaced := rule(node)) is not None and replaced != node:
            node = replaced
            if not isinstance(node, dict):
                return visit(node)
        return {key: visit(value) for key, value in node.items()}

    tree = _tree(expr)
    result = visit(tree)
    return expr if result == tree else _from_tree(result)


# What a node can evaluate to, as a subset of: true, false, null, any other value. An
# expression whose only outcome is null (or true, or false) is folded to that literal.
TRUE, FALSE, NULL, VALUE = "T", "F", "N", "V"
_ANY = frozenset({TRUE, FALSE, NULL, VALUE})
_KLEENE = {
    "And": {(TRUE, TRUE): TRUE, (TRUE, NULL): NULL, (NULL, TRUE): NULL, (NULL, NULL): NULL},
    "Or": {(FALSE, FALSE): FALSE, (FALSE, NULL): NULL, (NULL, FALSE): NULL, (NULL, NULL): NULL},
}
# Functions and operators that are null whenever their (first) input is.
_NULL_IN_NULL_OUT = {"Round", "Floor", "Log", "Clip", "Abs", "Sqrt"}
_NULL_BINARY = {"Plus", "Minus", "Multiply", "TrueDivide", "Lt", "LtEq", "Gt", "GtEq", "Eq"}
# Operators whose value is a Boolean (null only where an operand is).
_COMPARISONS = {"Lt", "LtEq", "Gt", "GtEq", "Eq", "NotEq"}


_VARIES = object()
# Up to this many Boolean inputs, an expression over folded constants and Boolean columns is
# evaluated for every combination of them (3^n rows) to see whether its value can vary.
GRID_INPUTS = 6


def _single_value(expr: pl.Expr, constants: dict[str, pl.Series], booleans: set[str]) -> Any:
    """The expression's one value where it reads folded constants: by evaluating it for every
    combination of the few Boolean columns it also reads, or, over other columns, null when
    an absent input makes it null on every row (`_outcomes`); else `_VARIES`."""
    roots = list(dict.fromkeys(expr.meta.root_names()))
    live = [r for r in roots if r not in constants]
    nulls = {r for r in roots if r in constants and constants[r][0] is None}
    if not live or not nulls:
        return _VARIES
    if _outcomes(_tree(expr), nulls, booleans) == {NULL}:
        return None
    if len(live) > GRID_INPUTS or not set(live) <= booleans:
        return _VARIES
    grid = pl.DataFrame(
        list(product([True, False, None], repeat=len(live))),
        schema={name: pl.Boolean for name in live},
        orient="row",
    ).with_columns(
        pl.lit(constants[r][0], dtype=constants[r].dtype).alias(r) for r in roots if r in constants
    )
    values = grid.select(expr).to_series()
    return values[0] if values.n_unique() == 1 else _VARIES


def _simplified(
    expr: pl.Expr,
    nulls: set[str],
    integers: set[str],
    booleans: set[str],
    shape: pl.DataFrame,
    dtype: pl.DataType,
) -> pl.Expr:
    """The expression with work that cannot change a value taken out of its rows.

    - A coalesce drops its alternatives that are null on every row: a measurement given in one
      unit is coalesced with its conversions from the others (grip in kg, or from lb); where
      those inputs are absent, what remains is the value itself, not a copy made row by row.
    - An integer column compared with a whole number written as a float (a score >= 4.0) is
      compared with the integer: the same answer for every value (rounding an integer to a
      float is monotone and the cut-off is exact), without converting the column first.

    `nulls` are the columns null on every row, `integers` and `booleans` those of these types.
    Kept as it is if the result's type would change.
    """
    if not (nulls | integers) & set(expr.meta.root_names()):
        return expr

    def simplify(node: dict[str, Any]) -> Any:
        function = node.get("Function")
        if function is not None and function["function"] == "Coalesce":
            kept = [
                item for item in function["input"] if _outcomes(item, nulls, booleans) != {NULL}
            ]
            if len(kept) == 1:
                return kept[0]
            return {"Function": {**function, "input": kept}} if kept else None
        binary = node.get("BinaryExpr")
        if binary is not None and binary["op"] in _COMPARISONS:
            cutoff = binary["right"].get("Literal", {}).get("Dyn", {}).get("Float")
            if (
                binary["left"].get("Column") in integers
                and isinstance(cutoff, float)
                and cutoff.is_integer()
                and abs(cutoff) < 2**53
            ):
                whole = {"Literal": {"Dyn": {"Int": int(cutoff)}}}
                return {"BinaryExpr": {**binary, "right": whole}}
        return None

    simpler = _rewritten(expr, simplify)
    if simpler is expr:
        return expr
    name = expr.meta.output_name()
    return simpler if shape.with_columns(simpler).schema[name] == dtype else expr


def _kleene(op: str, left: frozenset[str], right: frozenset[str]) -> frozenset[str]:
    """The outcomes of Kleene `and` / `or` over two operands' outcomes."""
    if VALUE in left or VALUE in right:
        return _ANY
    decisive = FALSE if op == "And" else TRUE
    table = _KLEENE[op]
    return frozenset(decisive if decisive in (a, b) else table[(a, b)] for a in left for b in right)


def _outcomes(node: Any, nulls: set[str], booleans: set[str]) -> frozenset[str]:
    """What the expression can evaluate to on any row, given columns known to be all null
    and the Boolean columns. Conservative: a node not handled here may be anything.
    """
    ((kind, body),) = node.items()
    if kind == "Column":
        if body in nulls:
            return frozenset({NULL})
        return frozenset({TRUE, FALSE, NULL}) if body in booleans else _ANY
    if kind == "Literal":
        scalar = body.get("Scalar", {}) if isinstance(body, dict) else {}
        if "Null" in scalar:
            return frozenset({NULL})
        if "Boolean" in scalar:
            return frozenset({TRUE if scalar["Boolean"] else FALSE})
        return frozenset({VALUE})
    if kind == "Alias":
        return _outcomes(body[0], nulls, booleans)
    if kind == "Cast":
        inner = _outcomes(body["expr"], nulls, booleans)
        return inner if inner == {NULL} else _ANY
    if kind == "BinaryExpr":
        left, right = (
            _outcomes(body["left"], nulls, booleans),
            _outcomes(body["right"], nulls, booleans),
        )
        if body["op"] in _KLEENE:
            return _kleene(body["op"], left, right)
        if body["op"] in ("Eq", "NotEq") and VALUE not in left | right:
            # Two Booleans (`thresholds.agreed` compares whether some case says true with
            # whether some says false): a cut-off of an absent measurement folds to null.
            return _equality(body["op"] == "Eq", left, right)
        if body["op"] in _NULL_BINARY and NULL in (left | right) and {NULL} in (left, right):
            return frozenset({NULL})
        if body["op"] in _COMPARISONS:
            return frozenset({TRUE, FALSE} | ({NULL} if NULL in left | right else set()))
        return _ANY
    if kind == "Ternary":
        predicate = _outcomes(body["predicate"], nulls, booleans)
        found: frozenset[str] = frozenset()
        if TRUE in predicate or VALUE in predicate:
            found |= _outcomes(body["truthy"], nulls, booleans)
        if predicate - {TRUE}:
            found |= _outcomes(body["falsy"], nulls, booleans)
        return found
    if kind == "Function":
        return _function_outcomes(
            body["function"], [_outcomes(i, nulls, booleans) for i in body["input"]]
        )
    return _ANY


def _equality(equal: bool, left: frozenset[str], right: frozenset[str]) -> frozenset[str]:
    """The outcomes of `==` (or `!=`) between two Boolean operands' outcomes."""
    return frozenset(
        NULL if NULL in (a, b) else (TRUE if (a == b) == equal else FALSE)
        for a in left
        for b in right
    )


def _function_outcomes(function: Any, inputs: list[frozenset[str]]) -> frozenset[str]:
    if function == {"Boolean": "Not"}:
        swap = {TRUE: FALSE, FALSE: TRUE, NULL: NULL}
        return _ANY if VALUE in inputs[0] else frozenset(swap[x] for x in inputs[0])
    if function == {"Boolean": "IsNull"}:
        if inputs[0] == {NULL}:
            return frozenset({TRUE})
        return frozenset({FALSE}) if NULL not in inputs[0] else frozenset({TRUE, FALSE})
    if function in ({"Boolean": "AllHorizontal"}, {"Boolean": "AnyHorizontal"}):
        op = "And" if function == {"Boolean": "AllHorizontal"} else "Or"
        found = inputs[0]
        for other in inputs[1:]:
            found = _kleene(op, found, other)
        return found
    if function == "FillNull":
        value, fill = inputs
        return (value - {NULL}) | (fill if NULL in value else frozenset())
    name = function if isinstance(function, str) else next(iter(function))
    if name in _NULL_IN_NULL_OUT and inputs[0] == {NULL}:
        return frozenset({NULL})
    return _ANY


@cache
def _input_schema() -> pl.Schema:
    """The Polars types of every input column, as fields.toml declares them."""
    return pl.Schema(
        {name: polars_dtype(spec.dtype()) for name, (spec, _) in input_columns().items()}
    )


# Validation on Polars: each problem check is one Boolean column (bit-packed, so a check costs
# about a third of a numeric column), and `invalid_fields` is true on a rejected row; the problem
# text is built at the end for the rejected rows only. Building the text for every row was the
# largest single stage of a large frame, and packing the checks into integer words cost more than
# the checks themselves (a when/then and an addition per bit).


def _problem_column(index: int) -> str:
    return f"__problem_{index}"


@lru_cache(maxsize=PIPELINE_CACHE_SIZE)
def problem_checks(present: frozenset[str]) -> tuple[str, ...]:
    """The problem tokens checked for a set of input columns, in column order."""
    return tuple(token for token, _ in problem_tokens(present))


def _problem_flags(present: frozenset[str]) -> tuple[pl.Expr, ...]:
    """One Boolean column per problem check: true where the row fails it, never null."""
    return tuple(
        _to_polars(bad.fill_null(False)).alias(_problem_column(index))
        for index, (_, bad) in enumerate(problem_tokens(present))
    )


def problem_columns(present: frozenset[str]) -> list[str]:
    """The internal columns holding the problem flags for a set of input columns."""
    return [_problem_column(i) for i in range(len(problem_checks(present)))]


def _to_nw_invalid(count: int) -> nw.Expr:
    """`invalid_fields` during the pipeline: true (not yet the text) on a rejected row."""
    any_problem = nw.any_horizontal(
        [nw.col(_problem_column(i)) for i in range(count)], ignore_nulls=False
    )
    return nw.when(any_problem).then(nw.lit(True)).alias(INVALID)


def render_problems(present: frozenset[str], flags: Sequence[bool]) -> str | None:
    """The `invalid_fields` text of one row from its problem flags (None when valid)."""
    tokens = [token for token, flag in zip(problem_checks(present), flags, strict=True) if flag]
    return " ".join(tokens) if tokens else None


def _problem_text(
    present: frozenset[str], invalid: pl.Series, flags: Sequence[pl.Series]
) -> pl.Series:
    """`invalid_fields` as text from its Boolean form and the problem flags, rejected rows only."""
    # `invalid_fields` is still true on a rejected row here, so it points at them.
    rejected = invalid.arg_true()
    # A null column with the rejected rows' text put in place: a Python list with a None for
    # every valid row cost ~25 ms per million rows to turn into a column.
    text = pl.repeat(None, len(invalid), dtype=pl.String, eager=True).alias(INVALID)
    if rejected.len():
        rows = zip(*(flag.gather(rejected).to_list() for flag in flags), strict=True)
        text = text.scatter(rejected, [render_problems(present, row) for row in rows])
    return text


def _render_invalid(present: frozenset[str]) -> pl.Expr:
    """`invalid_fields` as text in a lazy query, built in Python for each batch's rejected rows."""
    columns = problem_columns(present)
    if not columns:
        return pl.lit(None, dtype=pl.String).alias(INVALID)

    def render(batch: pl.Series) -> pl.Series:
        fields = batch.struct
        return _problem_text(present, fields.field(INVALID), [fields.field(c) for c in columns])

    struct = pl.struct(INVALID, *columns)
    return struct.map_batches(render, return_dtype=pl.String, is_elementwise=True).alias(INVALID)


def _rendered(
    frame: pl.DataFrame,
    present: frozenset[str],
    columns: list[str],
    constants: dict[str, pl.Series],
    height: int,
) -> pl.DataFrame:
    """A collected frame's `invalid_fields` as text, its problem flags dropped, its constants added.

    Done once for the whole frame after the streaming engine: a Python call per morsel inside
    it held back both threads (~20% of a large frame's time).

    A column with one value for every row (`constants`) is left out of the query and added
    here as a constant, which Polars keeps as one value (29 of the 129 columns of a cohort with
    no CT or laboratory values). Adding a column copies every column into one chunk unless all
    are cut alike (the streaming engine returns one chunk per morsel), so the text, built as
    one chunk, is cut as the others are.
    """
    kept = [frame.get_column(name) for name in columns if name not in constants]
    problems = [frame.get_column(flag) for flag in problem_columns(present)]
    if problems:  # then `invalid_fields` is among them, true on the rejected rows
        text = _problem_text(present, frame.get_column(INVALID), problems)
        layout = next((column for column in kept if column.name != INVALID), text)
        kept = [_cut_like(text, layout) if c.name == INVALID else c for c in kept]
    # With no column left, the height is given.
    result = pl.DataFrame(kept) if kept else pl.DataFrame(height=height)
    added = [
        pl.lit(value[0], dtype=value.dtype).alias(name)
        for name, value in constants.items()
        if name in columns
    ]
    return result.with_columns(added).select(columns)


def _cut_like(series: pl.Series, layout: pl.Series) -> pl.Series:
    """`series` in chunks of the lengths `layout` has (slices: nothing is copied)."""
    if layout.n_chunks() == 1:
        return series.rechunk()
    pieces, start = [], 0
    for chunk in layout.get_chunks():
        pieces.append(series.slice(start, chunk.len()))
        start += chunk.len()
    return pl.concat(pieces, rechunk=False)


def polars_dtype(dtype: nw.dtypes.DType) -> pl.DataType:
    """The Polars type of a Narwhals type (record frames, the one-row frames of constants)."""
    native: pl.DataType = nw.to_native(
        nw.from_native(pl.DataFrame({"x": []})).with_columns(nw.col("x").cast(dtype))
    ).schema["x"]
    return native


def _output_columns(
    chosen: Sequence[Definition], present: set[str], explain: bool, passthrough: Sequence[str]
) -> list[str]:
    keep = public_columns(chosen)
    clash = sorted(set(passthrough) & set(keep))
    if clash:
        raise ValueError(f"keep={clash}: these names are result columns")
    absent = [name for name in passthrough if name not in present and name not in input_columns()]
    if absent:
        raise ValueError(f"keep={absent}: no such column in the frame")
    keep = [*(["id"] if "id" in present else []), *passthrough, *keep]
    if explain:
        internal = [
            *(name for name in input_columns() if name not in keep),
            GAIT_SPEED,
            *bound_columns(),
            *(test_column(d, t.threshold.id) for d in chosen for t in d.tests),
            *(rule_column(d, cat.id) for d in chosen for cat in d.categories),
        ]
        keep = keep + [name for name in dict.fromkeys(internal) if name not in keep]
    return keep


# DuckDB relations and Spark DataFrames run the rules as one SQL query compiled from these same
# stages (sarcokit.sql), rather than through Narwhals; False restores the Narwhals path (the
# benchmarks compare the two).
SQL_BACKENDS = True

# On a few rows the query planner, not the data, is the cost: of its passes only common
# subexpression elimination pays for itself (thresholds repeat their operands), and the
# in-memory engine skips the streaming engine's setup. ~25% off a one-record assessment; from
# a few thousand rows on, the default plan is as fast or faster.
SMALL_FRAME_ROWS = 1_000
_SMALL_FRAME_FLAGS = pl.QueryOptFlags.none()
_SMALL_FRAME_FLAGS.comm_subexpr_elim = True


def evaluate(
    frame: IntoFrameT,
    definition_ids: Sequence[DefinitionRef] | None = None,
    *,
    estimate_asm: EstimateAsm | None = None,
    explain: bool = False,
    keep: Sequence[str] = (),
) -> IntoFrameT:
    """Apply the definitions to every row; returns the result columns in the frame's own type.

    Missing input columns are read as unknown. Rows whose values fail validation keep their
    place, with `invalid_fields` naming the problems and every result null. With `explain`,
    the canonical inputs and the internal test and rule flags are kept as well. `keep` names
    columns to pass through (survey weights, grouping columns; input fields as validated).
    On Polars, categories and component states are Enum columns (they compare equal to their
    text); other backends return text.
    """
    chosen = definitions(tuple(definition_ids) if definition_ids else None)
    if estimate_asm is not None and estimate_asm not in ASM_EQUATIONS:
        raise ValueError(f"estimate_asm={estimate_asm!r}; expected one of {sorted(ASM_EQUATIONS)}")
    key = tuple(definition_key(d) for d in chosen)
    nw_frame: Any = nw.from_native(frame)
    schema = nw_frame.collect_schema()
    check_frame_types(schema)
    present = set(schema)
    given = frozenset(name for name in input_columns() if name in present)
    columns = _output_columns(chosen, present, explain, [k for k in keep if k != "id"])
    native = nw.to_native(nw_frame)
    if isinstance(native, pl.DataFrame | pl.LazyFrame):
        lazy = native.lazy()
        pipeline = _compiled(key, estimate_asm, given)
        for polars_stage in pipeline.stages:
            lazy = lazy.with_columns(*polars_stage)
        if isinstance(native, pl.LazyFrame):
            return lazy.with_columns(_render_invalid(given)).select(columns)  # type: ignore[return-value]
        varying = [name for name in columns if name not in pipeline.constants]
        flagged = lazy.select(list(dict.fromkeys([*varying, *problem_columns(given)])))
        if native.height <= SMALL_FRAME_ROWS:
            collected = flagged.collect(engine="in-memory", optimizations=_SMALL_FRAME_FLAGS)
        else:
            collected = flagged.collect()
        rendered = _rendered(collected, given, columns, pipeline.constants, native.height)
        return rendered  # type: ignore[return-value]
    if SQL_BACKENDS and not explain:
        from sarcokit.sql import evaluate_native

        compiled = evaluate_native(native, chosen, estimate_asm, sorted(present), keep)
        if compiled is not None:
            return compiled  # type: ignore[no-any-return]
    nw_frame = nw_frame.with_columns(
        *(
            nw.lit(None, dtype=spec.dtype()).alias(name)
            for name, (spec, _) in input_columns().items()
            if name not in present
        )
    )
    for stage in stages(key, estimate_asm, given):
        if stage:  # a choice of definitions may leave a stage empty (no osteosarcopenia)
            nw_frame = nw_frame.with_columns(*stage)
    return nw.to_native(nw_frame.select(columns))  # type: ignore[no-any-return]
