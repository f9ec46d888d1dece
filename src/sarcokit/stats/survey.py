"""Design-based prevalence for complex surveys: weights, strata, PSUs, domains, t intervals.

The variance is the Taylor-linearised, with-replacement (ultimate cluster) estimator that R's
``svydesign(ids = ~psu, strata = ~strata, weights = ~w, nest = TRUE)`` with ``svymean`` and
SUDAAN's WR design compute:

    v(θ̂) = Σ_h n_h / (n_h − 1) · Σ_i (z_hi − z̄_h)²,

where n_h is the number of PSUs in stratum h and z_hi the PSU total of the linearised values
(Woodruff RS. A simple method for approximating the variance of a complicated estimate.
J Am Stat Assoc 1971;66:411-414; Wolter KM. Introduction to Variance Estimation, 2nd ed.
Springer 2007, ch. 6). Finite-population corrections are not applied (with-replacement
approximation). Everything is aggregated per PSU with Polars, so only PSU totals are
materialised.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from scipy import stats

from sarcokit.stats._inputs import By, Frame, keys, require_boolean, require_columns

CiMethod = Literal["logit", "normal"]

# Internal column names; the double underscore keeps them clear of a caller's columns.
Y, W, STRATUM, PSU, CELL = "__y", "__w", "__stratum", "__psu", "__cell"
_ALL = "__all"


def design_rows(
    frame: Frame,
    column: str,
    weight: str | None,
    strata: str | None,
    psu: str | None,
) -> pl.LazyFrame:
    """The rows with the outcome and the design in internal columns.

    No weight means weight 1, no strata one stratum, and no PSU makes every row its own PSU
    (simple random sampling with replacement).
    """
    lf = frame.lazy()
    require_boolean(lf, [column])
    require_columns(lf, [c for c in (weight, strata, psu) if c is not None])
    if psu is None:
        lf = lf.with_row_index(PSU)
    return lf.with_columns(
        pl.col(column).alias(Y),
        (pl.col(weight).cast(pl.Float64) if weight else pl.lit(1.0)).alias(W),
        (pl.col(strata) if strata else pl.lit(0)).alias(STRATUM),
        *([pl.col(psu).alias(PSU)] if psu else []),
    )


def _psus_per_stratum(rows: pl.LazyFrame) -> pl.DataFrame:
    """PSUs per stratum over the whole design, after checking the design columns."""
    problems = rows.select(
        missing=pl.any_horizontal(pl.col(W, STRATUM, PSU).is_null()).sum(),
        negative=(pl.col(W) < 0).sum(),
    ).collect()
    if problems["missing"].item():
        raise ValueError(f"{problems['missing'].item()} row(s) lack a weight, stratum or PSU")
    if problems["negative"].item():
        raise ValueError(f"{problems['negative'].item()} row(s) have a negative weight")
    strata = rows.group_by(STRATUM).agg(n_psu=pl.col(PSU).n_unique()).collect()
    single = strata.filter(pl.col("n_psu") < 2)
    if single.height:
        # Chosen over R's survey.lonely.psu "certainty"/"adjust": a silent variance rule would
        # change the SE without the analyst noticing; collapsing strata is a design decision.
        raise ValueError(
            f"stratum {single[STRATUM][0]!r} has a single PSU, so its variance cannot be "
            "estimated; collapse it with a similar stratum before estimating"
        )
    return strata


def linearised_estimate(
    rows: pl.LazyFrame,
    by: list[str],
    cells: pl.DataFrame,
    level: float,
    ci_method: CiMethod,
) -> pl.DataFrame:
    """θ̂ = Σ_g c_g p̂_g per group, for domain proportions p̂_g and coefficients c_g.

    ``rows`` come from `design_rows` with a ``CELL`` column (null = outside every cell) and
    ``cells`` holds ``CELL`` and ``coefficient``. The linearised value of a PSU is
    z_hi = Σ_g c_g (Y_hig − p̂_g W_hig) / Ŵ_g; rows outside the domain (another group, another
    cell, a null outcome) contribute zero but keep their stratum and PSU in the design, so
    domain estimation never subsets the design (Cochran WG. Sampling Techniques, 3rd ed.
    Wiley 1977, §2.13). An estimate needs every cell answered; otherwise it is null.
    """
    strata = _psus_per_stratum(rows)
    df = int(strata["n_psu"].sum()) - strata.height
    group = by or [_ALL]
    rows = rows.with_columns(pl.lit(True).alias(_ALL))
    answered = rows.filter(pl.col(Y).is_not_null() & pl.col(CELL).is_not_null())
    per_psu = answered.group_by([*group, CELL, STRATUM, PSU]).agg(
        n=pl.len(),
        events=pl.col(Y).sum(),
        w=pl.col(W).sum(),
        wy=(pl.col(W) * pl.col(Y)).sum(),
    )
    per_cell = (
        per_psu.group_by([*group, CELL])
        .agg(pl.col("n", "events", "w", "wy").sum())
        .filter(pl.col("w") > 0)
        .with_columns(p=pl.col("wy") / pl.col("w"))
        .join(cells.lazy(), on=CELL)
    )
    point = per_cell.group_by(group).agg(
        n=pl.col("n").sum(),
        events=pl.col("events").sum(),
        weighted_n=pl.col("w").sum(),
        estimate=(pl.col("coefficient") * pl.col("p")).sum(),
        answered_cells=pl.len(),
    )
    z = (
        per_psu.join(
            per_cell.select(*group, CELL, "coefficient", "p", pl.col("w").alias("w_cell")),
            on=[*group, CELL],
            nulls_equal=True,
        )
        .with_columns(
            z=pl.col("coefficient") * (pl.col("wy") - pl.col("p") * pl.col("w")) / pl.col("w_cell")
        )
        .group_by([*group, STRATUM, PSU])
        .agg(pl.col("z").sum())
    )
    variance = (
        z.group_by([*group, STRATUM])
        .agg(s1=pl.col("z").sum(), s2=(pl.col("z") ** 2).sum())
        .join(strata.lazy(), on=STRATUM)
        .with_columns(
            v=pl.col("n_psu")
            / (pl.col("n_psu") - 1)
            * (pl.col("s2") - pl.col("s1") ** 2 / pl.col("n_psu"))
        )
        .group_by(group)
        .agg(variance=pl.col("v").sum())
    )
    complete = pl.col("answered_cells") == cells.height
    table = (
        rows.select(group)
        .unique()
        .join(point, on=group, how="left", nulls_equal=True)
        .join(variance, on=group, how="left", nulls_equal=True)
        .select(
            *group,
            pl.col("n").fill_null(0).cast(pl.Int64),
            pl.col("events").fill_null(0).cast(pl.Int64),
            pl.col("weighted_n").fill_null(0.0),
            pl.when(complete).then(pl.col("estimate")).alias("estimate"),
            # Rounding can leave a zero variance a hair below zero.
            pl.when(complete).then(pl.col("variance").clip(lower_bound=0).sqrt()).alias("se"),
        )
        .sort(group, nulls_last=True)
        .collect()
    )
    low, high = t_interval(table["estimate"], table["se"], df, level, ci_method)
    return table.drop(_ALL, strict=False).with_columns(
        ci_low=pl.Series(low, dtype=pl.Float64, nan_to_null=True),
        ci_high=pl.Series(high, dtype=pl.Float64, nan_to_null=True),
        df=pl.lit(df, dtype=pl.Int64),
        method=pl.lit(ci_method),
    )


def t_interval(
    estimate: pl.Series, se: pl.Series, df: int, level: float, ci_method: CiMethod
) -> tuple[np.ndarray, np.ndarray]:
    """Interval from a t quantile with the design's degrees of freedom (NaN where undefined).

    ``"normal"``: θ̂ ± t·SE. ``"logit"``: expit(logit θ̂ ± t·SE / (θ̂(1 − θ̂))), as R's
    ``svyciprop(method = "logit")``; it is undefined (NaN) at θ̂ = 0 or 1. Degrees of freedom
    are #PSU − #strata of the full design, as NCHS uses (Johnson CL et al. National Health and
    Nutrition Examination Survey: analytic guidelines, 1999-2010. Vital Health Stat 2(161);
    2013).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    t = float(stats.t.ppf(0.5 + level / 2, df))
    p = estimate.to_numpy().astype(np.float64)
    s = se.to_numpy().astype(np.float64)
    if ci_method == "normal":
        return p - t * s, p + t * s
    if ci_method != "logit":
        raise ValueError(f"unknown interval method {ci_method!r}")
    # Outside 0 < p < 1 the logit does not exist; NaN marks the interval as undefined.
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.log(p / (1 - p))
        half = t * s / (p * (1 - p))
        inside = (p > 0) & (p < 1)
        low = np.where(inside, 1 / (1 + np.exp(-(centre - half))), np.nan)
        high = np.where(inside, 1 / (1 + np.exp(-(centre + half))), np.nan)
    return low, high


def survey_prevalence(
    frame: Frame,
    column: str,
    *,
    weight: str | None = None,
    strata: str | None = None,
    psu: str | None = None,
    by: By = None,
    level: float = 0.95,
    ci_method: CiMethod = "logit",
) -> pl.DataFrame:
    """Weighted prevalence of a Boolean column per domain, with Taylor-linearised SE and CI.

    The estimate is the ratio Σ w·y / Σ w over evaluable rows (null = not evaluable, outside
    the domain). Each ``by`` group is a domain estimated within the full design (see
    `linearised_estimate`); PSU ids are nested within strata. A stratum with a single PSU is
    an error naming that stratum. Columns: the ``by`` columns, ``n`` (evaluable rows),
    ``events``, ``weighted_n`` (Σ w of evaluable rows), ``estimate``, ``se``, ``ci_low``,
    ``ci_high``, ``df`` (#PSU − #strata), ``method`` (the interval, see `t_interval`).
    """
    rows = design_rows(frame, column, weight, strata, psu).with_columns(pl.lit(0).alias(CELL))
    cells = pl.DataFrame({CELL: [0], "coefficient": [1.0]}, schema_overrides={CELL: pl.Int32})
    return linearised_estimate(rows, keys(by), cells, level, ci_method)
