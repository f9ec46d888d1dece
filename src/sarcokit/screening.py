"""Case-finding scores: SARC-F, calf circumference, SARC-CalF, Ishii, MSRA-7 and MSRA-5."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

import narwhals as nw

from sarcokit.equations import code_expr, model_expr, parse_model
from sarcokit.fields import field_specs
from sarcokit.thresholds import Bounds, Threshold, Variant, parse_threshold, threshold_expr


@dataclass(frozen=True)
class Instrument:
    """A screening instrument: its citation and its positive (or at-risk) cut-off."""

    id: str
    title: str
    citation: str
    note: str
    test: Threshold
    provisional: bool
    raw: Mapping[str, Any]


@cache
def instruments() -> dict[str, Instrument]:
    """The instruments in reference/screening.toml."""
    text = files("sarcokit").joinpath("reference/screening.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    return {
        key: Instrument(
            id=key,
            title=entry["title"],
            citation=entry["citation"],
            note=entry["note"],
            test=parse_threshold(key, entry["test"], "reference/screening.toml"),
            provisional=bool(entry.get("provisional", False)),
            raw=entry,
        )
        for key, entry in raw.items()
    }


# Output column of each instrument's flag, as the result contract names it.
FLAG_COLUMNS = {
    "sarc_f": "sarc_f_positive",
    "calf": "calf_low",
    "sarc_calf": "sarc_calf_positive",
    "ishii": "ishii_positive",
    "msra7": "msra7_at_risk",
    "msra5": "msra5_at_risk",
}

# Output column of each instrument's score.
SCORE_COLUMNS = {
    "sarc_f": "sarc_f_total",
    "sarc_calf": "sarc_calf_total",
    "ishii": "ishii_score",
    "msra7": "msra7_total",
    "msra5": "msra5_total",
}


# Scores that are whole numbers of points (the Ishii score is not).
INTEGER_SCORES = frozenset({"sarc_f_total", "sarc_calf_total", "msra7_total", "msra5_total"})


def _sum(parts: list[nw.Expr]) -> nw.Expr:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


Bound = Literal["value", "min", "max"]


def _part(known: nw.Expr, values: list[float], bound: Bound) -> nw.Expr:
    """An item's points; for a bound, a missing item counts as its least or greatest points."""
    if bound == "value":
        return known
    return known.fill_null(min(values) if bound == "min" else max(values))


def _points_dtype(entry: Mapping[str, Any]) -> nw.dtypes.DType:
    """The narrowest integer type that holds every partial total of an instrument's points.

    The item columns and their sums are this type and only the totals are widened to Int64:
    on a large frame the twelve item columns and six sums in Int64 cost three times as much
    as in one byte (the arithmetic is the same, the memory read and written is not).
    """
    tables = [
        [entry["points"]["age_below"], entry["points"]["age_at_or_above"]],
        *(list(t.values()) for t in entry["points"].values() if isinstance(t, Mapping)),
    ]
    least = sum(min(0, *table) for table in tables)
    most = sum(max(0, *table) for table in tables)
    for dtype, low, high in _INTEGER_TYPES:
        if low <= least and most <= high:
            return dtype
    return nw.Int64()


# Integer types by width, with their ranges, for `_points_dtype`.
_INTEGER_TYPES: tuple[tuple[nw.dtypes.DType, int, int], ...] = (
    (nw.UInt8(), 0, 2**8 - 1),
    (nw.Int16(), -(2**15), 2**15 - 1),
    (nw.Int32(), -(2**31), 2**31 - 1),
)


def _msra_items(entry: Mapping[str, Any]) -> list[tuple[str, nw.Expr, list[float]]]:
    """Each MSRA item as (name, its points or null when unanswered, the points it can score)."""
    points = entry["points"]
    dtype = _points_dtype(entry)

    def lit(value: Any) -> nw.Expr:
        return nw.lit(value, dtype=dtype)

    age = nw.col("age")
    items = [
        (
            "age",
            nw.when(age < entry["age_below"])
            .then(lit(points["age_below"]))
            .when(age >= entry["age_below"])
            .then(lit(points["age_at_or_above"]))
            .otherwise(lit(None)),
            [points["age_below"], points["age_at_or_above"]],
        )
    ]
    for item, table in points.items():
        if not isinstance(table, Mapping):
            continue
        if set(table) == {"true", "false"}:
            column = nw.col(item)
            known = (
                nw.when(column)
                .then(lit(table["true"]))
                .when(~column)
                .then(lit(table["false"]))
                .otherwise(lit(None))
            )
        else:
            # In integer points, not floats cast back.
            known = code_expr(item, table, dtype)
        items.append((item, known, list(table.values())))
    return items


def _msra_item_column(key: str, item: str) -> str:
    return f"__{key}_points_{item}"


