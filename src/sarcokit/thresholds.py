"""Cut-off tests: a measured value compared with a cited cut-off, as three-valued columnar flags."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import narwhals as nw

from sarcokit.fields import field_specs, one_of
from sarcokit.i18n import Message

Op = Literal["<", "<=", ">", ">=", "is_true", "in"]
OPS: tuple[str, ...] = ("<", "<=", ">", ">=", "is_true", "in")
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
    """One cut-off value and the subjects it applies to (a sex, a set of mass methods, an age
    band `age_from` <= age < `age_below` in completed years)."""

    value: float
    sex: Sex | None = None
    methods: tuple[str, ...] | None = None
    age_from: float | None = None
    age_below: float | None = None
    # The inequality when the source prints it differently for this cut-off (one sex "or
    # less", the other "less than"); None = the test's own.
    op: Op | None = None

    @property
    def age_banded(self) -> bool:
        """Whether the cut-off applies to an age band only."""
        return self.age_from is not None or self.age_below is not None


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
    # For low_when = "in": the codes of a categorical input that count as low (positive).
    codes: tuple[str, ...] = ()

    @property
    def method_specific(self) -> bool:
        """Whether any cut-off depends on how muscle mass was measured."""
        return any(v.methods is not None for v in self.variants)

    @property
    def stratified(self) -> bool:
        """Whether the cut-off depends on sex, mass method or age band."""
        return any(
            v.sex is not None or v.methods is not None or v.age_banded for v in self.variants
        )


def parse_threshold(test_id: str, raw: Mapping[str, Any], where: str) -> Threshold:
    """Read one test table from a criteria file; raises CriteriaError on the first problem
    (`threshold_problems` lists them all)."""
    problems = threshold_problems(test_id, raw)
    if problems:
        raise CriteriaError(f"{where}: {problems[0]}")
    return build_threshold(test_id, raw)


AGE_KEYS = ("age_from", "age_below")
_CUTOFF_KEYS = frozenset({"any", "male", "female", "methods", "low_when", *AGE_KEYS})


def threshold_problems(test_id: str, raw: Mapping[str, Any]) -> list[str]:
    """Every problem of one test table, as sentences naming the test (empty when it is sound)."""
    problems: list[str] = []
    name = test_id
    for key in ("low_when", "source", "input"):
        if key not in raw:
            problems.append(Message("loader.test_lacks", test=name, key=key))
    op = raw.get("low_when")
    if op is not None and op not in OPS:
        allowed = ", ".join(map(repr, OPS))
        problems.append(Message("loader.test_op", test=name, op=op, allowed=allowed))
    if "source" in raw and not str(raw["source"]).strip():
        problems.append(Message("loader.test_empty_source", test=name))
    cutoffs: list[Any] = list(raw.get("cutoffs", [])) or (
        [raw["cutoff"]] if "cutoff" in raw else []
    )
    if op in ("is_true", "in") and cutoffs:
        problems.append(Message("loader.test_unused_cutoffs", test=name, op=op))
    if op in ("<", "<=", ">", ">=") and not cutoffs:
        problems.append(Message("loader.test_needs_cutoffs", test=name))
    if op == "in" and not raw.get("codes"):
        problems.append(Message("loader.test_needs_codes", test=name))
    methods_known = set(mass_methods())
    keys: list[tuple[Any, ...]] = []
    for cutoff in cutoffs:
        if not isinstance(cutoff, Mapping):
            problems.append(Message("loader.test_cutoff_not_table", test=name, cutoff=cutoff))
            continue
        unknown = sorted(set(cutoff) - _CUTOFF_KEYS)
        if unknown:
            problems.append(Message("loader.test_cutoff_keys", test=name, keys=unknown))
        methods = tuple(cutoff["methods"]) if "methods" in cutoff else None
        if methods is not None and not set(methods) <= methods_known:
            known = ", ".join(sorted(methods_known))
            problems.append(
                Message("loader.test_methods", test=name, methods=list(methods), known=known)
            )
        values = {k: cutoff[k] for k in ("any", "male", "female") if k in cutoff}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(Message("loader.test_not_number", test=name, key=key, value=value))
        if cutoff.get("low_when", op) != op and cutoff.get("low_when") not in (
            "<",
            "<=",
            ">",
            ">=",
        ):
            problems.append(Message("loader.test_cutoff_op", test=name, op=cutoff.get("low_when")))
        low, high = cutoff.get("age_from"), cutoff.get("age_below")
        if low is not None and high is not None and not low < high:
            problems.append(Message("loader.test_empty_band", test=name, low=low, high=high))
        sexes: tuple[str | None, ...] = (
            (None,) if "any" in cutoff else tuple(x for x in ("male", "female") if x in cutoff)
        )
        keys.extend((who, methods, low, high) for who in sexes)
    # Each stratum (method, age band) needs a cut-off for both sexes, in one table or two.
    strata: dict[tuple[Any, ...], set[Any]] = {}
    for who, methods, low, high in keys:
        strata.setdefault((methods, low, high), set()).add(who)
    for sexes_found in strata.values():
        if None not in sexes_found:
            for sex in ("male", "female"):
                if sex not in sexes_found:
                    problems.append(Message(f"loader.test_lacks_{sex}", test=name))
    problems.extend(_overlaps(name, keys))
    return problems


def _overlaps(name: str, keys: Sequence[tuple[Any, ...]]) -> list[str]:
    """Two cut-offs that could apply to one subject (same sex, method and age) overlap."""
    found: list[str] = []
    for i, (sex_a, methods_a, low_a, high_a) in enumerate(keys):
        for sex_b, methods_b, low_b, high_b in keys[i + 1 :]:
            same_sex = sex_a is None or sex_b is None or sex_a == sex_b
            same_method = (
                methods_a is None or methods_b is None or bool(set(methods_a) & set(methods_b))
            )
            lo_a, lo_b = low_a if low_a is not None else -1e9, low_b if low_b is not None else -1e9
            hi_a, hi_b = (
                high_a if high_a is not None else 1e9,
                high_b if high_b is not None else 1e9,
            )
            same_age = lo_a < hi_b and lo_b < hi_a
            if same_sex and same_method and same_age:
                who = ", ".join(
                    str(part)
                    for part in (
                        sex_a or sex_b or "any sex",
                        "/".join(methods_a or methods_b or ()) or "any method",
                        f"age {max(lo_a, lo_b):g}-{min(hi_a, hi_b):g}"
                        if low_a is not None or low_b is not None or high_a is not None
                        else "any age",
                    )
                )
                found.append(Message("loader.test_overlap", test=name, who=who))
    return found


def build_threshold(test_id: str, raw: Mapping[str, Any]) -> Threshold:
    """A test table already checked by `threshold_problems`, as a Threshold."""
    cutoffs: list[Mapping[str, Any]] = list(raw.get("cutoffs", [])) or (
        [raw["cutoff"]] if "cutoff" in raw else []
    )
    variants: list[Variant] = []
    for cutoff in cutoffs:
        methods = tuple(cutoff["methods"]) if "methods" in cutoff else None
        ages = {k: float(cutoff[k]) for k in AGE_KEYS if k in cutoff}
        own = cutoff.get("low_when")
        if "any" in cutoff:
            variants.append(Variant(float(cutoff["any"]), None, methods, **ages, op=own))
        else:
            for sex in SEXES:
                if sex in cutoff:
                    variants.append(Variant(float(cutoff[sex]), sex, methods, **ages, op=own))
    unable = None
    if "unable" in raw:
        unable = Unable(str(raw["unable"]["field"]), bool(raw["unable"]["value"]))
    return Threshold(
        test_id,
        str(raw["input"]),
        raw["low_when"],
        tuple(variants),
        str(raw["source"]),
        unable,
        tuple(str(c) for c in raw.get("codes", ())),
    )


SEXES: tuple[Sex, ...] = ("male", "female")


def mass_methods() -> tuple[str, ...]:
    """The declared measurement methods of `asm_method` a cut-off can be tied to."""
    values = field_specs()["asm_method"].values
    return tuple(v for v in values if v not in UNDECLARED_METHODS)


def _sex_column(sex: str) -> str:
    return f"__sex_is_{sex}"


def _method_column(method: str) -> str:
    return f"__asm_method_may_be_{method}"


def age_bounds(tests: Iterable[Threshold]) -> list[tuple[str, float]]:
    """The age-band ends the tests' cut-offs use, as (`age_from` or `age_below`, age)."""
    found = {
        (key, getattr(v, key))
        for test in tests
        for v in test.variants
        for key in AGE_KEYS
        if getattr(v, key) is not None
    }
    return sorted(found)


