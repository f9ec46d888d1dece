"""Table 1: participant characteristics overall and by sarcopenia status, laid out as tableone.

Continuous variables are shown as mean ± SD, or median [IQR] when the distribution is skewed
(|sample skewness| > 1, a rule of thumb; `tableone` leaves the choice to the user and so do
`nonnormal` here). Categorical variables are n (%). Missing values are counted per variable and
left out of the denominators. Standardised mean differences (SMD) compare the sarcopenia and
no-sarcopenia columns: for a continuous variable (m1 − m2) / √((s1² + s2²) / 2), for a
categorical one the multivariate form of Yang D, Dalton JE, A unified approach to measuring the
effect size between two groups using SAS. SAS Global Forum 2012, paper 335 (as `tableone` uses).
With a survey weight, means, SDs, quantiles and percentages are weighted (n stays the count of
rows); the weighted SD is √(Σw(x − m)² / Σw).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from sarcokit.fields import field_specs
from sarcokit.i18n import catalogue

FloatArray = npt.NDArray[np.float64]

# Candidate rows of Table 1, in order: the subject-record fields and derived values most papers
# report. Only those the results hold with at least one value are shown.
CONTINUOUS = (
    "age",
    "height_m",
    "height_cm",
    "weight_kg",
    "bmi_kg_m2",
    "grip_kg",
    "gait_speed_m_s",
    "chair_stand_5x_s",
    "sppb",
    "asmi_kg_m2",
    "calf_cm",
    "sarc_f_total",
)
CATEGORICAL = ("sex",)
UNKNOWN = "unknown"
_UNITS = {
    "bmi_kg_m2": "kg/m²",
    "asmi_kg_m2": "kg/m²",
    "sarc_f_total": "points",
    "height_cm": "cm",
}
_NAMES = {
    "age": "Age",
    "height_m": "Height",
    "height_cm": "Height",
    "weight_kg": "Weight",
    "bmi_kg_m2": "BMI",
}


def label(name: str) -> str:
    """A plain-language row label with its unit: 'Grip strength, kg'."""
    words = _NAMES.get(name) or catalogue("en").get(f"input.{name}") or name.replace("_", " ")
    spec = field_specs().get(name)
    unit = _UNITS.get(name) or (spec.unit if spec is not None else None)
    words = words[0].upper() + words[1:]
    return f"{words}, {unit}" if unit and unit != "score" else words


@dataclass(frozen=True)
class Group:
    """One column of Table 1: its heading and the rows (a Boolean filter) it holds."""

    heading: str
    rows: pl.Expr


def _quantiles(values: FloatArray, weights: FloatArray, qs: Sequence[float]) -> list[float]:
    """For each q, the smallest value whose cumulative weight share reaches q (0.5: median).

    `values` are sorted ascending, ties in their original order, and `weights` go with them.
    """
    cumulative = np.cumsum(weights)
    last = len(values) - 1
    return [
        float(values[min(int(np.searchsorted(cumulative, q * cumulative[-1], side="left")), last)])
        for q in qs
    ]


def _skewed(values: FloatArray) -> bool:
    if len(values) < 3 or float(np.std(values)) == 0:
        return False
    centred = values - values.mean()
    squared = centred * centred
    skewness = float(np.mean(squared * centred) / np.mean(squared) ** 1.5)
    return abs(skewness) > 1


def _continuous(
    values: FloatArray, weights: FloatArray, quartiles: list[float] | None
) -> tuple[str, float, float]:
    """The cell text and the (mean, SD) the SMD uses; quartiles given when skewed."""
    if len(values) == 0:
        return "–", float("nan"), float("nan")
    total = float(weights.sum())
    mean = float((weights * values).sum() / total)
    if np.all(weights == 1):
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    else:
        sd = float(np.sqrt((weights * (values - mean) ** 2).sum() / total))
    if quartiles is not None:
        low, mid, high = quartiles
        return f"{mid:.2f} [{low:.2f}, {high:.2f}]", mean, sd
    return f"{mean:.2f} ± {sd:.2f}", mean, sd


def _smd_continuous(a: tuple[float, float], b: tuple[float, float]) -> float | None:
    pooled = np.sqrt((a[1] ** 2 + b[1] ** 2) / 2)
    if not np.isfinite(pooled) or pooled == 0:
        return None
    return float(abs(a[0] - b[0]) / pooled)


def smd_categorical(p1: Sequence[float], p2: Sequence[float]) -> float | None:
    """Yang & Dalton 2012 SMD of two category distributions (shares summing to 1)."""
    t = np.asarray(p1[1:], dtype=np.float64) - np.asarray(p2[1:], dtype=np.float64)
    if len(t) == 0:
        return None
    a = np.asarray(p1[1:], dtype=np.float64)
    b = np.asarray(p2[1:], dtype=np.float64)
    s = -(np.outer(a, a) + np.outer(b, b)) / 2
    np.fill_diagonal(s, (a * (1 - a) + b * (1 - b)) / 2)
    value = float(t @ np.linalg.pinv(s) @ t)
    return float(np.sqrt(max(value, 0.0)))


def table_one(
    results: pl.DataFrame | pl.LazyFrame,
    groups: Sequence[Group],
    *,
    compare: tuple[int, int] | None = None,
    weight: str | None = None,
    nonnormal: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Table 1 of `results`: one row per line (variable or level), one column per group.

    Columns: `variable`, `level` (category, or the statistic shown), one column per group
    heading, `missing` (rows without the value, all groups), `smd` (between the two groups
    of `compare`, by index). The first line is n (with the weighted n when weighted).
    A LazyFrame (a scored file) is read one variable at a time, so a cohort of millions of
    rows never has all its columns in memory at once.
    """
    lazy = results.lazy()
    names = lazy.collect_schema().names()
    candidates = [c for c in (*CONTINUOUS, *CATEGORICAL) if c in names]
    counts = lazy.select(pl.len(), *(pl.col(c).null_count() for c in candidates)).collect()
    height = int(counts["len"][0])
    filled = {c for c in candidates if counts[c][0] < height}
    variables = [c for c in CONTINUOUS if c in filled]
    if "height_m" in variables and "height_cm" in variables:
        variables.remove("height_cm")  # one height: the engine's, in metres
    categorical = [c for c in CATEGORICAL if c in filled]

    def read(name: str) -> pl.Series:
        return lazy.select(name).collect().to_series()

    # Each group as a mask over the rows, so that a variable is sorted once for all groups.
    # (with_columns: it gives a literal such as pl.lit(True) one value per row.)
    ins = [f"_in{index}" for index in range(len(groups))]
    in_groups = lazy.with_columns(
        group.rows.fill_null(False).alias(name) for group, name in zip(groups, ins, strict=True)
    )
    mask_frame = in_groups.select(ins).collect()
    masks = [mask_frame[name].to_numpy() for name in ins]
    del mask_frame
    every_weight = (
        read(weight).cast(pl.Float64).fill_null(0.0).to_numpy().astype(np.float64)
        if weight
        else np.ones(height, dtype=np.float64)
    )
    # The groups stay masks: a filtered copy of the frame per group would hold every row
    # again (Overall alone is a second copy of a cohort of millions).
    weights = [every_weight[m] for m in masks]
    headings = [g.heading for g in groups]
    lines: list[dict[str, object]] = []
    first: dict[str, object] = {"variable": "n", "level": ""}
    for heading, mask, w in zip(headings, masks, weights, strict=True):
        rows = int(mask.sum())
        first[heading] = f"{rows:,}" + (f" (weighted {w.sum():,.0f})" if weight else "")
    first |= {"missing": "", "smd": None}
    lines.append(first)
    for name in variables:
        read_column = read(name)
        column = read_column.cast(pl.Float64)
        present = column.is_not_null().to_numpy()
        numbers = column.to_numpy()
        everything = numbers[present]
        skewed = name in nonnormal if nonnormal is not None else _skewed(everything)
        line: dict[str, object] = {
            "variable": label(name),
            "level": "median [IQR]" if skewed else "mean ± SD",
        }
        if skewed:
            # One stable sort of all values: a group's values in that order are its own stable
            # sort, so its quantiles are those of sorting the group alone.
            order = np.argsort(everything, kind="stable")
            ranked, ranked_weights = everything[order], every_weight[present][order]
        moments = []
        for heading, mask in zip(headings, masks, strict=True):
            chosen = mask & present
            values, w = numbers[chosen], every_weight[chosen]
            quartiles = None
            if skewed and len(values):
                in_group = mask[present][order]
                quartiles = _quantiles(
                    ranked[in_group], ranked_weights[in_group], (0.25, 0.5, 0.75)
                )
            text, mean, sd = _continuous(values, w, quartiles)
            line[heading] = text
            moments.append((mean, sd))
        line["missing"] = str(read_column.null_count())
        line["smd"] = _smd_continuous(*(moments[i] for i in compare)) if compare else None
        lines.append(line)
    for name in categorical:
        column = read(name).cast(pl.String)
        levels = sorted(column.drop_nulls().unique().to_list())
        shares: list[list[float]] = []
        block = []
        for level in levels:
            block.append({"variable": label(name), "level": level})
        for heading, mask, w in zip(headings, masks, weights, strict=True):
            values = column.filter(pl.Series(mask))
            present = values.is_not_null().to_numpy()
            total = float(w[present].sum())
            group_shares = []
            for index, level in enumerate(levels):
                hit = (values == level).fill_null(False).to_numpy()
                count = int(hit.sum())
                share = float(w[hit].sum()) / total if total else float("nan")
                group_shares.append(share)
                block[index][heading] = f"{count:,} ({100 * share:.1f}%)" if total else "–"
            shares.append(group_shares)
        smd = None
        if compare and all(np.isfinite(shares[i]).all() for i in compare):
            smd = smd_categorical(shares[compare[0]], shares[compare[1]])
        for index, line in enumerate(block):
            line["missing"] = str(column.null_count()) if index == 0 else ""
            line["smd"] = smd if index == 0 else None
            lines.append(line)
    schema: dict[str, pl.DataType] = {"variable": pl.String(), "level": pl.String()}
    schema |= dict.fromkeys(headings, pl.String())
    schema |= {"missing": pl.String(), "smd": pl.Float64()}
    return pl.DataFrame(lines, schema=schema, orient="row")
