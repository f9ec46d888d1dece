"""Screening accuracy, checked by hand, against statsmodels and against scipy's Mann–Whitney U."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import mannwhitneyu
from statsmodels.stats.proportion import proportion_confint

from sarcokit.stats import auc, confusion_counts, roc_curve, screening_accuracy, youden_cutoff

# Positives score 3, 5, 6; negatives 1, 2, 4; one row lacks a score, one a reference.
TINY = pl.DataFrame(
    {
        "score": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, None, 3.0],
        "sarcopenia": [False, False, True, False, True, True, True, None],
    }
)


def _table(tp: int, fp: int, fn: int, tn: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "test": [True] * (tp + fp) + [False] * (fn + tn),
            "ref": [True] * tp + [False] * fp + [True] * fn + [False] * tn,
        }
    )


def _measures(result: pl.DataFrame) -> dict[str, dict[str, object]]:
    return {row["measure"]: row for row in result.iter_rows(named=True)}


def test_confusion_counts_leave_out_incomplete_rows() -> None:
    counts = confusion_counts(TINY, "score", "sarcopenia", cutoff=3)
    assert counts.row(0, named=True) == {"tp": 3, "fp": 1, "fn": 0, "tn": 2, "n": 6}
    # MSRA-like: a low score is positive.
    low = confusion_counts(TINY, "score", "sarcopenia", cutoff=3, positive="low")
    assert low.row(0, named=True) == {"tp": 1, "fp": 2, "fn": 2, "tn": 1, "n": 6}


def test_accuracy_measures_and_wilson_intervals() -> None:
    result = _measures(screening_accuracy(_table(40, 20, 10, 80), "test", "ref"))
    for name, events, n in [
        ("sensitivity", 40, 50),
        ("specificity", 80, 100),
        ("ppv", 40, 60),
        ("npv", 80, 90),
    ]:
        row = result[name]
        low, high = proportion_confint(events, n, method="wilson")
        assert (row["events"], row["n"], row["estimate"]) == (events, n, pytest.approx(events / n))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-9)


def test_likelihood_ratios_by_hand() -> None:
    # LR+ = 0.8 / 0.2 = 4, SE(ln) = √(1/40 − 1/50 + 1/20 − 1/100) = √0.045;
    # LR− = 0.2 / 0.8 = 0.25, SE(ln) = √(1/10 − 1/50 + 1/80 − 1/100) = √0.0825.
    result = _measures(screening_accuracy(_table(40, 20, 10, 80), "test", "ref"))
    positive, negative = result["lr_positive"], result["lr_negative"]
    assert positive["estimate"] == pytest.approx(4.0)
    assert (positive["ci_low"], positive["ci_high"]) == pytest.approx(
        (2.639325, 6.062156), rel=1e-6
    )
    assert negative["estimate"] == pytest.approx(0.25)
    assert (negative["ci_low"], negative["ci_high"]) == pytest.approx(
        (0.142381, 0.438964), rel=1e-5
    )
    assert positive["events"] is None and positive["n"] is None


def test_zero_cells() -> None:
    # No false positive: specificity 1, LR+ infinite (null), LR− still defined.
    result = _measures(screening_accuracy(_table(9, 0, 1, 10), "test", "ref"))
    assert result["specificity"]["estimate"] == 1.0 and result["specificity"]["ci_high"] == 1.0
    assert result["lr_positive"]["estimate"] is None
    assert result["lr_negative"]["estimate"] == pytest.approx(0.1)
    assert result["lr_negative"]["ci_low"] is not None
    # No reference positive: sensitivity has n = 0 and no estimate.
    empty = _measures(screening_accuracy(_table(0, 3, 0, 7), "test", "ref"))
    assert empty["sensitivity"]["n"] == 0 and empty["sensitivity"]["estimate"] is None
    assert empty["lr_positive"]["estimate"] is None


def test_accuracy_by_group() -> None:
    frame = pl.concat(
        [
            _table(8, 2, 2, 8).with_columns(sex=pl.lit("f")),
            _table(5, 5, 5, 5).with_columns(sex=pl.lit("m")),
        ]
    )
    result = screening_accuracy(frame, "test", "ref", by="sex")
    assert result["sex"].to_list() == ["f"] * 6 + ["m"] * 6
    sensitivity = result.filter(pl.col("measure") == "sensitivity")["estimate"].to_list()
    assert sensitivity == pytest.approx([0.8, 0.5])


def test_auc_tiny_by_hand() -> None:
    # Placements of positives 3, 5, 6 among negatives 1, 2, 4: 2/3, 1, 1 → AUC = 8/9;
    # of negatives 1, 2, 4 among positives: 1, 1, 2/3. S10 = S01 = 1/27, so
    # var = (1/27)/3 + (1/27)/3 = 2/81 and SE = √2/9.
    row = auc(TINY, "score", "sarcopenia").row(0, named=True)
    assert (row["n_positive"], row["n_negative"]) == (3, 3)
    assert row["auc"] == pytest.approx(8 / 9)
    assert row["se"] == pytest.approx(np.sqrt(2) / 9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (8 / 9 - 1.959964 * np.sqrt(2) / 9, 1.0)
    )
    low = auc(TINY, "score", "sarcopenia", positive="low").row(0, named=True)
    assert low["auc"] == pytest.approx(1 / 9) and low["se"] == pytest.approx(row["se"])


def test_auc_hanley_mcneil_ratings() -> None:
    # Hanley & McNeil 1982, Table 1: 5-point CT ratings of 58 normal and 51 abnormal
    # subjects; AUC = 0.893.
    normal, abnormal = [33, 6, 6, 11, 2], [3, 2, 2, 11, 33]
    ratings = (
        np.repeat(np.arange(1, 6), normal).tolist() + np.repeat(np.arange(1, 6), abnormal).tolist()
    )
    frame = pl.DataFrame({"rating": ratings, "abnormal": [False] * 58 + [True] * 51})
    assert auc(frame, "rating", "abnormal")["auc"][0] == pytest.approx(0.893, abs=5e-4)


def _delong_by_definition(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, float]:
    """DeLong 1988 straight from its definition: ψ over all pairs, placement variances."""
    psi = (positives[:, None] > negatives[None, :]) + 0.5 * (
        positives[:, None] == negatives[None, :]
    )
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    variance = v10.var(ddof=1) / len(positives) + v01.var(ddof=1) / len(negatives)
    return float(psi.mean()), float(np.sqrt(variance))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auc_matches_mann_whitney_and_delong_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.uniform(size=300) < 0.3
    # Rounded scores leave many ties, which count one half.
    score = np.round(rng.normal(loc=reference * 0.8, size=300), 1)
    frame = pl.DataFrame({"score": score, "ref": reference})
    row = auc(frame, "score", "ref").row(0, named=True)
    positives, negatives = score[reference], score[~reference]
    u = mannwhitneyu(positives, negatives).statistic
    assert row["auc"] == pytest.approx(u / (len(positives) * len(negatives)), rel=1e-12)
    area, se = _delong_by_definition(positives, negatives)
    assert (row["auc"], row["se"]) == pytest.approx((area, se), rel=1e-10)


def test_auc_with_an_empty_class_is_null() -> None:
    row = auc(TINY.filter(pl.col("sarcopenia")), "score", "sarcopenia").row(0, named=True)
    assert (row["n_negative"], row["auc"], row["se"]) == (0, None, None)
    single = TINY.filter(pl.col("sarcopenia") | (pl.col("score") == 1))
    one = auc(single, "score", "sarcopenia").row(0, named=True)
    assert one["auc"] == 1.0 and one["se"] is None


def test_roc_curve_points() -> None:
    curve = roc_curve(TINY, "score", "sarcopenia")
    assert curve["cutoff"].to_list() == [np.inf, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    assert curve["tp"].to_list() == [0, 1, 2, 2, 3, 3, 3]
    assert curve["fp"].to_list() == [0, 0, 0, 1, 1, 2, 3]
    assert curve["sensitivity"].to_list() == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert curve["specificity"].to_list() == pytest.approx([1, 1, 1, 2 / 3, 2 / 3, 1 / 3, 0])
    assert (curve["tp"] + curve["fn"]).unique().to_list() == [3]


def test_youden_cutoff_in_both_directions() -> None:
    best = youden_cutoff(TINY, "score", "sarcopenia").row(0, named=True)
    # J: cut-off 5 → 2/3 + 1 − 1 = 2/3; cut-off 3 → 1 + 2/3 − 1 = 2/3: the stricter 5 is kept.
    assert (best["cutoff"], best["rule"], best["youden_j"]) == (5.0, ">= 5.0", pytest.approx(2 / 3))
    # An MSRA-like score where low means at risk: the mirror image gives the mirror cut-off.
    mirrored = TINY.with_columns(score=10 - pl.col("score"))
    low = youden_cutoff(mirrored, "score", "sarcopenia", positive="low").row(0, named=True)
    assert (low["cutoff"], low["rule"], low["sensitivity"], low["specificity"]) == (
        5.0,
        "<= 5.0",
        pytest.approx(2 / 3),
        1.0,
    )