def _age_column(key: str, age: float) -> str:
    return f"__{key}_{age:g}".replace(".", "_").replace("-", "minus")


def _age_condition(key: str, age: float) -> nw.Expr:
    """Whether a band end may hold: a missing age may be any age."""
    value = nw.col("age")
    return (value >= age if key == "age_from" else value < age).fill_null(True)


def subject_exprs(ages: Sequence[tuple[str, float]] = ()) -> list[nw.Expr]:
    """Which sex, mass method and age band may apply to each row, computed once for all
    cut-offs (`ages` as `age_bounds` lists them).

    Comparing the text of `sex` and `asm_method` again for every cut-off variant of every
    test was the costliest part of the tests; these Boolean columns are read instead. A
    missing sex or method may be any of them; an undeclared method (an equation) may be any.
    The age-band ends likewise: AWGS 2025 compares the age with 50 and 65 in each of its
    eight mass cut-offs.
    """
    method = nw.col("asm_method")
    undeclared = method.is_null() | one_of(method, UNDECLARED_METHODS)
    return [
        *((nw.col("sex") == sex).fill_null(True).alias(_sex_column(sex)) for sex in SEXES),
        *((undeclared | (method == m)).alias(_method_column(m)) for m in mass_methods()),
        *(_age_condition(key, age).alias(_age_column(key, age)) for key, age in ages),
    ]