def _msra_points(key: str, entry: Mapping[str, Any], bound: Bound = "value") -> nw.Expr:
    """The total of the item columns `score_stages` computes first (each item once, rather
    than once for the total and once for each bound: these were the costliest screening
    expressions of a large frame)."""
    return _sum(
        [
            _part(nw.col(_msra_item_column(key, item)), values, bound)
            for item, _, values in _msra_items(entry)
        ]
    ).cast(nw.Int64())


MSRA = ("msra7", "msra5")
BOUNDS: tuple[Literal["min", "max"], ...] = ("min", "max")


def bound_column(score: str, bound: Literal["min", "max"]) -> str:
    """Internal column of the least or greatest value a score can take given its answered items."""
    return f"__{score}_{bound}"


def score_bounds(score: str) -> Bounds | None:
    """The bounds a cut-off on this score compares (criteria.md §10.10), or None for a plain
    value. The Ishii score has one value per sex instead, so an unknown sex is decided where
    the two equations and their cut-offs agree."""
    if score in INTEGER_SCORES:
        low, high = nw.col(bound_column(score, "min")), nw.col(bound_column(score, "max"))
        return lambda _variant: (low, high)
    if score == "ishii_score":
        return lambda variant: (nw.col(_ishii_column(variant)),) * 2
    return None


def bound_columns() -> list[str]:
    """Every internal bound column, for an explained evaluation."""
    return [
        *(bound_column(s, b) for s in sorted(INTEGER_SCORES) for b in BOUNDS),
        *(f"__ishii_score_{sex}" for sex in ("male", "female")),
    ]


def _ishii_column(variant: Variant) -> str:
    return f"__ishii_score_{variant.sex}"


def _sex_specific() -> nw.Expr:
    """The Ishii score of the subject's sex, read from the two equations' columns (computed
    once in the stage before, not a second time here)."""
    sex = nw.col("sex")
    return (
        nw.when(sex == "male")
        .then(nw.col("__ishii_score_male"))
        .when(sex == "female")
        .then(nw.col("__ishii_score_female"))
        .otherwise(nw.lit(None, dtype=nw.Float64()))
    )


def sarc_f_items() -> tuple[str, ...]:
    """The SARC-F item fields, in questionnaire order."""
    return tuple(instruments()["sarc_f"].raw["items"])


def score_stages() -> list[list[nw.Expr]]:
    """Screening expressions in dependency order; each stage may use the columns of the last.

    Besides each total, the least and greatest totals the answered items allow are computed
    (a missing item counted at its least, then its greatest points), so a flag is decided
    whenever every possible answer to the missing items gives the same one (criteria.md
    §10.10); the total itself stays null.
    """
    inst = instruments()
    items = [nw.col(item) for item in sarc_f_items()]
    # Each item's points range, as fields.toml declares it (0-2).
    item_range = [int(field_specs()[i].min or 0) for i in sarc_f_items()]
    item_top = [int(field_specs()[i].max or 0) for i in sarc_f_items()]
    ishii_models = {sex: parse_model(m) for sex, m in inst["ishii"].raw["equation"].items()}
    calf_points = inst["sarc_calf"].raw["calf_points"]
    calf_low = nw.col("calf_low")
    first = [
        _sum(items).alias("sarc_f_total"),
        _sum([i.fill_null(lo) for i, lo in zip(items, item_range, strict=True)]).alias(
            bound_column("sarc_f_total", "min")
        ),
        _sum([i.fill_null(hi) for i, hi in zip(items, item_top, strict=True)]).alias(
            bound_column("sarc_f_total", "max")
        ),
        threshold_expr(inst["calf"].test).alias("calf_low"),
        *(model_expr(m).alias(f"__ishii_score_{sex}") for sex, m in ishii_models.items()),
        *(
            known.alias(_msra_item_column(key, item))
            for key in MSRA
            for item, known, _ in _msra_items(inst[key].raw)
        ),
    ]
    calf_part = (
        nw.when(calf_low)
        .then(nw.lit(calf_points))
        .when(~calf_low)
        .then(nw.lit(0))
        .otherwise(nw.lit(None, dtype=nw.Int64()))
    )
    second = [
        (nw.col("sarc_f_total") + calf_part).alias("sarc_calf_total"),
        (nw.col(bound_column("sarc_f_total", "min")) + calf_part.fill_null(0)).alias(
            bound_column("sarc_calf_total", "min")
        ),
        (nw.col(bound_column("sarc_f_total", "max")) + calf_part.fill_null(calf_points)).alias(
            bound_column("sarc_calf_total", "max")
        ),
        _sex_specific().alias("ishii_score"),
        *(_msra_points(key, inst[key].raw).alias(f"{key}_total") for key in MSRA),
        *(
            _msra_points(key, inst[key].raw, end).alias(bound_column(f"{key}_total", end))
            for key in MSRA
            for end in BOUNDS
        ),
    ]
    third = [
        threshold_expr(inst[key].test, score_bounds(inst[key].test.input)).alias(column)
        for key, column in FLAG_COLUMNS.items()
        if key != "calf"
    ]
    return [first, second, third]
