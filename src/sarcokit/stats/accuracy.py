"""Screening accuracy of a test (a Boolean, or a score and a cut-off) against a reference.

Only rows where both the test and the reference are evaluable (not null) count. ``positive``
says which end of a score is test-positive: ``"high"`` (score ≥ cut-off, e.g. SARC-F ≥ 4) or
``"low"`` (score ≤ cut-off, e.g. MSRA, where a lower score means risk).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

from sarcokit.stats._inputs import (
    By,
    Frame,
    aggregate,
    keys,
    require_boolean,
    require_numeric,
)
from sarcokit.stats.proportions import Method, add_interval, normal_quantile

Positive = Literal["high", "low"]


def _test_positive(
    lf: pl.LazyFrame, test: str, cutoff: float | None, positive: Positive
) -> pl.Expr:
    """The test result as a Boolean expression: the column itself, or the score vs cut-off."""
    if cutoff is None:
        require_boolean(lf, [test])
        return pl.col(test)
    require_numeric(lf, [test])
    if positive == "high":
        return pl.col(test) >= cutoff
    if positive == "low":
        return pl.col(test) <= cutoff
    raise ValueError(f"positive must be 'high' or 'low', got {positive!r}")


def confusion_counts(
    frame: Frame,
    test: str,
    reference: str,
    *,
    cutoff: float | None = None,
    positive: Positive = "high",
    by: By = None,
) -> pl.DataFrame:
    """True/false positives and negatives of a test against a Boolean reference, per group.

    ``test`` is a Boolean column, or a numeric score made positive by ``cutoff`` and
    ``positive``. Rows with either value null are left out. Columns: the ``by`` columns,
    ``tp``, ``fp``, ``fn``, ``tn``, ``n``.
    """
    lf = frame.lazy()
    require_boolean(lf, [reference])
    result = _test_positive(lf, test, cutoff, positive)
    truth = pl.col(reference)
    both = result.is_not_null() & truth.is_not_null()
    counts = aggregate(
        lf,
        keys(by),
        tp=(both & result & truth).sum(),
        fp=(both & result & ~truth).sum(),
        fn=(both & ~result & truth).sum(),
        tn=(both & ~result & ~truth).sum(),
        n=both.sum(),
    )
    return counts.collect().with_columns(pl.col("tp", "fp", "fn", "tn", "n").cast(pl.Int64))


def _likelihood_ratios(counts: pl.DataFrame, z: float) -> pl.DataFrame:
    """LR+ and LR− with log-method intervals (Simel, Samsa & Matchar 1991), one row each.

    LR+ = sens / (1 − spec), SE(ln LR+) = √(1/TP − 1/(TP+FN) + 1/FP − 1/(FP+TN));
    LR− = (1 − sens) / spec, SE(ln LR−) = √(1/FN − 1/(TP+FN) + 1/TN − 1/(FP+TN)).
    An LR whose denominator is 0 is null; its interval is null when a count it uses is 0.
    """
    tp, fp, fn, tn = (counts[c].to_numpy().astype(np.float64) for c in ("tp", "fp", "fn", "tn"))
    diseased, healthy = tp + fn, fp + tn
    frames = []
    # Zero counts make some ratios infinite or undefined; those become null below.
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, top, top_total, bottom, bottom_total in (
            ("lr_positive", tp, diseased, fp, healthy),
            ("lr_negative", fn, diseased, tn, healthy),
        ):
            estimate = (top / top_total) / (bottom / bottom_total)
            se = np.sqrt(1 / top - 1 / top_total + 1 / bottom - 1 / bottom_total)
            usable = (top > 0) & (bottom > 0)
            frames.append(
                counts.select(
                    pl.exclude("tp", "fp", "fn", "tn", "n"),
                    measure=pl.lit(name),
                    events=pl.lit(None, dtype=pl.Int64),
                    n=pl.lit(None, dtype=pl.Int64),
                    estimate=_series(np.where(bottom > 0, estimate, np.nan)),
                    ci_low=_series(np.where(usable, estimate * np.exp(-z * se), np.nan)),
                    ci_high=_series(np.where(usable, estimate * np.exp(z * se), np.nan)),
                    method=pl.lit("log (Simel 1991)"),
                )
            )
    return pl.concat(frames)


def _series(values: np.ndarray) -> pl.Series:
    """Float column with NaN and infinities as null (not computable)."""
    return pl.Series(np.where(np.isfinite(values), values, np.nan), nan_to_null=True)


def screening_accuracy(
    frame: Frame,
    test: str,
    reference: str,
    *,
    cutoff: float | None = None,
    positive: Positive = "high",
    by: By = None,
    method: Method = "wilson",
    level: float = 0.95,
) -> pl.DataFrame:
    """Sensitivity, specificity, PPV, NPV and likelihood ratios of a test, with intervals.

    One row per measure (and group): ``sensitivity`` = TP/(TP+FN), ``specificity`` =
    TN/(TN+FP), ``ppv`` = TP/(TP+FP), ``npv`` = TN/(TN+FN), each with its ``events`` and ``n``
    and a Wilson (or Clopper–Pearson) interval; ``lr_positive`` and ``lr_negative`` with
    log-method intervals (Simel DL, Samsa GP, Matchar DB. Likelihood ratios with confidence:
    sample size estimation for diagnostic test studies. J Clin Epidemiol 1991;44:763-770).
    PPV and NPV hold only at the sample's prevalence of the reference. Columns: the ``by``
    columns, ``measure``, ``events``, ``n``, ``estimate``, ``ci_low``, ``ci_high``,
    ``method``.
    """
    group = keys(by)
    counts = confusion_counts(frame, test, reference, cutoff=cutoff, positive=positive, by=by)
    proportions = pl.concat(
        [
            counts.select(
                *group,
                measure=pl.lit(name),
                events=pl.col(hit),
                n=pl.col(hit) + pl.col(miss),
            )
            for name, hit, miss in (
                ("sensitivity", "tp", "fn"),
                ("specificity", "tn", "fp"),
                ("ppv", "tp", "fp"),
                ("npv", "tn", "fn"),
            )
        ]
    )
    table = pl.concat(
        [
            add_interval(proportions, method, level),
            _likelihood_ratios(counts, normal_quantile(level)),
        ]
    )
    return table.sort(group, nulls_last=True, maintain_order=True) if group else table


def _scores(
    frame: Frame, score: str, reference: str, positive: Positive
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of reference-positive and reference-negative rows, oriented so high = positive."""
    lf = frame.lazy()
    require_numeric(lf, [score])
    require_boolean(lf, [reference])
    if positive not in ("high", "low"):
        raise ValueError(f"positive must be 'high' or 'low', got {positive!r}")
    sign = 1.0 if positive == "high" else -1.0
    rows = lf.select(pl.col(score).cast(pl.Float64) * sign, pl.col(reference)).drop_nulls()
    data = rows.collect()
    values, truth = data[score].to_numpy(), data[reference].to_numpy()
    return values[truth], values[~truth]


