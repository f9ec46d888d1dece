"""Proportions and their intervals, checked against worked values and statsmodels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from sarcokit.stats import category_prevalence, prevalence, proportion_interval
from sarcokit.stats.proportions import Method


@pytest.mark.parametrize(
    ("events", "n", "expected"),
    [
        # By Wilson's formula: centre (8 + z²/2)/(20 + z²) = 0.41612, half-width 0.19731.
        (8, 20, (0.2188, 0.6134)),
        # Newcombe 1998, Table I, method 3 (score interval without continuity correction).
        (81, 263, (0.2553, 0.3662)),
        (15, 148, (0.0624, 0.1605)),
        (0, 20, (0.0, 0.1611)),
        (1, 29, (0.0061, 0.1718)),
    ],
)
def test_wilson_worked_examples(events: int, n: int, expected: tuple[float, float]) -> None:
    low, high = proportion_interval(events, n)
    assert (float(low), float(high)) == pytest.approx(expected, abs=5e-5)


def test_clopper_pearson_at_the_extremes() -> None:
    # x = 0: [0, 1 − (α/2)^(1/n)]; x = n: [(α/2)^(1/n), 1]; 0.025^(1/10) = 0.69150.
    low, high = proportion_interval([0, 10], [10, 10], "clopper-pearson")
    assert low.tolist() == pytest.approx([0.0, 0.691503], abs=1e-6)
    assert high.tolist() == pytest.approx([0.308497, 1.0], abs=1e-6)


@pytest.mark.parametrize(
    ("method", "reference"), [("wilson", "wilson"), ("clopper-pearson", "beta")]
)
@pytest.mark.parametrize("level", [0.90, 0.95, 0.99])
def test_intervals_match_statsmodels(method: Method, reference: str, level: float) -> None:
    events = np.array([0, 1, 3, 8, 19, 20, 0, 57])
    n = np.array([20, 20, 20, 20, 20, 20, 1, 131])
    low, high = proportion_interval(events, n, method, level)
    ref_low, ref_high = proportion_confint(events, n, alpha=1 - level, method=reference)
    np.testing.assert_allclose(low, ref_low, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, rtol=1e-9, atol=1e-12)


def test_no_rows_has_no_interval() -> None:
    for method in ("wilson", "clopper-pearson"):
        low, high = proportion_interval(0, 0, method)
        assert np.isnan(low) and np.isnan(high)


def test_events_outside_zero_to_n_are_rejected() -> None:
    with pytest.raises(ValueError, match="between 0 and n"):
        proportion_interval(5, 4)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_intervals_contain_the_estimate(case: tuple[int, int]) -> None:
    events, n = case
    for method in ("wilson", "clopper-pearson"):
        low, high = proportion_interval(events, n, method)
        assert 0 <= low <= events / n <= high <= 1


def test_prevalence_excludes_nulls_from_the_denominator() -> None:
    frame = pl.DataFrame(
        {
            "low": [True, None, False, True, None, True, False],
            "sex": ["f", "f", "f", "m", "m", "m", None],
        }
    )
    overall = prevalence(frame, "low")
    assert overall.select("n", "events", "estimate").row(0) == (5, 3, 0.6)
    by_sex = prevalence(frame, "low", by="sex")
    assert by_sex["sex"].to_list() == ["f", "m", None]
    assert by_sex["n"].to_list() == [2, 2, 1]
    assert by_sex["events"].to_list() == [1, 2, 0]
    assert by_sex["estimate"].to_list() == [0.5, 1.0, 0.0]
    low, high = proportion_interval([1, 2, 0], [2, 2, 1])
    assert by_sex["ci_low"].to_list() == pytest.approx(low.tolist())
    assert by_sex["ci_high"].to_list() == pytest.approx(high.tolist())
    assert by_sex["method"].unique().to_list() == ["wilson"]


def test_group_without_evaluable_rows_has_null_estimate() -> None:
    frame = pl.DataFrame({"low": [None, None, True], "site": ["a", "a", "b"]}).with_columns(
        pl.col("low").cast(pl.Boolean)
    )
    result = prevalence(frame, "low", by="site")
    first = result.row(0, named=True)
    assert (first["site"], first["n"], first["events"]) == ("a", 0, 0)
    assert first["estimate"] is None and first["ci_low"] is None and first["ci_high"] is None


def test_all_and_no_events() -> None:
    all_events = prevalence(pl.Series("x", [True] * 10), method="clopper-pearson")
    assert all_events.select("estimate", "ci_high").row(0) == (1.0, 1.0)
    assert all_events["ci_low"][0] == pytest.approx(0.691503, abs=1e-6)
    none = prevalence(pl.Series("x", [False] * 10))
    assert none.select("estimate", "ci_low").row(0) == (0.0, 0.0)


def test_prevalence_on_a_scanned_lazy_frame(tmp_path: Path) -> None:
    frame = pl.DataFrame({"low": [True, False, None, True] * 25, "g": ["a", "b"] * 50})
    path = tmp_path / "cohort.parquet"
    frame.write_parquet(path)
    lazy = prevalence(pl.scan_parquet(path), "low", by=["g"], method="clopper-pearson")
    assert lazy.equals(prevalence(frame, "low", by="g", method="clopper-pearson"))


def test_prevalence_needs_a_boolean_column() -> None:
    with pytest.raises(TypeError, match="Boolean"):
        prevalence(pl.DataFrame({"x": [1, 0]}), "x")
    with pytest.raises(ValueError, match="not in the frame"):
        prevalence(pl.DataFrame({"x": [True]}), "y")


def test_category_prevalence_excludes_indeterminate_and_null() -> None:
    frame = pl.DataFrame(
        {
            "category": ["sarcopenia", "no_sarcopenia", "indeterminate", None, "sarcopenia"],
            "sex": ["f", "f", "f", "m", "m"],
        }
    )
    overall = category_prevalence(frame, "category")
    assert overall["category"].to_list() == ["no_sarcopenia", "sarcopenia"]
    assert overall["n"].to_list() == [3, 3]
    assert overall["events"].to_list() == [1, 2]
    by_sex = category_prevalence(frame.lazy(), "category", by="sex")
    rows = {(r["sex"], r["category"]): (r["n"], r["events"]) for r in by_sex.iter_rows(named=True)}
    # Men have no "no_sarcopenia" row in the data: it is still listed, with 0 events.
    assert rows == {
        ("f", "no_sarcopenia"): (2, 1),
        ("f", "sarcopenia"): (2, 1),
        ("m", "no_sarcopenia"): (1, 0),
        ("m", "sarcopenia"): (1, 1),
    }


def test_category_prevalence_custom_exclusions_and_enum_order() -> None:
    dtype = pl.Enum(["severe", "sarcopenia", "none", "unknown"])
    series = pl.Series("c", ["none", "none", "unknown", "sarcopenia"], dtype=dtype)
    result = category_prevalence(series, exclude=["unknown"])
    # Declared order, an absent category kept at 0, the excluded label dropped.
    assert result["category"].to_list() == ["severe", "sarcopenia", "none"]
    assert result["events"].to_list() == [0, 1, 2]
    assert result["n"].to_list() == [3, 3, 3]
    assert result["estimate"].to_list() == pytest.approx([0.0, 1 / 3, 2 / 3])


def test_category_prevalence_with_no_evaluable_rows() -> None:
    frame = pl.DataFrame({"c": ["indeterminate", None, "x"], "g": ["a", "a", "b"]})
    result = category_prevalence(frame, "c", by="g")
    assert result.select("g", "category", "n", "events").rows() == [
        ("a", "x", 0, 0),
        ("b", "x", 1, 1),
    ]
    assert result["estimate"].to_list() == [None, 1.0]
