"""Cut-off tests: a measured value compared with a cited cut-off, as three-valued columnar flags."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import narwhals as nw

from sarcokit.fields import field_specs

Op = Literal["<", "<=", ">", ">=", "is_true"]
Sex = Literal["male", "female"]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

# Printed form of each inequality and of its negation, as a reason shows them.
SYMBOL = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
NEGATION = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}

# asm_method values that name no measurement method a cut-off could be tied to.
UNDECLARED_METHODS = ("equation",)


class CriteriaError(ValueError):
    """A criteria or reference data file does not have the expected shape."""


@dataclass(frozen=True)
class Variant:
    """One cut-off value and the subjects it applies to (a sex, a set of mass methods)."""

    value: float
    sex: Sex | None = None
    methods: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Unable:
    """A field whose value means the test could not be completed, which counts as low."""

    field: str
    value: bool


@dataclass(frozen=True)
class Threshold:
    """A test: `input` is low when it stands in relation `op` to the applicable cut-off."""

    id: str
    input: str
    op: Op
    variants: tuple[Variant, ...]
    source: str
    unable: Unable | None = None

    @property
    def method_specific(self) -> bool:
        """Whether any cut-off depends on how muscle mass was measured."""
        return any(v.methods is not None for v in self.variants)


def parse_threshold(test_id: str, raw: Mapping[str, Any], where: str) -> Threshold:
    """Read one test table from a criteria file."""
    try:
        op = raw["low_when"]
        source = str(raw["source"])
        input_field = str(raw["input"])
    except KeyError as missing:
        raise CriteriaError(f"{where}: test {test_id!r} lacks {missing}") from None
    if op not in ("<", "<=", ">", ">=", "is_true"):
        raise CriteriaError(f"{where}: test {test_id!r} has low_when={op!r}")
    cutoffs: list[Mapping[str, Any]]
    if "cutoffs" in raw:
        cutoffs = list(raw["cutoffs"])
    elif "cutoff" in raw:
        cutoffs = [raw["cutoff"]]
    else:
        cutoffs = []
    if (op == "is_true") != (not cutoffs):
        raise CriteriaError(f"{where}: test {test_id!r} needs cut-offs unless low_when='is_true'")
    variants: list[Variant] = []
    for cutoff in cutoffs:
        methods = tuple(cutoff["methods"]) if "methods" in cutoff else None
        if methods is not None and not set(methods) <= set(mass_methods()):
            raise CriteriaError(f"{where}: test {test_id!r} names methods {methods}")
        if "any" in cutoff:
            variants.append(Variant(float(cutoff["any"]), None, methods))
        else:
            for sex in ("male", "female"):
                if sex not in cutoff:
                    raise CriteriaError(f"{where}: test {test_id!r} lacks a {sex} cut-off")
                variants.append(Variant(float(cutoff[sex]), sex, methods))
    unable = None
    if "unable" in raw:
        unable = Unable(str(raw["unable"]["field"]), bool(raw["unable"]["value"]))
    return Threshold(test_id, input_field, op, tuple(variants), source, unable)


SEXES: tuple[Sex, ...] = ("male", "female")


def mass_methods() -> tuple[str, ...]:
    """The declared measurement methods of `asm_method` a cut-off can be tied to."""
    values = field_specs()["asm_method"].values
    return tuple(v for v in values if v not in UNDECLARED_METHODS)


def _sex_column(sex: str) -> str:
    return f"__sex_is_{sex}"


def _method_column(method: str) -> str:
    return f"__asm_method_may_be_{method}"


def subject_exprs() -> list[nw.Expr]:
    """Which sex and mass method may apply to each row, computed once for all cut-offs.

    Comparing the text of `sex` and `asm_method` again for every cut-off variant of every
    test was the costliest part of the tests; these Boolean columns are read instead. A
    missing sex or method may be any of them; an undeclared method (an equation) may be any.
    """
    method = nw.col("asm_method")
    undeclared = method.is_null() | method.is_in(list(UNDECLARED_METHODS))
    return [
        *((nw.col("sex") == sex).fill_null(True).alias(_sex_column(sex)) for sex in SEXES),
        *((undeclared | (method == m)).alias(_method_column(m)) for m in mass_methods()),
    ]


def _possible(variant: Variant) -> nw.Expr:
    """Whether the variant may apply: true or unknown (a missing sex or method) counts."""
    conditions: list[nw.Expr] = []
    if variant.sex is not None:
        conditions.append(nw.col(_sex_column(variant.sex)))
    if variant.methods is not None:
        conditions.append(
            nw.any_horizontal(
                [nw.col(_method_column(m)) for m in variant.methods], ignore_nulls=False
            )
        )
    return nw.all_horizontal(conditions, ignore_nulls=False) if conditions else nw.lit(True)


Bounds = Callable[[Variant], tuple[nw.Expr, nw.Expr]]


def _compare_bounded(op: Op, low: nw.Expr, high: nw.Expr, cutoff: float) -> nw.Expr:
    """Three-valued comparison of a value known to lie in [low, high]: decided when both ends
    give the same answer (the comparisons are monotone, so every value between does too)."""
    compare = _COMPARE[op]
    at_low, at_high = compare(low, cutoff), compare(high, cutoff)
    return (
        nw.when(at_low & at_high)
        .then(nw.lit(True))
        .when(~at_low & ~at_high)
        .then(nw.lit(False))
        .otherwise(nw.lit(None, dtype=nw.Boolean()))
    )


def threshold_expr(test: Threshold, bounds: Bounds | None = None) -> nw.Expr:
    """Three-valued flag: true = low, false = normal, null = not decided by the inputs.

    When the sex or the mass method is unknown, the flag is still decided if every cut-off
    that could apply gives the same answer (a grip of 10 kg is low for men and women alike).
    With `bounds`, the value is a score of which only the least and greatest possible values
    are known (items missing, criteria.md §10.10): the flag is decided where both agree.
    """
    value = nw.col(test.input)
    if test.op == "is_true":
        flag = value
    else:
        compare = _COMPARE[test.op]
        possible = [_possible(v) for v in test.variants]
        if bounds is None:
            results = [compare(value, v.value) for v in test.variants]
        else:
            results = [_compare_bounded(test.op, *bounds(v), v.value) for v in test.variants]
        if len(test.variants) == 1 and test.variants[0].sex is None and not test.method_specific:
            flag = results[0]
        else:
            any_possible = nw.any_horizontal(possible, ignore_nulls=False)
            all_low = nw.all_horizontal(
                [~p | r for p, r in zip(possible, results, strict=True)], ignore_nulls=False
            )
            all_normal = nw.all_horizontal(
                [~p | ~r for p, r in zip(possible, results, strict=True)], ignore_nulls=False
            )
            flag = (
                nw.when(any_possible & all_low)
                .then(nw.lit(True))
                .when(any_possible & all_normal)
                .then(nw.lit(False))
                .otherwise(nw.lit(None, dtype=nw.Boolean()))
            )
    if test.unable is not None:
        flag = (
            nw.when(nw.col(test.unable.field) == test.unable.value)
            .then(nw.lit(True))
            .otherwise(flag)
        )
    return flag


def applicable_variants(test: Threshold, sex: str | None, method: str | None) -> Sequence[Variant]:
    """The cut-offs that may apply to a subject, for showing in a reason."""
    known_method = None if method in UNDECLARED_METHODS else method
    return [
        v
        for v in test.variants
        if (sex is None or v.sex is None or v.sex == sex)
        and (known_method is None or v.methods is None or known_method in v.methods)
    ]
