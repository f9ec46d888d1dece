"""Standard populations and direct age standardisation."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import polars as pl
import pytest

from sarcokit.stats import age_standardised_prevalence, standard_population, survey_prevalence

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from samplics.estimation import TaylorEstimator
    from samplics.utils.types import PopParam


def test_us2000_reproduces_the_published_nchs_weights() -> None:
    table = standard_population("us2000")
    assert table["population"].sum() == 274_633_642  # SEER, Census P25-1130
    # Anderson & Rosenberg 1998, Table I (NCHS works from counts rounded to thousands,
    # hence the tolerance).
    published = [
        0.013818, 0.055317, 0.145565, 0.138646, 0.135573, 0.162613,
        0.134834, 0.087247, 0.066037, 0.044842, 0.015508,
    ]  # fmt: skip
    nchs = standard_population("us2000", "nchs_11")
    assert nchs["age_low"].to_list() == [0, 1, 5, 15, 25, 35, 45, 55, 65, 75, 85]
    assert nchs["weight"].to_list() == pytest.approx(published, abs=3e-6)
    # NCHS NHANES tutorial: 20-39 = 77,670 of 195,850 thousand = 0.396579.
    adult = standard_population("us2000", "nchs_adult")
    assert adult["age_high"].to_list() == [40, 60, None]
    assert adult["weight"][0] == pytest.approx(0.396579, abs=2e-6)
    assert adult["weight"].sum() == pytest.approx(1.0)


def test_who2000_weights() -> None:
    table = standard_population("who2000")
    # Published percentages sum to 100.035; SEER*Stat rescales 0-4 to 88,569 per million.
    assert table["population"].sum() == pytest.approx(100.035)
    assert table["weight"][0] == pytest.approx(0.088569, abs=1e-6)
    assert table.height == 21
    over_65 = standard_population("who2000", [65])
    assert over_65["population"].to_list() == pytest.approx([8.235])


def test_user_standard_and_bad_breaks() -> None:
    table = standard_population({60: 3, 70: 1}, [60])
    assert table.select("age_low", "age_high", "population", "weight").row(0) == (60, None, 4, 1)
    with pytest.raises(ValueError, match="lower bounds"):
        standard_population("us2000", [20, 42])
    with pytest.raises(ValueError, match="unknown standard"):
        standard_population("esp2013")
    with pytest.raises(ValueError, match="unknown grouping"):
        standard_population("who2000", "nchs_adult")
    with pytest.raises(ValueError, match="non-negative"):
        standard_population({0: -1, 50: 1})


def test_tiny_standardisation_by_hand() -> None:
    # Standard {20: 1, 50: 1}: weights ½, ½. 20-49: 1 of 4 (p = ¼); 50+: 2 of 2 (p = 1).
    # θ = ½·¼ + ½·1 = 0.625. The rows of unknown age, of age 10 (below the standard) and of
    # unknown outcome are outside every group but stay in the design, where each of the
    # n = 9 rows is its own PSU: v = n/(n−1)·Σ c² p(1−p)/N = 9/8 · ¼ · (¼·¾)/4 = 0.01318359375.
    frame = pl.DataFrame(
        {
            "low": [True, False, False, False, True, True, True, True, None],
            "age": [20.0, 30.0, 40.0, 49.5, 50.0, 90.0, None, 10.0, 60.0],
        }
    )
    result = age_standardised_prevalence(frame, "low", age="age", standard={20: 1, 50: 1})
    row = result.row(0, named=True)
    assert (row["n"], row["events"]) == (6, 3)
    assert row["estimate"] == pytest.approx(0.625)
    assert row["se"] == pytest.approx(np.sqrt(0.01318359375))
    assert row["df"] == 8  # nine rows, one stratum


def test_matches_samplics_linearisation() -> None:
    rng = np.random.default_rng(7)
    rows = 500
    stratum, psu = rng.integers(0, 5, rows), rng.integers(0, 3, rows)
    weight, age = rng.uniform(1, 5, rows), rng.integers(10, 95, rows).astype(float)
    low = rng.uniform(size=rows) < 0.1 + age / 150
    frame = pl.DataFrame({"low": low, "age": age, "w": weight, "h": stratum, "p": psu})
    result = age_standardised_prevalence(
        frame, "low", age="age", breaks="nchs_adult", weight="w", strata="h", psu="p"
    ).row(0, named=True)
    # Reference: the linearised variable u_i = c_g (y_i − p_g) / W_g of each row's age group;
    # the SE of the standardised prevalence is samplics' SE of the weighted total of u.
    weights = standard_population("us2000", "nchs_adult")["weight"].to_numpy()
    group = np.searchsorted([20, 40, 60], age, side="right") - 1
    u, estimate = np.zeros(rows), 0.0
    for g, c in enumerate(weights):
        inside = group == g
        total = weight[inside].sum()
        p = (weight[inside] * low[inside]).sum() / total
        u[inside] = c * (low[inside] - p) / total
        estimate += c * p
    # samplics divides by the total (0 here) for a CV: add the same amount to every PSU
    # total, which leaves the within-stratum deviations, hence the variance, unchanged.
    psu_id = stratum * 10 + psu
    _, index, size = np.unique(psu_id, return_inverse=True, return_counts=True)
    shifted = u + 1.0 / (size[index] * weight)
    reference = TaylorEstimator(PopParam.total)
    reference.estimate(y=shifted, samp_weight=weight, stratum=stratum, psu=psu_id)
    assert result["estimate"] == pytest.approx(estimate, rel=1e-12)
    assert result["se"] == pytest.approx(reference.stderror, rel=1e-6)
    assert result["n"] == int((age >= 20).sum())
    assert result["df"] == 15 - 5


def test_one_age_group_is_the_crude_prevalence() -> None:
    rng = np.random.default_rng(8)
    frame = pl.DataFrame(
        {
            "low": rng.uniform(size=200) < 0.3,
            "age": rng.integers(60, 90, 200),
            "w": rng.uniform(1, 3, 200),
            "h": rng.integers(0, 4, 200),
            "p": rng.integers(0, 2, 200),
        }
    )
    design: dict[str, Any] = {"weight": "w", "strata": "h", "psu": "p"}
    standardised = age_standardised_prevalence(
        frame, "low", age="age", standard="who2000", breaks=[60], **design
    )
    crude = survey_prevalence(frame, "low", **design)
    columns = ["n", "events", "estimate", "se", "ci_low", "ci_high", "df"]
    assert standardised.select(columns).rows()[0] == pytest.approx(crude.select(columns).rows()[0])


def test_group_missing_an_age_group_has_no_estimate() -> None:
    frame = pl.DataFrame(
        {
            "low": [True, False, True, False, True],
            "age": [25, 45, 65, 70, 30],
            "sex": ["f", "f", "f", "m", "m"],
        }
    )
    result = age_standardised_prevalence(frame, "low", age="age", breaks="nchs_adult", by="sex")
    assert result["sex"].to_list() == ["f", "m"]
    assert result["n"].to_list() == [3, 2]
    assert result["estimate"][0] is not None
    # Men have no one aged 40-59: the standard cannot be applied.
    assert result["estimate"][1] is None and result["se"][1] is None
