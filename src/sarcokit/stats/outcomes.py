"""What a sarcopenia category predicts: survival curves, competing risks, Cox and logistic models.

Survival estimation and the Cox fit use statsmodels (``SurvfuncRight``, ``survdiff``,
``CumIncidenceRight``, ``PHReg``, ``GLM``); the proportional-hazards test, Harrell's C and the
survey-design variance, which it lacks, are written here. Each is checked in the test suite
against R's ``survival`` (Therneau T. A Package for Survival Analysis in R) and ``survey``
packages run on the same data.

Rows whose time, event, exposure or a covariate is missing, or whose category is
``indeterminate``, cannot enter a model; they are counted in ``n_excluded``, never dropped
silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from sarcokit.definitions import INDETERMINATE
from sarcokit.stats._inputs import Frame, require_columns

Ties = Literal["efron", "breslow"]
FloatArray = npt.NDArray[np.float64]
NO_SARCOPENIA = "no_sarcopenia"


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    return float(stats.norm.ppf(0.5 + level / 2))


def _survival_rows(
    frame: Frame, time: str, event: str, extra: Sequence[str]
) -> tuple[pl.DataFrame, int]:
    """Rows with a time, an event flag and every extra column answered; and how many were not."""
    lf = frame.lazy()
    columns = [time, event, *extra]
    require_columns(lf, columns)
    table = lf.select(columns).collect()
    answered = pl.all_horizontal(pl.col(c).is_not_null() for c in columns)
    for column in extra:
        if table.schema[column] in (pl.String, pl.Categorical) or isinstance(
            table.schema[column], pl.Enum
        ):
            answered = answered & (pl.col(column).cast(pl.String) != INDETERMINATE)
    kept = table.filter(answered)
    negative = kept.filter(pl.col(time) < 0)
    if negative.height:
        raise ValueError(f"{time}: {negative.height} row(s) with a negative follow-up time")
    values = kept[event].cast(pl.Int64)
    if not values.is_in([0, 1]).all():
        raise ValueError(f"{event}: expected 0/1 or false/true, got {sorted(set(values))}")
    return kept.with_columns(pl.col(event).cast(pl.Int64)), table.height - kept.height


# --- Kaplan–Meier, log-rank, Aalen–Johansen -------------------------------------------------


def kaplan_meier(
    frame: Frame, time: str, event: str, *, group: str | None = None, level: float = 0.95
) -> pl.DataFrame:
    """Kaplan–Meier survival at each event time, per group, with the number at risk.

    Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat Assoc
    1958;53:457-481; Greenwood's variance; the interval exp(log S ± z·SE(log S)), R
    ``survfit``'s default ``conf.type = "log"``. Columns: ``group`` (text; "all" without
    groups), ``time``, ``n_risk``, ``n_event``, ``survival``, ``se_log`` (SE of log S),
    ``ci_low``, ``ci_high``.
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    z = _z(level)
    rows, _ = _survival_rows(frame, time, event, [group] if group else [])
    parts = []
    labels = ["all"] if group is None else sorted(rows[group].cast(pl.String).unique().to_list())
    for label in labels:
        part = rows if group is None else rows.filter(pl.col(group).cast(pl.String) == label)
        fit = SurvfuncRight(part[time].to_numpy(), part[event].to_numpy())
        survival = np.asarray(fit.surv_prob, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            se_log = np.asarray(fit.surv_prob_se, dtype=np.float64) / survival
        parts.append(
            pl.DataFrame(
                {
                    "group": label,
                    "time": np.asarray(fit.surv_times, dtype=np.float64),
                    "n_risk": np.asarray(fit.n_risk, dtype=np.int64),
                    "n_event": np.asarray(fit.n_events, dtype=np.int64),
                    "survival": survival,
                    "se_log": se_log,
                    "ci_low": survival * np.exp(-z * se_log),
                    "ci_high": np.minimum(1.0, survival * np.exp(z * se_log)),
                },
                nan_to_null=True,
            )
        )
    return pl.concat(parts)


def number_at_risk(frame: Frame, time: str, group: str | None, at: Sequence[float]) -> pl.DataFrame:
    """Subjects still followed (time ≥ t) at each time t, per group: the table under a KM plot."""
    lf = frame.lazy().filter(pl.col(time).is_not_null())
    keys = (
        [pl.col(group).cast(pl.String).alias("group")] if group else [pl.lit("all").alias("group")]
    )
    return (
        lf.group_by(keys)
        .agg(*((pl.col(time) >= t).sum().alias(f"{t:g}") for t in at))
        .sort("group")
        .collect()
    )


@dataclass(frozen=True)
class LogRank:
    """The log-rank test of equal survival across groups."""

    chisq: float
    df: int
    p: float


def logrank_test(frame: Frame, time: str, event: str, group: str) -> LogRank:
    """Log-rank test (Mantel N. Evaluation of survival data and two new rank order statistics
    arising in its consideration. Cancer Chemother Rep 1966;50:163-170), as R ``survdiff``."""
    from statsmodels.duration.survfunc import survdiff

    rows, _ = _survival_rows(frame, time, event, [group])
    labels = rows[group].cast(pl.String).to_numpy()
    chisq, p = survdiff(rows[time].to_numpy(), rows[event].to_numpy(), labels)
    return LogRank(float(chisq), len(set(labels)) - 1, float(p))


def cumulative_incidence(frame: Frame, time: str, status: str) -> pl.DataFrame:
    """Cumulative incidence of each cause with competing risks, Aalen–Johansen estimator.

    ``status`` is 0 for censored and 1, 2, … for the causes (e.g. 1 = the outcome, 2 = death
    before it) (Aalen OO, Johansen S. An empirical transition matrix for non-homogeneous
    Markov chains based on censored observations. Scand J Stat 1978;5:141-150). Columns:
    ``cause``, ``time``, ``incidence`` at each event time of any cause.
    """
    from statsmodels.duration.survfunc import CumIncidenceRight

    lf = frame.lazy()
    require_columns(lf, [time, status])
    rows = lf.select(time, status).drop_nulls().collect()
    codes = rows[status].cast(pl.Int64)
    if (codes < 0).any():
        raise ValueError(f"{status}: codes must be 0 (censored) or a positive cause number")
    fit = CumIncidenceRight(rows[time].to_numpy().astype(np.float64), codes.to_numpy())
    causes = sorted(c for c in set(codes.to_list()) if c > 0)
    times = np.asarray(fit.times, dtype=np.float64)
    return pl.concat(
        pl.DataFrame(
            {"cause": cause, "time": times, "incidence": np.asarray(fit.cinc[i], dtype=np.float64)}
        )
        for i, cause in enumerate(causes)
    )


# --- Cox proportional hazards ----------------------------------------------------------------


def design_matrix(
    rows: pl.DataFrame, exposure: str, covariates: Sequence[str], reference: str | None
) -> tuple[FloatArray, list[str]]:
    """Numeric columns for a model: a Boolean or numeric exposure as one column, a category
    exposure as one indicator per category against ``reference`` (default no_sarcopenia, else
    the first in sort order); covariates must be numeric or Boolean (sex as a male flag)."""
    columns: list[FloatArray] = []
    names: list[str] = []
    for position, name in enumerate([exposure, *covariates]):
        dtype = rows.schema[name]
        if dtype == pl.Boolean or dtype.is_numeric():
            columns.append(rows[name].cast(pl.Float64).to_numpy())
            names.append(name)
            continue
        values = rows[name].cast(pl.String)
        levels = sorted(values.unique().to_list())
        if name == "sex" and set(levels) <= {"male", "female"}:
            columns.append((values == "male").cast(pl.Float64).to_numpy())
            names.append("sex_male")
            continue
        if position > 0 and name != exposure:
            base = levels[0]
        else:
            base = reference or (NO_SARCOPENIA if NO_SARCOPENIA in levels else levels[0])
        if base not in levels:
            raise ValueError(f"{name}: reference category {base!r} is not among {levels}")
        for level in levels:
            if level != base:
                columns.append((values == level).cast(pl.Float64).to_numpy())
                names.append(f"{name}={level}")
    return np.column_stack(columns), names


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox model: one row per term, fit statistics, and the PH check."""

    terms: pl.DataFrame  # term, coef, hr, se, robust_se, z, p, ci_low, ci_high
    n: int
    events: int
    n_excluded: int
    loglik: float
    concordance: float
    ties: str
    ph_test: pl.DataFrame  # term (and GLOBAL), chisq, df, p


def cox_model(
    frame: Frame,
    time: str,
    event: str,
    exposure: str,
    covariates: Sequence[str] = (),
    *,
    ties: Ties = "efron",
    robust: bool = False,
    cluster: str | None = None,
    reference: str | None = None,
    level: float = 0.95,
) -> CoxResult:
    """Cox proportional-hazards model of an exposure (e.g. sarcopenia), adjusted for covariates.

    Cox DR. Regression models and life-tables. J R Stat Soc B 1972;34:187-220, fitted by
    statsmodels' ``PHReg`` with Efron's (Efron B. The efficiency of Cox's likelihood function
    for censored data. J Am Stat Assoc 1977;72:557-565) or Breslow's handling of tied times,
    as R ``coxph(ties = ...)``. ``robust`` (or a ``cluster`` column) adds the sandwich SE of
    Lin DY, Wei LJ. The robust inference for the Cox proportional hazards model. J Am Stat
    Assoc 1989;84:1074-1078, which the interval and p-value then use, as R does. Harrell's C
    (`concordance`) and the Grambsch–Therneau proportional-hazards test (`ph_test`) are
    reported with the fit.
    """
    from statsmodels.duration.hazard_regression import PHReg

    extra = [exposure, *covariates] + ([cluster] if cluster else [])
    rows, excluded = _survival_rows(frame, time, event, list(dict.fromkeys(extra)))
    if rows.height == 0:
        raise ValueError("no row has a time, an event, the exposure and every covariate")
    x, names = design_matrix(rows, exposure, covariates, reference)
    t = rows[time].cast(pl.Float64).to_numpy()
    d = rows[event].to_numpy().astype(np.float64)
    model = PHReg(t, x, status=d, ties=ties)
    fit = model.fit()
    beta = np.asarray(fit.params, dtype=np.float64)
    naive_cov = np.linalg.inv(-model.hessian(beta))
    se = np.sqrt(np.diag(naive_cov))
    robust_se = None
    if robust or cluster:
        # statsmodels' grouped covariance uses Breslow score residuals even for Efron fits,
        # so the sandwich is built here from the residuals of the chosen method.
        residuals = score_residuals(t, d, x, beta, ties)
        if cluster:
            codes = rows[cluster].cast(pl.String).rank("dense").to_numpy().astype(np.int64) - 1
            summed = np.zeros((int(codes.max()) + 1, x.shape[1]))
            np.add.at(summed, codes, residuals)
            residuals = summed
        robust_cov = naive_cov @ (residuals.T @ residuals) @ naive_cov
        robust_se = np.sqrt(np.diag(robust_cov))
    used = robust_se if robust_se is not None else se
    zval = beta / used
    z = _z(level)
    terms = pl.DataFrame(
        {
            "term": names,
            "coef": beta,
            "hr": np.exp(beta),
            "se": se,
            "robust_se": robust_se if robust_se is not None else np.full(len(beta), np.nan),
            "z": zval,
            "p": 2 * stats.norm.sf(np.abs(zval)),
            "ci_low": np.exp(beta - z * used),
            "ci_high": np.exp(beta + z * used),
        },
        nan_to_null=True,
    )
    eta = x @ beta
    return CoxResult(
        terms=terms,
        n=rows.height,
        events=int(d.sum()),
        n_excluded=excluded,
        loglik=float(model.loglike(beta)),
        concordance=harrell_c(t, d, eta),
        ties=ties,
        ph_test=ph_test(t, d, x, beta, names, ties),
    )


def score_residuals(
    time: FloatArray,
    event: FloatArray,
    x: FloatArray,
    beta: FloatArray,
    ties: Ties,
    case_weights: FloatArray | None = None,
) -> FloatArray:
    """Each subject's share of the Cox score at β (rows sum to the score, 0 at the MLE).

    U_i = Σ_k Σ_r [c_i δ_ik s_k − f_k ω_i^(r)/Ω^(r)] (x_i − x̄^(r)) over event times k and,
    with Efron's method, its d_k sub-steps r in which tied deaths keep risk weight
    ω_i = c_i e^(x_i β)(1 − r/d_k) (s_k = 1/d_k, f_k = the mean case weight c of the deaths);
    Breslow's method has one step (s_k = 1, f_k = Σ c of the deaths) (Therneau TM, Grambsch
    PM. Modeling Survival Data. Springer 2000, §3.3 and §7.2). Case weights c default to 1;
    with them these are R's weighted ``residuals(fit, "score")``.
    """
    c = np.ones(len(time)) if case_weights is None else case_weights
    risk = c * np.exp(x @ beta)
    residuals = np.zeros_like(x)
    for t in np.unique(time[event == 1]):
        at_risk = time >= t
        dead = at_risk & (time == t) & (event == 1)
        d = int(dead.sum())
        efron = ties == "efron"
        share = 1 / d if efron else 1.0
        factor = float(c[dead].sum()) / (d if efron else 1)
        for r in range(d) if efron else [0]:
            weights = risk * at_risk * np.where(dead, 1 - r / d, 1.0)
            centred = x - weights @ x / weights.sum()
            hazard = factor * weights / weights.sum()
            residuals += centred * (c * dead * share - hazard)[:, None]
    return residuals


def _weighted_cox(
    time: FloatArray, event: FloatArray, x: FloatArray, c: FloatArray, ties: Ties
) -> tuple[FloatArray, FloatArray, float]:
    """β̂ maximising the case-weighted partial likelihood (Newton–Raphson), its information
    matrix and the log partial likelihood, as R ``coxph(weights = c)``."""
    p = x.shape[1]
    beta = np.zeros(p)

    def pieces(b: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        risk = c * np.exp(x @ b)
        loglik, gradient, information = 0.0, np.zeros(p), np.zeros((p, p))
        for t in np.unique(time[event == 1]):
            at_risk = time >= t
            dead = at_risk & (time == t) & (event == 1)
            d = int(dead.sum())
            efron = ties == "efron"
            factor = float(c[dead].sum()) / (d if efron else 1)
            loglik += float(c[dead] @ (x[dead] @ b))
            gradient += c[dead] @ x[dead]
            for r in range(d) if efron else [0]:
                weights = risk * at_risk * np.where(dead, 1 - r / d, 1.0)
                mean, cov = _risk_moments(x, weights)
                loglik -= factor * math.log(float(weights.sum()))
                gradient -= factor * mean
                information += factor * cov
        return loglik, gradient, information

    loglik, gradient, information = pieces(beta)
    for _ in range(100):
        step = np.linalg.solve(information, gradient)
        candidate = beta + step
        new = pieces(candidate)
        halvings = 0
        while new[0] < loglik - 1e-12 and halvings < 30:  # step halving keeps the ascent
            step /= 2
            candidate = beta + step
            new = pieces(candidate)
            halvings += 1
        beta = candidate
        converged = abs(new[0] - loglik) < 1e-13 and float(np.max(np.abs(step))) < 1e-11
        loglik, gradient, information = new
        if converged:
            break
    return beta, information, loglik


def survey_cox_model(
    frame: Frame,
    time: str,
    event: str,
    exposure: str,
    covariates: Sequence[str] = (),
    *,
    weight: str,
    strata: str | None = None,
    psu: str | None = None,
    ties: Ties = "efron",
    reference: str | None = None,
    level: float = 0.95,
) -> CoxResult:
    """Design-based Cox model for a complex survey, as R ``svycoxph``.

    β̂ maximises the weighted partial likelihood (Binder DA. Fitting Cox's proportional hazards
    models from survey data. Biometrika 1992;79:139-147); the variance is the with-replacement
    between-PSU variance within strata of the PSU totals of the influence values
    c_i U_i I⁻¹ (weighted score residuals times the inverse information). Intervals and
    p-values are normal, as ``svycoxph`` reports them; ``se`` holds the model-based SE and
    ``robust_se`` the design-based one. The PH test is not computed (empty).
    """
    design = [c for c in (weight, strata, psu) if c]
    rows, excluded = _survival_rows(
        frame, time, event, list(dict.fromkeys([exposure, *covariates, *design]))
    )
    x, names = design_matrix(rows, exposure, covariates, reference)
    t = rows[time].cast(pl.Float64).to_numpy()
    d = rows[event].to_numpy().astype(np.float64)
    c = rows[weight].cast(pl.Float64).to_numpy()
    beta, information, loglik = _weighted_cox(t, d, x, c, ties)
    inverse = np.linalg.inv(information)
    influence = score_residuals(t, d, x, beta, ties, c) @ inverse
    stratum = rows[strata].to_numpy() if strata else np.zeros(rows.height)
    unit = rows[psu].to_numpy() if psu else np.arange(rows.height)
    meat, _ = _design_meat(influence, stratum, unit)
    design_se = np.sqrt(np.diag(meat))
    zval = beta / design_se
    z = _z(level)
    terms = pl.DataFrame(
        {
            "term": names,
            "coef": beta,
            "hr": np.exp(beta),
            "se": np.sqrt(np.diag(inverse)),
            "robust_se": design_se,
            "z": zval,
            "p": 2 * stats.norm.sf(np.abs(zval)),
            "ci_low": np.exp(beta - z * design_se),
            "ci_high": np.exp(beta + z * design_se),
        }
    )
    return CoxResult(
        terms=terms,
        n=rows.height,
        events=int(d.sum()),
        n_excluded=excluded,
        loglik=loglik,
        concordance=harrell_c(t, d, x @ beta),
        ties=ties,
        ph_test=pl.DataFrame(
            schema={"term": pl.String, "chisq": pl.Float64, "df": pl.Int64, "p": pl.Float64}
        ),
    )


def harrell_c(time: FloatArray, event: FloatArray, risk: FloatArray) -> float:
    """Harrell's C: among usable pairs, the share where the higher risk fails first.

    A pair is usable when the shorter time is an event; at equal times, an event paired with a
    censored time is usable (censoring is taken to follow the event) and two events are not.
    Equal risks count one half (Harrell FE, Lee KL, Mark DB. Multivariable prognostic models.
    Stat Med 1996;15:361-387); R ``concordance`` with ``timewt = "n"``.
    """
    order = np.argsort(time, kind="stable")
    t, e, r = time[order], event[order], risk[order]
    concordant = discordant = tied = 0.0
    for i in np.flatnonzero(e == 1):
        later = (t > t[i]) | ((t == t[i]) & (e == 0))
        others = r[later]
        concordant += float(np.sum(others < r[i]))
        discordant += float(np.sum(others > r[i]))
        tied += float(np.sum(others == r[i]))
    total = concordant + discordant + tied
    return (concordant + tied / 2) / total if total else float("nan")


def _risk_moments(x: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    total = float(weights.sum())
    mean = weights @ x / total
    centred = x - mean
    return mean, (centred * weights[:, None]).T @ centred / total


def ph_test(
    time: FloatArray,
    event: FloatArray,
    x: FloatArray,
    beta: FloatArray,
    names: Sequence[str],
    ties: Ties,
) -> pl.DataFrame:
    """Score test of proportional hazards for each term and globally, as R ``cox.zph``.

    The indicator columns of one category exposure (named ``exposure=category``) form one term.

    Each coefficient is allowed to change with g(t) = 1 − KM(t−) centred at its mean over the
    events (the "km" transform); the score test of no change is computed at β̂ from the
    Schoenfeld residuals and the information of the expanded model (Grambsch PM, Therneau TM.
    Proportional hazards tests and diagnostics based on weighted residuals. Biometrika
    1994;81:515-526; the score form of survival ≥ 3.0).
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    km = SurvfuncRight(time, event)
    km_times = np.asarray(km.surv_times, dtype=np.float64)
    km_surv = np.asarray(km.surv_prob, dtype=np.float64)
    # KM just before t: the survival at the last event time strictly before t.
    before = np.searchsorted(km_times, time, side="left")
    left_km = np.concatenate([[1.0], km_surv])[before]
    g_all = 1.0 - left_km
    g_all = g_all - g_all[event == 1].mean()
    p = x.shape[1]
    risk = np.exp(x @ beta)
    u = np.zeros(p)
    info = np.zeros((2 * p, 2 * p))
    for t in np.unique(time[event == 1]):
        at_risk = time >= t
        dead = at_risk & (time == t) & (event == 1)
        d = int(dead.sum())
        g = float(g_all[dead][0])
        steps = range(d) if ties == "efron" else [0]
        schoenfeld = x[dead].sum(axis=0)
        block = np.zeros((p, p))
        for r in steps:
            weights = risk * at_risk * np.where(dead, 1 - r / d, 1.0)
            mean, cov = _risk_moments(x, weights)
            multiplicity = 1 if ties == "efron" else d
            schoenfeld = schoenfeld - multiplicity * mean
            block += multiplicity * cov
        u += g * schoenfeld
        info[:p, :p] += block
        info[:p, p:] += g * block
        info[p:, :p] += g * block
        info[p:, p:] += g * g * block
    # A category exposure (several indicator columns) is tested as one term, as R does.
    terms: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        terms.setdefault(name.split("=")[0], []).append(j)
    rows = []
    for name, columns in terms.items():
        keep = [*range(p), *(p + j for j in columns)]
        score = np.concatenate([np.zeros(p), u[columns]])
        chisq = float(score @ np.linalg.solve(info[np.ix_(keep, keep)], score))
        rows.append((name, chisq, len(columns), float(stats.chi2.sf(chisq, len(columns)))))
    score = np.concatenate([np.zeros(p), u])
    chisq = float(score @ np.linalg.solve(info, score))
    rows.append(("GLOBAL", chisq, p, float(stats.chi2.sf(chisq, p))))
    return pl.DataFrame(rows, schema=["term", "chisq", "df", "p"], orient="row")