def auc(
    frame: Frame,
    score: str,
    reference: str,
    *,
    positive: Positive = "high",
    level: float = 0.95,
) -> pl.DataFrame:
    """Area under the ROC curve of a numeric score, with DeLong's SE and a normal CI.

    AUC = P(score of a reference-positive > score of a reference-negative) + ½ P(tie), the
    Mann–Whitney U / (n₁n₀). Its variance is DeLong's: S₁₀/n₁ + S₀₁/n₀ from the placement
    values (DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
    correlated receiver operating characteristic curves: a nonparametric approach.
    Biometrics 1988;44:837-845), computed from midranks (Sun X, Xu W. Fast implementation of
    DeLong's algorithm. IEEE Signal Process Lett 2014;21:1389-1393). The CI is AUC ± z·SE
    truncated to [0, 1]. Null when either reference class is empty (SE and CI also when
    either has a single row). Columns: ``n_positive``, ``n_negative``, ``auc``, ``se``,
    ``ci_low``, ``ci_high``, ``positive``, ``method``.
    """
    diseased, healthy = _scores(frame, score, reference, positive)
    n1, n0 = len(diseased), len(healthy)
    area = se = low = high = None
    if n1 and n0:
        combined = stats.rankdata(np.concatenate([diseased, healthy]))
        # Placements: share of the other class each row outranks (ties count one half).
        v10 = (combined[:n1] - stats.rankdata(diseased)) / n0
        v01 = 1 - (combined[n1:] - stats.rankdata(healthy)) / n1
        area = float(v10.mean())
        if n1 > 1 and n0 > 1:
            se = float(np.sqrt(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0))
            z = normal_quantile(level)
            low, high = max(area - z * se, 0.0), min(area + z * se, 1.0)
    return pl.DataFrame(
        {
            "n_positive": [n1],
            "n_negative": [n0],
            "auc": [area],
            "se": [se],
            "ci_low": [low],
            "ci_high": [high],
            "positive": [positive],
            "method": ["delong"],
        },
        schema_overrides=dict.fromkeys(("auc", "se", "ci_low", "ci_high"), pl.Float64),
    )