def _possible(variant: Variant, ages: bool = False) -> nw.Expr:
    """Whether the variant may apply: true or unknown (a missing sex or method) counts.
    With `ages`, the age-band conditions are read from the `subject_exprs` columns."""
    conditions: list[nw.Expr] = []
    if variant.sex is not None:
        conditions.append(nw.col(_sex_column(variant.sex)))
    if variant.methods is not None:
        conditions.append(
            nw.any_horizontal(
                [nw.col(_method_column(m)) for m in variant.methods], ignore_nulls=False
            )
        )
    for key in AGE_KEYS:
        age = getattr(variant, key)
        if age is not None:
            condition = nw.col(_age_column(key, age)) if ages else _age_condition(key, age)
            conditions.append(condition)
    return nw.all_horizontal(conditions, ignore_nulls=False) if conditions else nw.lit(True)


Bounds = Callable[[Variant], tuple[nw.Expr, nw.Expr]]


def _compare_bounded(op: Op, low: nw.Expr, high: nw.Expr, cutoff: float) -> nw.Expr:
    """Three-valued comparison of a value known to lie in [low, high]: decided when both ends
    give the same answer (the comparisons are monotone, so every value between does too)."""
    compare = _COMPARE[op]
    at_low: nw.Expr = compare(low, cutoff)
    if low is high:
        # One value (the Ishii score of one sex): the comparison itself.
        return at_low
    at_high: nw.Expr = compare(high, cutoff)
    # Where the ends agree that is the answer; null where they differ or either is unknown.
    # One comparison and one branch instead of two conjunctions and two branches.
    return nw.when(at_low == at_high).then(at_low)


def agreed(possible: Sequence[nw.Expr], results: Sequence[nw.Expr]) -> nw.Expr:
    """The answer every case that may apply gives: null where they disagree, where none may
    apply or where an applicable one is unknown. `possible` must never be null.

    True where some applicable case says true and none says false, false the other way round:
    the same answers as "every applicable case says true, and some case applies" in fewer
    operations (one branch on `some_true != some_false` instead of two on conjunctions).
    """
    if len(possible) == 2:
        # Two cases (a cut-off for men and one for women): the first where only it may apply,
        # the second where only it may, and where both may, their answer if they give the same.
        # Same answers as below; the branches test columns without nulls, which costs Polars
        # about a third less than Kleene logic over the results.
        (first, second), (one, other) = possible, results
        return (
            nw.when(~second)
            .then(nw.when(first).then(one))
            .when(~first)
            .then(other)
            .when(one == other)
            .then(one)
        )
    some_true = nw.any_horizontal(
        [p & r for p, r in zip(possible, results, strict=True)], ignore_nulls=False
    )
    some_false = nw.any_horizontal(
        [p & ~r for p, r in zip(possible, results, strict=True)], ignore_nulls=False
    )
    return nw.when(some_true != some_false).then(some_true)


