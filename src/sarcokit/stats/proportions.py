"""Proportions of a Boolean or category column, per group, with confidence intervals.

Counting is done by Polars aggregations on a LazyFrame, so only one row per group (and per
category) is ever materialised; the intervals are then computed on those counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from sarcokit.stats._inputs import (
    NOT_EVALUABLE,
    By,
    Frame,
    aggregate,
    evaluable,
    keys,
    label,
    lazy_column,
    require_boolean,
    require_columns,
)

Method = Literal["wilson", "clopper-pearson"]
FloatArray = npt.NDArray[np.float64]


def normal_quantile(level: float) -> float:
    """Two-sided standard normal quantile for a confidence level (1.959964 for 0.95)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    return float(stats.norm.ppf(0.5 + level / 2))


def proportion_interval(
    events: npt.ArrayLike, n: npt.ArrayLike, method: Method = "wilson", level: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Confidence interval (low, high) for the proportion events / n; NaN where n = 0.

    Methods:
    - ``"wilson"``: the score interval of Wilson EB, Probable inference, the law of succession,
      and statistical inference. J Am Stat Assoc 1927;22:209-212, without continuity
      correction (method 3 of Newcombe RG, Two-sided confidence intervals for the single
      proportion: comparison of seven methods. Stat Med 1998;17:857-872).
    - ``"clopper-pearson"``: the exact interval of Clopper CJ, Pearson ES, The use of confidence
      or fiducial limits illustrated in the case of the binomial. Biometrika 1934;26:404-413,
      from beta quantiles: low = B(α/2; x, n−x+1), high = B(1−α/2; x+1, n−x), with low = 0 at
      x = 0 and high = 1 at x = n.
    """
    x = np.asarray(events, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    if np.any(x < 0) or np.any(x > m):
        raise ValueError("events must lie between 0 and n")
    z = normal_quantile(level)
    # n = 0 has no interval; the division warnings it raises are expected and masked below.
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "wilson":
            centre = (x + z**2 / 2) / (m + z**2)
            half = z / (m + z**2) * np.sqrt(x * (m - x) / m + z**2 / 4)
            # The bounds are exactly 0 at x = 0 and 1 at x = n; say so rather than round.
            low = np.where(x == 0, 0.0, centre - half)
            high = np.where(x == m, 1.0, centre + half)
        elif method == "clopper-pearson":
            alpha = 1 - level
            low = np.where(x == 0, 0.0, stats.beta.ppf(alpha / 2, x, m - x + 1))
            high = np.where(x == m, 1.0, stats.beta.ppf(1 - alpha / 2, x + 1, m - x))
        else:
            raise ValueError(f"unknown interval method {method!r}")
    empty = m == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def add_interval(counts: pl.DataFrame, method: Method, level: float) -> pl.DataFrame:
    """Add estimate = events / n (null when n = 0), its interval and the method's name."""
    low, high = proportion_interval(counts["events"], counts["n"], method, level)
    return counts.with_columns(
        pl.col("n").cast(pl.Int64),
        pl.col("events").cast(pl.Int64),
        estimate=pl.when(pl.col("n") > 0).then(pl.col("events") / pl.col("n")),
        ci_low=pl.Series(low, dtype=pl.Float64, nan_to_null=True),
        ci_high=pl.Series(high, dtype=pl.Float64, nan_to_null=True),
        method=pl.lit(method),
    )


def prevalence(
    frame: Frame | pl.Series,
    column: str | None = None,
    *,
    by: By = None,
    method: Method = "wilson",
    level: float = 0.95,
) -> pl.DataFrame:
    """Share of evaluable rows where a Boolean column is true, per group, with its interval.

    The denominator ``n`` counts the rows where the column is not null: null means not
    evaluable and leaves the denominator. ``events`` counts the true rows. A group with no
    evaluable row has n = 0 and a null estimate. Columns: the ``by`` columns (a null group
    last), ``n``, ``events``, ``estimate``, ``ci_low``, ``ci_high``, ``method``. The interval is
    Wilson's score interval or the Clopper–Pearson exact interval (see `proportion_interval`).
    """
    lf, column = lazy_column(frame, column)
    require_boolean(lf, [column])
    counts = aggregate(lf, keys(by), n=pl.col(column).count(), events=pl.col(column).sum())
    return add_interval(counts.collect(), method, level)


def category_prevalence(
    frame: Frame | pl.Series,
    column: str | None = None,
    *,
    by: By = None,
    exclude: Sequence[str] = NOT_EVALUABLE,
    method: Method = "wilson",
    level: float = 0.95,
) -> pl.DataFrame:
    """Share of evaluable rows in each category of a column, per group, with its interval.

    Rows that are null or carry an ``exclude`` label (by default ``"indeterminate"``) are not
    evaluable and leave the denominator ``n``; ``events`` counts the rows in the category.
    Every category seen (for an Enum column, every declared category) appears in every group,
    with 0 events where absent. Columns: the ``by`` columns, ``category`` (as text), ``n``,
    ``events``, ``estimate``, ``ci_low``, ``ci_high``, ``method``; intervals as in `prevalence`.
    """
    lf, column = lazy_column(frame, column)
    dtype = require_columns(lf, [column])[column]
    group = keys(by)
    answered = evaluable(column, exclude)
    totals = aggregate(lf, group, n=answered.sum())
    counts = (
        lf.filter(answered).group_by([*group, label(column).alias("category")]).agg(events=pl.len())
    )
    if isinstance(dtype, pl.Enum):
        declared = [c for c in dtype.categories.to_list() if c not in exclude]
        categories = pl.LazyFrame({"category": declared}, schema={"category": pl.String})
    else:
        categories = counts.select("category").unique().sort("category")
    table = (
        totals.join(categories.with_row_index("_order"), how="cross")
        .join(counts, on=[*group, "category"], how="left", nulls_equal=True)
        .with_columns(pl.col("events").fill_null(0))
        .sort([*group, "_order"], nulls_last=True)
        .select(*group, "category", "n", "events")
    )
    return add_interval(table.collect(), method, level)