def hazard_ratios_by_definition(
    frame: Frame,
    time: str,
    event: str,
    exposures: dict[str, str],
    covariates: Sequence[str] = (),
    *,
    ties: Ties = "efron",
    robust: bool = False,
    level: float = 0.95,
) -> pl.DataFrame:
    """The adjusted HR of sarcopenia side by side for each definition, with Harrell's C.

    ``exposures`` maps a definition id to its column (a Boolean sarcopenia flag, or a
    category column for one HR per category against no sarcopenia). Each model is fitted on
    the rows evaluable under that definition, so ``n`` differs between definitions; Harrell's C
    of each model says how well it orders deaths (higher is better). Columns: definition, term,
    hr, ci_low, ci_high, p, n, events, n_excluded, concordance, ph_p (global PH test),
    adjusted_for (the covariates, comma-separated).
    """
    parts = []
    for definition_id, column in exposures.items():
        fit = cox_model(
            frame, time, event, column, covariates, ties=ties, robust=robust, level=level
        )
        exposure_terms = fit.terms.filter(
            (pl.col("term") == column) | pl.col("term").str.starts_with(f"{column}=")
        )
        parts.append(
            exposure_terms.select(
                pl.lit(definition_id).alias("definition"),
                "term",
                "hr",
                "ci_low",
                "ci_high",
                "p",
                pl.lit(fit.n).alias("n"),
                pl.lit(fit.events).alias("events"),
                pl.lit(fit.n_excluded).alias("n_excluded"),
                pl.lit(fit.concordance).alias("concordance"),
                pl.lit(fit.ph_test.filter(pl.col("term") == "GLOBAL")["p"][0]).alias("ph_p"),
                pl.lit(", ".join(covariates)).alias("adjusted_for"),
            )
        )
    return pl.concat(parts)