def roc_curve(
    frame: Frame, score: str, reference: str, *, positive: Positive = "high"
) -> pl.DataFrame:
    """ROC points: sensitivity and specificity at every observed score used as the cut-off.

    The row for cut-off t calls positive every score ≥ t (``positive="high"``) or ≤ t
    (``"low"``); rows run from the strictest cut-off to the most lenient, after a first row
    with cut-off ±inf where nothing is positive. Counted with Polars per distinct score.
    Columns: ``cutoff``, ``tp``, ``fp``, ``fn``, ``tn``, ``sensitivity``, ``specificity``.
    """
    lf = frame.lazy()
    require_numeric(lf, [score])
    require_boolean(lf, [reference])
    if positive not in ("high", "low"):
        raise ValueError(f"positive must be 'high' or 'low', got {positive!r}")
    truth = pl.col(reference)
    per_score = (
        lf.select(pl.col(score).cast(pl.Float64).alias("cutoff"), truth)
        .drop_nulls()
        .group_by("cutoff")
        .agg(tp=truth.sum().cast(pl.Int64), fp=(~truth).sum().cast(pl.Int64))
        .sort("cutoff", descending=positive == "high")
        .collect()
    )
    start = pl.DataFrame(
        {"cutoff": [np.inf if positive == "high" else -np.inf], "tp": [0], "fp": [0]},
        schema=per_score.schema,
    )
    diseased, healthy = per_score["tp"].sum(), per_score["fp"].sum()
    curve = pl.concat([start, per_score]).with_columns(pl.col("tp", "fp").cum_sum())
    return curve.with_columns(
        fn=diseased - pl.col("tp"),
        tn=healthy - pl.col("fp"),
        sensitivity=pl.col("tp") / diseased if diseased else pl.lit(None, pl.Float64),
        specificity=1 - pl.col("fp") / healthy if healthy else pl.lit(None, pl.Float64),
    )


def youden_cutoff(
    frame: Frame, score: str, reference: str, *, positive: Positive = "high"
) -> pl.DataFrame:
    """The observed cut-off maximising Youden's J = sensitivity + specificity − 1.

    Youden WJ. Index for rating diagnostic tests. Cancer 1950;3:32-35. Candidates are the
    observed scores (`roc_curve`); among ties the strictest cut-off (fewest test-positives)
    is kept. ``rule`` reads the result, e.g. ``">= 4"`` or ``"<= 30"``. Columns: ``cutoff``,
    ``rule``, ``youden_j``, ``sensitivity``, ``specificity``, ``tp``, ``fp``, ``fn``, ``tn``.
    """
    curve = roc_curve(frame, score, reference, positive=positive).slice(1)
    # J·P·N = TP·N + TN·P − P·N is an integer: ties are found exactly, not up to rounding.
    diseased, healthy = pl.col("tp") + pl.col("fn"), pl.col("fp") + pl.col("tn")
    exact = pl.col("tp") * healthy + pl.col("tn") * diseased
    best = curve.drop_nulls(["sensitivity", "specificity"]).filter(exact == exact.max()).head(1)
    symbol = ">=" if positive == "high" else "<="
    return best.select(
        "cutoff",
        rule=pl.format(f"{symbol} {{}}", pl.col("cutoff")),
        youden_j=pl.col("sensitivity") + pl.col("specificity") - 1,
        sensitivity="sensitivity",
        specificity="specificity",
        tp="tp",
        fp="fp",
        fn="fn",
        tn="tn",
    )
