"""Agreement between definitions: cross-tabulation, Cohen's and Fleiss' kappa, overlap counts.

Rows count only where the columns compared hold an answer: null and the ``exclude`` labels
(by default ``"indeterminate"``) are not evaluable. Boolean and category columns alike are
compared as text labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import polars as pl

from sarcokit.stats._inputs import (
    NOT_EVALUABLE,
    Frame,
    evaluable,
    label,
    require_boolean,
    require_columns,
)
from sarcokit.stats.proportions import normal_quantile


def _joint_counts(lf: pl.LazyFrame, columns: Sequence[str], exclude: Sequence[str]) -> pl.DataFrame:
    """Rows per combination of the columns' labels, a label that is not evaluable as null.

    One pass over the rows, grouped on the columns as stored; the labels are made on the few
    combinations, not on every row.
    """
    names = list(dict.fromkeys(columns))
    require_columns(lf, names)
    counts = lf.group_by(names).agg(count=pl.len().cast(pl.Int64)).collect()
    return counts.with_columns(
        pl.when(evaluable(c, exclude)).then(label(c)).alias(c) for c in names
    )


def _pairs(joint: pl.DataFrame, a: str, b: str) -> pl.DataFrame:
    """Long counts (a, b, count) of one pair of columns, over rows evaluable on both."""
    return (
        joint.filter(pl.col(a).is_not_null() & pl.col(b).is_not_null())
        .group_by(pl.col(a).alias("a"), pl.col(b).alias("b"))
        .agg(pl.col("count").sum())
    )


def _pair_counts(lf: pl.LazyFrame, a: str, b: str, exclude: Sequence[str]) -> pl.DataFrame:
    """Long counts (a, b, count) over rows evaluable on both columns."""
    return _pairs(_joint_counts(lf, [a, b], exclude), a, b)


def crosstab(
    frame: Frame, row: str, column: str, *, exclude: Sequence[str] = NOT_EVALUABLE
) -> pl.DataFrame:
    """Counts of each pair of answers of two columns, over rows evaluable on both.

    One row per label of ``row`` (first column, named after it) and one count column per
    label of ``column``, labels as text in sorted order, absent pairs counted 0.
    """
    counts = _pair_counts(frame.lazy(), row, column, exclude)
    rows = sorted(set(counts["a"]))
    columns = sorted(set(counts["b"]))
    table = {(a, b): c for a, b, c in counts.iter_rows()}
    return pl.DataFrame(
        {row: rows, **{b: [table.get((a, b), 0) for a in rows] for b in columns}},
        schema={row: pl.String, **dict.fromkeys(columns, pl.Int64)},
    )


def _square_table(counts: pl.DataFrame) -> np.ndarray:
    """Square count matrix over the union of both columns' labels (sorted)."""
    labels = sorted(set(counts["a"]) | set(counts["b"]))
    index = {value: i for i, value in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for a, b, count in counts.iter_rows():
        table[index[a], index[b]] = count
    return table


def _cohen(table: np.ndarray, level: float) -> dict[str, float | None]:
    """Cohen's kappa, its large-sample SE (Fleiss, Cohen & Everitt 1969) and a normal CI."""
    result: dict[str, float | None] = dict.fromkeys(
        ("observed", "expected", "kappa", "se", "low", "high")
    )
    n = float(table.sum())
    if n == 0:
        return result
    p = table / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    observed, expected = float(np.trace(p)), float(rows @ cols)
    result |= {"observed": observed, "expected": expected}
    if expected >= 1:
        # Both columns constant on one label: kappa is 0/0.
        return result
    kappa = (observed - expected) / (1 - expected)
    diagonal = np.diag(p) * (1 - (rows + cols) * (1 - kappa)) ** 2
    # Off-diagonal cell (i, j) is weighted by (column share of i + row share of j)^2.
    off = p * (cols[:, None] + rows[None, :]) ** 2
    np.fill_diagonal(off, 0)
    variance = (
        diagonal.sum() + (1 - kappa) ** 2 * off.sum() - (kappa - expected * (1 - kappa)) ** 2
    ) / (n * (1 - expected) ** 2)
    se = float(np.sqrt(max(variance, 0.0)))
    z = normal_quantile(level)
    return result | {"kappa": kappa, "se": se, "low": kappa - z * se, "high": kappa + z * se}


def cohens_kappa(
    frame: Frame,
    column_a: str,
    column_b: str,
    *,
    exclude: Sequence[str] = NOT_EVALUABLE,
    level: float = 0.95,
) -> pl.DataFrame:
    """Cohen's kappa between two columns with its asymptotic SE and a normal-theory CI.

    κ = (p_o − p_e) / (1 − p_e) (Cohen J. A coefficient of agreement for nominal scales.
    Educ Psychol Meas 1960;20:37-46) over rows evaluable on both columns. The SE is the
    large-sample (non-null) variance of Fleiss JL, Cohen J, Everitt BS. Large sample standard
    errors of kappa and weighted kappa. Psychol Bull 1969;72:323-327, as statsmodels'
    ``cohens_kappa`` ``std_kappa``; the CI is κ ± z·SE. κ is null when there are no rows or
    both columns are constant on one label. Columns: ``column_a``, ``column_b``, ``n``,
    ``observed_agreement``, ``expected_agreement``, ``kappa``, ``se``, ``ci_low``,
    ``ci_high``, ``method``.
    """
    counts = _pair_counts(frame.lazy(), column_a, column_b, exclude)
    return _kappa_row(counts, column_a, column_b, level)


def _kappa_row(counts: pl.DataFrame, column_a: str, column_b: str, level: float) -> pl.DataFrame:
    """The one-row result of `cohens_kappa` from a pair's long counts."""
    table = _square_table(counts)
    result = _cohen(table, level)
    return pl.DataFrame(
        {
            "column_a": [column_a],
            "column_b": [column_b],
            "n": [int(table.sum())],
            "observed_agreement": [result["observed"]],
            "expected_agreement": [result["expected"]],
            "kappa": [result["kappa"]],
            "se": [result["se"]],
            "ci_low": [result["low"]],
            "ci_high": [result["high"]],
            "method": ["cohen"],
        },
        schema_overrides=dict.fromkeys(
            ("observed_agreement", "expected_agreement", "kappa", "se", "ci_low", "ci_high"),
            pl.Float64,
        ),
    )


def pairwise_kappa(
    frame: Frame,
    columns: Sequence[str],
    *,
    exclude: Sequence[str] = NOT_EVALUABLE,
    level: float = 0.95,
) -> pl.DataFrame:
    """Cohen's kappa for every pair of columns, one row per pair (a long-form kappa matrix).

    Each pair uses the rows evaluable on both of its columns, so ``n`` differs between pairs.
    Columns as `cohens_kappa`; ``.pivot(on="column_b", index="column_a", values="kappa")``
    gives the matrix.
    """
    # Every pair's counts from one pass over the rows (the joint counts of all the columns).
    joint = _joint_counts(frame.lazy(), columns, exclude)
    return pl.concat(
        [_kappa_row(_pairs(joint, a, b), a, b, level) for a, b in combinations(columns, 2)]
    )


def fleiss_kappa(
    frame: Frame, columns: Sequence[str], *, exclude: Sequence[str] = NOT_EVALUABLE
) -> pl.DataFrame:
    """Fleiss' kappa for several raters (columns) classifying the same subjects (rows).

    κ = (P̄ − P̄_e) / (1 − P̄_e), with P̄ the mean pairwise agreement per subject and
    P̄_e = Σ_j p_j² from the pooled category shares (Fleiss JL. Measuring nominal scale
    agreement among many raters. Psychol Bull 1971;76:378-382). Only subjects evaluable under
    every column count, since the formula needs the same number of raters per subject. No SE
    is given: Fleiss' 1971 variance is known to be wrong and the corrected one (Fleiss, Nee &
    Landis 1979) holds only under κ = 0. Columns: ``n`` (subjects), ``raters``,
    ``categories``, ``observed_agreement``, ``expected_agreement``, ``kappa``, ``method``.
    """
    if len(columns) < 2:
        raise ValueError("Fleiss' kappa needs at least two rater columns")
    lf = frame.lazy()
    require_columns(lf, columns)
    complete = lf.filter(pl.all_horizontal([evaluable(c, exclude) for c in columns]))
    labels = sorted(
        pl.concat([complete.select(label(c).alias("label")) for c in columns])
        .unique()
        .collect()["label"]
    )
    raters = len(columns)
    # n_ij: how many raters put subject i in category j; only sums over subjects leave Polars.
    per_category = [
        pl.sum_horizontal([(label(c) == value).cast(pl.Int64) for c in columns]) for value in labels
    ]
    sums = (
        complete.select(
            pl.sum_horizontal([count**2 for count in per_category]).sum().alias("squares"),
            *[count.sum().alias(f"c{j}") for j, count in enumerate(per_category)],
        )
        .collect()
        .row(0)
        if labels
        else (0,)
    )
    squares, totals = sums[0], np.array(sums[1:], dtype=np.float64)
    n = int(totals.sum()) // raters
    observed = expected = kappa = None
    if n:
        shares = totals / (n * raters)
        observed = (squares - n * raters) / (n * raters * (raters - 1))
        expected = float(shares @ shares)
        kappa = (observed - expected) / (1 - expected) if expected < 1 else None
    return pl.DataFrame(
        {
            "n": [n],
            "raters": [raters],
            "categories": [len(labels)],
            "observed_agreement": [observed],
            "expected_agreement": [expected],
            "kappa": [kappa],
            "method": ["fleiss"],
        },
        schema_overrides=dict.fromkeys(
            ("observed_agreement", "expected_agreement", "kappa"), pl.Float64
        ),
    )


def overlap_counts(frame: Frame, columns: Sequence[str]) -> pl.DataFrame:
    """Rows per combination of Boolean answers across definitions, for an UpSet plot.

    One row per observed combination of the columns' values (true, false or null = not
    evaluable; drop rows with a null to count complete cases only), most frequent first.
    Columns: the given columns, ``members`` (the columns that are true, as a list) and
    ``count``.
    """
    lf = frame.lazy()
    require_boolean(lf, columns)
    members = pl.concat_list([pl.when(pl.col(c)).then(pl.lit(c)) for c in columns])
    return (
        lf.group_by(columns)
        .agg(count=pl.len().cast(pl.Int64))
        .sort(["count", *columns], descending=[True] + [True] * len(columns), nulls_last=True)
        .select(*columns, members=members.list.drop_nulls(), count="count")
        .collect()
    )