# --- binary outcomes -------------------------------------------------------------------------


@dataclass(frozen=True)
class LogisticResult:
    """A fitted logistic model: one row per term (odds ratios), and the rows it used."""

    terms: pl.DataFrame  # term, coef, odds_ratio, se, z, p, ci_low, ci_high (+ df with a design)
    n: int
    n_excluded: int


def logistic_model(
    frame: Frame,
    outcome: str,
    exposure: str,
    covariates: Sequence[str] = (),
    *,
    reference: str | None = None,
    weight: str | None = None,
    strata: str | None = None,
    psu: str | None = None,
    level: float = 0.95,
) -> LogisticResult:
    """Odds ratios of a binary outcome (falls, hospitalisation) by exposure, adjusted.

    Maximum-likelihood logistic regression (statsmodels ``GLM``, binomial), as R ``glm``. With a
    survey design (weight, strata, PSU) the coefficients solve the weighted score equations
    and the variance is the Taylor-linearised sandwich A⁻¹ V A⁻¹, V the with-replacement
    between-PSU variance of the score totals within strata (Binder DA. On the variances of
    asymptotically normal estimators from complex surveys. Int Stat Rev 1983;51:279-292), and
    intervals use t with #PSU − #strata df, as R ``svyglm``.
    """
    import statsmodels.api as sm

    lf = frame.lazy()
    design = [c for c in (weight, strata, psu) if c]
    columns = list(dict.fromkeys([outcome, exposure, *covariates, *design]))
    require_columns(lf, columns)
    table = lf.select(columns).collect()
    answered = pl.all_horizontal(pl.col(c).is_not_null() for c in columns)
    if table.schema[exposure] in (pl.String, pl.Categorical):
        answered = answered & (pl.col(exposure).cast(pl.String) != INDETERMINATE)
    rows = table.filter(answered)
    y = rows[outcome].cast(pl.Float64).to_numpy()
    if not np.isin(y, [0.0, 1.0]).all():
        raise ValueError(f"{outcome}: expected 0/1 or false/true")
    x, names = design_matrix(rows, exposure, covariates, reference)
    x = np.column_stack([np.ones(rows.height), x])
    names = ["(intercept)", *names]
    w = rows[weight].cast(pl.Float64).to_numpy() if weight else np.ones(rows.height)
    fit = sm.GLM(y, x, family=sm.families.Binomial(), freq_weights=w if weight else None).fit(
        tol=1e-12
    )
    beta = np.asarray(fit.params, dtype=np.float64)
    if not design:
        se = np.asarray(fit.bse, dtype=np.float64)
        crit = _z(level)
        pvalues = 2 * stats.norm.sf(np.abs(beta / se))
        df: int | None = None
    else:
        mu = 1 / (1 + np.exp(-(x @ beta)))
        scores = x * (w * (y - mu))[:, None]
        bread = np.linalg.inv((x * (w * mu * (1 - mu))[:, None]).T @ x)
        stratum = rows[strata].to_numpy() if strata else np.zeros(rows.height)
        unit = rows[psu].to_numpy() if psu else np.arange(rows.height)
        meat, df = _design_meat(scores, stratum, unit)
        cov = bread @ meat @ bread
        se = np.sqrt(np.diag(cov))
        crit = float(stats.t.ppf(0.5 + level / 2, df))
        pvalues = 2 * stats.t.sf(np.abs(beta / se), df)
    terms = pl.DataFrame(
        {
            "term": names,
            "coef": beta,
            "odds_ratio": np.exp(beta),
            "se": se,
            "z": beta / se,
            "p": pvalues,
            "ci_low": np.exp(beta - crit * se),
            "ci_high": np.exp(beta + crit * se),
        }
    )
    if df is not None:
        terms = terms.with_columns(df=pl.lit(df))
    return LogisticResult(terms, rows.height, table.height - rows.height)


