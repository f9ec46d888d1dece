"""Agreement between definitions, checked by hand and against statsmodels."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from sarcokit.stats import cohens_kappa, crosstab, fleiss_kappa, overlap_counts, pairwise_kappa


def _raters(seed: int, rows: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.choice(["none", "probable", "sarcopenia"], rows)

    def rater(agree: float) -> list[str | None]:
        answer = np.where(rng.uniform(size=rows) < agree, truth, rng.choice(truth, rows))
        answer = np.where(rng.uniform(size=rows) < 0.05, "indeterminate", answer)
        return [
            None if missing else a
            for a, missing in zip(answer, rng.uniform(size=rows) < 0.05, strict=True)
        ]

    return pl.DataFrame({"a": rater(0.7), "b": rater(0.5), "c": rater(0.6)})


def _complete(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return (
        frame.select(columns).drop_nulls().filter(~pl.any_horizontal(pl.all() == "indeterminate"))
    )


def test_two_by_two_kappa_by_hand() -> None:
    # [[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4.
    frame = pl.DataFrame(
        {
            "x": [True] * 25 + [False] * 25,
            "y": [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15,
        }
    )
    row = cohens_kappa(frame, "x", "y").row(0, named=True)
    assert (row["n"], row["observed_agreement"], row["expected_agreement"]) == (50, 0.7, 0.5)
    assert row["kappa"] == pytest.approx(0.4)
    reference = sm_cohens_kappa(np.array([[15, 10], [5, 20]]))  # labels sorted: false, true
    assert row["se"] == pytest.approx(reference.std_kappa, rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cohens_kappa_matches_statsmodels(seed: int) -> None:
    frame = _raters(seed)
    complete = _complete(frame, ["a", "b"])
    table = complete.group_by("a", "b").len().pivot(on="b", index="a", values="len").sort("a")
    counts = table.select(sorted(c for c in table.columns if c != "a")).fill_null(0).to_numpy()
    reference = sm_cohens_kappa(counts)
    row = cohens_kappa(frame.lazy(), "a", "b").row(0, named=True)
    assert row["n"] == complete.height
    assert row["kappa"] == pytest.approx(reference.kappa, rel=1e-12)
    assert row["se"] == pytest.approx(reference.std_kappa, rel=1e-12)
    assert row["ci_low"] == pytest.approx(reference.kappa_low, rel=1e-12)
    assert row["ci_high"] == pytest.approx(reference.kappa_upp, rel=1e-12)


def test_kappa_without_rows_or_variation_is_null() -> None:
    empty = cohens_kappa(pl.DataFrame({"a": [None, "x"], "b": ["x", None]}), "a", "b")
    assert empty.row(0)[2:9] == (0, None, None, None, None, None, None)
    constant = cohens_kappa(pl.DataFrame({"a": ["x", "x"], "b": ["x", "x"]}), "a", "b")
    assert constant.select("n", "observed_agreement", "kappa").row(0) == (2, 1.0, None)


def test_crosstab_counts_evaluable_pairs() -> None:
    frame = pl.DataFrame(
        {
            "ewgsop2": ["sarcopenia", "none", "none", "indeterminate", None, "sarcopenia"],
            "awgs": ["sarcopenia", "none", "sarcopenia", "none", "none", "severe"],
        }
    )
    table = crosstab(frame, "ewgsop2", "awgs")
    assert table.columns == ["ewgsop2", "none", "sarcopenia", "severe"]
    assert table.rows() == [("none", 1, 1, 0), ("sarcopenia", 0, 1, 1)]
    widened = crosstab(frame, "ewgsop2", "awgs", exclude=[])
    assert widened["ewgsop2"].to_list() == ["indeterminate", "none", "sarcopenia"]


def test_pairwise_kappa_uses_each_pairs_rows() -> None:
    frame = _raters(4)
    result = pairwise_kappa(frame, ["a", "b", "c"])
    assert result.select("column_a", "column_b").rows() == [("a", "b"), ("a", "c"), ("b", "c")]
    for row in result.iter_rows(named=True):
        single = cohens_kappa(frame, row["column_a"], row["column_b"]).row(0, named=True)
        assert row == single
        assert row["n"] == _complete(frame, [row["column_a"], row["column_b"]]).height


def test_fleiss_kappa_worked_example() -> None:
    # The worked example of Wikipedia's 'Fleiss' kappa' article: 10 subjects, 14 raters,
    # 5 categories, P̄ = 0.378, P̄e = 0.213, κ = 0.210.
    counts = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    ratings = [np.repeat(list("12345"), subject) for subject in counts]
    frame = pl.DataFrame(np.array(ratings), schema=[f"r{i}" for i in range(14)], orient="row")
    row = fleiss_kappa(frame, frame.columns).row(0, named=True)
    assert (row["n"], row["raters"], row["categories"]) == (10, 14, 5)
    assert row["kappa"] == pytest.approx(0.210, abs=5e-4)
    assert row["kappa"] == pytest.approx(sm_fleiss_kappa(counts), rel=1e-12)


@pytest.mark.parametrize("seed", [5, 6])
def test_fleiss_kappa_matches_statsmodels_on_complete_subjects(seed: int) -> None:
    frame = _raters(seed)
    complete = _complete(frame, ["a", "b", "c"])
    table, _ = aggregate_raters(complete.to_numpy())
    row = fleiss_kappa(frame, ["a", "b", "c"]).row(0, named=True)
    assert row["n"] == complete.height
    assert row["kappa"] == pytest.approx(sm_fleiss_kappa(table), rel=1e-12)


def test_fleiss_kappa_edge_cases() -> None:
    nothing = fleiss_kappa(pl.DataFrame({"a": [None, "x"], "b": ["x", None]}), ["a", "b"])
    assert nothing.select("n", "kappa").row(0) == (0, None)
    with pytest.raises(ValueError, match="two rater"):
        fleiss_kappa(pl.DataFrame({"a": ["x"]}), ["a"])


def test_overlap_counts_for_upset() -> None:
    frame = pl.DataFrame(
        {
            "ewgsop2": [True, True, False, True, None, False],
            "awgs2019": [True, True, True, False, True, False],
        }
    )
    result = overlap_counts(frame, ["ewgsop2", "awgs2019"])
    assert result.rows() == [
        (True, True, ["ewgsop2", "awgs2019"], 2),
        (True, False, ["ewgsop2"], 1),
        (False, True, ["awgs2019"], 1),
        (False, False, [], 1),
        (None, True, ["awgs2019"], 1),
    ]
    with pytest.raises(TypeError, match="Boolean"):
        overlap_counts(pl.DataFrame({"x": ["a"]}), ["x"])
