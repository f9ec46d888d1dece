"""Design-based prevalence, checked by hand on a tiny design and against samplics."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sarcokit.stats import survey_prevalence

with warnings.catch_warnings():
    # samplics announces on import that it is archived; the estimator itself is what we use.
    warnings.simplefilter("ignore", FutureWarning)
    from samplics.estimation import TaylorEstimator
    from samplics.utils.types import PopParam

# Two strata of two PSUs. Overall: Σw = 8, Σwy = 4, p = 0.5; PSU totals of the linearised
# values z = (Σwy − p·Σw)/8 are a1 = 0, a2 = 1/8, b1 = b2 = −1/16, so
# v = 2·[(1/16)² + (1/16)²] + 0 = 1/64 and SE = 1/8; df = 4 PSUs − 2 strata = 2.
TINY = pl.DataFrame(
    {
        "stratum": ["A", "A", "A", "B", "B", "B"],
        "psu": [1, 1, 2, 1, 2, 2],
        "w": [1.0, 1.0, 2.0, 1.0, 2.0, 1.0],
        "low": [True, False, True, False, False, True],
        "domain": [True, False, False, True, True, False],
    }
)
DESIGN: dict[str, Any] = {"weight": "w", "strata": "stratum", "psu": "psu"}


def test_tiny_design_by_hand() -> None:
    normal = survey_prevalence(TINY, "low", **DESIGN, ci_method="normal").row(0, named=True)
    assert (normal["n"], normal["events"], normal["weighted_n"]) == (6, 3, 8.0)
    assert normal["estimate"] == pytest.approx(0.5)
    assert normal["se"] == pytest.approx(0.125)
    assert normal["df"] == 2
    # t(0.975, 2) = 4.302653: 0.5 ± 0.537832.
    assert (normal["ci_low"], normal["ci_high"]) == pytest.approx((-0.037832, 1.037832), abs=1e-6)
    logit = survey_prevalence(TINY, "low", **DESIGN).row(0, named=True)
    # expit(0 ± 4.302653 · 0.125 / 0.25) = expit(±2.151327).
    assert (logit["ci_low"], logit["ci_high"]) == pytest.approx((0.104207, 0.895793), abs=1e-6)
    assert logit["method"] == "logit"


def test_tiny_domain_keeps_the_full_design() -> None:
    # Domain rows: A1 (w1, y1), B1 (w1, y0), B2 (w2, y0): p = 1/4 over Σw = 4. PSU A2 has no
    # domain row but stays in the design with z = 0: z = 3/16, 0 | −1/16, −1/8, so
    # v = 2·2·(3/32)² + 2·2·(1/32)² = 0.0390625. Subsetting first would leave stratum A
    # with one PSU.
    result = survey_prevalence(TINY, "low", **DESIGN, by="domain").filter(pl.col("domain"))
    row = result.row(0, named=True)
    assert (row["n"], row["events"], row["weighted_n"]) == (3, 1, 4.0)
    assert row["estimate"] == pytest.approx(0.25)
    assert row["se"] == pytest.approx(np.sqrt(0.0390625))
    with pytest.raises(ValueError, match="stratum 'A' has a single PSU"):
        survey_prevalence(TINY.filter(pl.col("domain")), "low", **DESIGN)


def _synthetic(seed: int, rows: int = 600) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    stratum = rng.integers(0, 8, rows)
    low = rng.uniform(size=rows) < 0.15 + 0.05 * (stratum % 4)
    return pl.DataFrame(
        {
            "stratum": stratum,
            # PSU labels repeat across strata: they are nested (nest = TRUE).
            "psu": rng.integers(0, 3, rows),
            "w": rng.uniform(0.5, 6.0, rows),
            "low": pl.Series(low).set(pl.Series(rng.uniform(size=rows) < 0.1), None),
            "group": rng.choice(["a", "b", "c"], rows),
        }
    )


def _samplics(frame: pl.DataFrame, domain: np.ndarray, **design: Any) -> TaylorEstimator:
    estimator = TaylorEstimator(PopParam.prop)
    # Not-evaluable rows stay in the design as another domain, as sarcokit treats them.
    estimator.estimate(
        y=frame["low"].fill_null(False).cast(pl.Float64).to_numpy(),
        samp_weight=frame["w"].to_numpy(),
        domain=domain,
        **design,
    )
    return estimator


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_samplics_overall_and_by_domain(seed: int) -> None:
    frame = _synthetic(seed)
    design = {
        "stratum": frame["stratum"].to_numpy(),
        "psu": (frame["stratum"] * 10 + frame["psu"]).to_numpy(),
    }
    answered = frame["low"].is_not_null().to_numpy()
    domains = np.array([f"{a}|{g}" for a, g in zip(answered, frame["group"], strict=True)])
    overall = _samplics(frame, answered, **design)
    by_group = _samplics(frame, domains, **design)
    ours = survey_prevalence(frame, "low", **DESIGN)
    ours_by = survey_prevalence(frame, "low", **DESIGN, by="group")
    for row, reference, key in [(ours.row(0, named=True), overall, True)] + [
        (r, by_group, f"True|{r['group']}") for r in ours_by.iter_rows(named=True)
    ]:
        assert row["estimate"] == pytest.approx(reference.point_est[key][1.0], rel=1e-9)
        assert row["se"] == pytest.approx(reference.stderror[key][1.0], rel=1e-6)
        # samplics' logit interval also uses t with #PSU − #strata degrees of freedom.
        assert row["ci_low"] == pytest.approx(reference.lower_ci[key][1.0], rel=1e-6)
        assert row["ci_high"] == pytest.approx(reference.upper_ci[key][1.0], rel=1e-6)
        assert row["df"] == reference.degree_of_freedom


def test_matches_samplics_without_strata_or_psu() -> None:
    frame = _synthetic(3, rows=80).with_columns(pl.col("low").fill_null(False))
    answered = np.ones(frame.height, dtype=bool)
    srs = _samplics(frame, answered)
    clustered = _samplics(frame, answered, psu=frame["psu"].to_numpy())
    ours_srs = survey_prevalence(frame, "low", weight="w").row(0, named=True)
    ours_clustered = survey_prevalence(frame, "low", weight="w", psu="psu").row(0, named=True)
    assert ours_srs["se"] == pytest.approx(srs.stderror[True][1.0], rel=1e-6)
    assert ours_srs["df"] == frame.height - 1
    assert ours_clustered["se"] == pytest.approx(clustered.stderror[True][1.0], rel=1e-6)
    assert ours_clustered["df"] == 2


def test_lazy_frame_gives_the_same_answer() -> None:
    frame = _synthetic(4)
    eager = survey_prevalence(frame, "low", **DESIGN, by="group")
    lazy = survey_prevalence(frame.lazy(), "low", **DESIGN, by="group")
    # Parallel sums may add in another order: equal up to rounding.
    assert_frame_equal(lazy, eager, check_exact=False, rel_tol=1e-12)


def test_empty_and_extreme_domains() -> None:
    frame = TINY.with_columns(
        group=pl.Series(["x", "x", "y", "y", "z", "z"]),
        low=pl.Series([False, False, True, True, None, None], dtype=pl.Boolean),
    )
    logit = survey_prevalence(frame, "low", **DESIGN, by="group")
    assert logit["n"].to_list() == [2, 2, 0]
    assert logit["estimate"].to_list() == [0.0, 1.0, None]
    # The logit interval does not exist at 0 or 1; an empty domain has no estimate at all.
    assert logit["ci_low"].to_list() == [None, None, None]
    normal = survey_prevalence(frame, "low", **DESIGN, by="group", ci_method="normal")
    assert normal["se"].to_list()[:2] == pytest.approx([0.0, 0.0])
    assert normal["ci_low"].to_list()[:2] == pytest.approx([0.0, 1.0])


def test_design_problems_are_named() -> None:
    with pytest.raises(ValueError, match="lack a weight"):
        survey_prevalence(TINY.with_columns(w=pl.lit(None, pl.Float64)), "low", **DESIGN)
    with pytest.raises(ValueError, match="negative weight"):
        survey_prevalence(TINY.with_columns(w=-pl.col("w")), "low", **DESIGN)
    one_psu_in_b = pl.when(pl.col("stratum") == "B").then(1).otherwise(pl.col("psu"))
    with pytest.raises(ValueError, match="stratum 'B' has a single PSU"):
        survey_prevalence(TINY.with_columns(psu=one_psu_in_b), "low", **DESIGN)
    with pytest.raises(ValueError, match="unknown interval method"):
        survey_prevalence(TINY, "low", **DESIGN, ci_method="wald")  # type: ignore[arg-type]