def _design_meat(
    scores: FloatArray, stratum: npt.NDArray[np.generic], unit: npt.NDArray[np.generic]
) -> tuple[FloatArray, int]:
    """Σ_h n_h/(n_h − 1) Σ_i (z_hi − z̄_h)(z_hi − z̄_h)' over PSU totals z_hi; and the df."""
    frame = pl.DataFrame({"h": stratum, "i": unit}).with_columns(
        pl.struct("h", "i").rank("dense").alias("cell") - 1
    )
    cells = frame["cell"].to_numpy()
    totals = np.zeros((int(cells.max()) + 1, scores.shape[1]))
    np.add.at(totals, cells, scores)
    cell_stratum = frame.unique("cell").sort("cell")["h"].to_numpy()
    meat = np.zeros((scores.shape[1], scores.shape[1]))
    strata_seen = 0
    for h in np.unique(cell_stratum):
        z = totals[cell_stratum == h]
        n_h = len(z)
        if n_h < 2:
            raise ValueError(f"stratum {h!r} has a single PSU; collapse it before estimating")
        centred = z - z.mean(axis=0)
        meat += n_h / (n_h - 1) * centred.T @ centred
        strata_seen += 1
    return meat, len(totals) - strata_seen


# --- longitudinal cohorts ----------------------------------------------------------------------