_OP_NAMES = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


def comparison_column(test: Threshold, variant: Variant) -> str:
    """Internal column of a value compared with one cut-off (`comparison_exprs`)."""
    op = _OP_NAMES[variant.op or test.op]
    # Letters, digits and _ only (the SQL compiler's names): 7.23 → 7_23, -2.5 → minus2_5.
    cutoff = re.sub(r"\W", "_", repr(float(variant.value)).replace("-", "minus"))
    return f"__cut_{test.input}_{op}_{cutoff}"


def comparison_exprs(tests: Iterable[Threshold]) -> list[nw.Expr]:
    """Each distinct comparison of a value with a cut-off that the tests make, once.

    Ten definitions compare grip strength, gait speed and muscle mass with overlapping sets
    of cut-offs, each test with every cut-off twice (low, and normal); read from these
    Boolean columns (`threshold_expr(shared=True)`), a test negates a column instead of
    comparing a float column again.
    """
    found: dict[str, nw.Expr] = {}
    for test in tests:
        if test.op in _COMPARE:
            for v in test.variants:
                compare = _COMPARE[v.op or test.op]
                found.setdefault(comparison_column(test, v), compare(nw.col(test.input), v.value))
    return [expr.alias(name) for name, expr in found.items()]


def threshold_expr(
    test: Threshold, bounds: Bounds | None = None, ages: bool = False, shared: bool = False
) -> nw.Expr:
    """Three-valued flag: true = low, false = normal, null = not decided by the inputs.

    When the sex or the mass method is unknown, the flag is still decided if every cut-off
    that could apply gives the same answer (a grip of 10 kg is low for men and women alike).
    With `bounds`, the value is a score of which only the least and greatest possible values
    are known (items missing, criteria.md §10.10): the flag is decided where both agree.
    With `ages`, the age bands are read from columns `subject_exprs` made for these tests;
    with `shared`, the comparisons from the columns `comparison_exprs` made for them.
    """
    value = nw.col(test.input)
    if test.op == "is_true":
        flag = value
    elif test.op == "in":
        flag = (
            nw.when(value.is_null())
            .then(nw.lit(None, dtype=nw.Boolean()))
            .otherwise(value.is_in(list(test.codes)))
        )
    else:
        possible = [_possible(v, ages) for v in test.variants]
        if bounds is None and shared:
            results = [nw.col(comparison_column(test, v)) for v in test.variants]
        elif bounds is None:
            results = [_COMPARE[v.op or test.op](value, v.value) for v in test.variants]
        else:
            results = [
                _compare_bounded(v.op or test.op, *bounds(v), v.value) for v in test.variants
            ]
        if len(test.variants) == 1 and not test.stratified:
            flag = results[0]
        else:
            flag = agreed(possible, results)
    if test.unable is not None:
        flag = (
            nw.when(nw.col(test.unable.field) == test.unable.value)
            .then(nw.lit(True))
            .otherwise(flag)
        )
    return flag


def applicable_variants(
    test: Threshold, sex: str | None, method: str | None, age: float | None = None
) -> Sequence[Variant]:
    """The cut-offs that may apply to a subject, for showing in a reason."""
    known_method = None if method in UNDECLARED_METHODS else method
    return [
        v
        for v in test.variants
        if (sex is None or v.sex is None or v.sex == sex)
        and (known_method is None or v.methods is None or known_method in v.methods)
        and (age is None or v.age_from is None or age >= v.age_from)
        and (age is None or v.age_below is None or age < v.age_below)
    ]