def transitions(frame: Frame, id: str, wave: str, category: str) -> pl.DataFrame:
    """Counts of subjects moving from each category at one wave to each at the next wave.

    Consecutive waves of the same subject are paired (wave values sorted); a subject missing
    a wave pairs its neighbours. Columns: ``from_wave``, ``to_wave``, ``from``, ``to``,
    ``count``, ``share`` (of those starting in ``from``).
    """
    lf = frame.lazy()
    require_columns(lf, [id, wave, category])
    paired = (
        lf.select(id, wave, pl.col(category).cast(pl.String).alias("category"))
        .filter(pl.col(wave).is_not_null())
        .sort(id, wave)
        .with_columns(
            to_wave=pl.col(wave).shift(-1).over(id),
            to=pl.col("category").shift(-1).over(id),
        )
        .filter(pl.col("to_wave").is_not_null())
        .rename({wave: "from_wave", "category": "from"})
    )
    counts = paired.group_by("from_wave", "to_wave", "from", "to").agg(count=pl.len())
    return (
        counts.with_columns(
            share=pl.col("count") / pl.col("count").sum().over("from_wave", "to_wave", "from")
        )
        .sort("from_wave", "to_wave", "from", "to", nulls_last=True)
        .collect()
    )


def incidence_rate(
    frame: Frame, id: str, time: str, case: str, *, per: float = 1000.0, level: float = 0.95
) -> pl.DataFrame:
    """Incidence of a condition per ``per`` person-years among subjects free of it at baseline.

    ``time`` is the time of each wave in years; a subject contributes time from the first
    wave until the first wave at which ``case`` is true (onset taken at the midpoint of that
    interval, as is usual for interval-censored onset) or the last wave without it. Rows where
    ``case`` is null are not evaluable and skipped (the subject's time runs on to the next
    evaluable wave). The interval is the exact Poisson one (Ulm K. A simple method to
    calculate the confidence interval of a standardized mortality ratio. Am J Epidemiol
    1990;131:373-375). Columns: subjects, cases, person_years, rate, ci_low, ci_high.
    """
    lf = frame.lazy()
    require_columns(lf, [id, time, case])
    waves = lf.select(id, time, pl.col(case).cast(pl.Boolean)).drop_nulls().sort(id, time).collect()
    subjects = cases = 0
    person_years = 0.0
    for _, part in waves.group_by(id, maintain_order=True):
        flags = part[case].to_list()
        times = part[time].cast(pl.Float64).to_list()
        if flags[0] or len(flags) < 2:
            continue  # a prevalent case, or no follow-up
        subjects += 1
        onset = next((i for i, flag in enumerate(flags) if flag), None)
        if onset is None:
            person_years += times[-1] - times[0]
        else:
            cases += 1
            person_years += (times[onset - 1] + times[onset]) / 2 - times[0]
    alpha = 1 - level
    low = stats.chi2.ppf(alpha / 2, 2 * cases) / 2 if cases else 0.0
    high = stats.chi2.ppf(1 - alpha / 2, 2 * cases + 2) / 2
    scale = per / person_years if person_years else math.nan
    return pl.DataFrame(
        {
            "subjects": [subjects],
            "cases": [cases],
            "person_years": [person_years],
            "rate": [cases * scale],
            "ci_low": [low * scale],
            "ci_high": [high * scale],
            "per": [per],
        }
    )
