"""Meta-analysis of proportions: pooled prevalence across studies, heterogeneity, subgroups.

Each study gives events and a total. The proportions are transformed (logit, or the
Freeman–Tukey double arcsine), pooled under a random-effects model with weights
1 / (v_i + τ²), and transformed back; or they are pooled on the binomial scale by a
random-intercept logistic model (GLMM). Every number here is computed as R's ``metafor``
(Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw
2010;36(3):1-48) computes it, and the test suite compares the two on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import optimize, special, stats

Measure = Literal["logit", "ft"]
TauMethod = Literal["DL", "REML", "PM"]
FloatArray = npt.NDArray[np.float64]

MEASURES: tuple[str, ...] = ("logit", "ft", "glmm")
TAU_METHODS: tuple[str, ...] = ("DL", "REML", "PM")
# Root finding and the GLMM optimiser stop well below the 1e-6 the results are checked to.
_TOL = 1e-12


@dataclass(frozen=True)
class Studies:
    """Per-study counts: labels, events, totals, and moderator columns (one value per study)."""

    labels: list[str]
    events: FloatArray
    n: FloatArray
    moderators: pl.DataFrame = field(default_factory=pl.DataFrame)

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.events) or len(self.events) != len(self.n):
            raise ValueError("labels, events and n must have one value per study")
        for label, x, m in zip(self.labels, self.events, self.n, strict=True):
            if not (math.isfinite(x) and math.isfinite(m)) or m <= 0 or x < 0 or x > m:
                raise ValueError(
                    f"study {label!r}: events {x:g} of n {m:g}; expected 0 <= events <= n, n > 0"
                )

    def subset(self, mask: npt.NDArray[np.bool_]) -> Studies:
        """The studies where mask is true."""
        rows = [i for i, keep in enumerate(mask) if keep]
        return Studies(
            [self.labels[i] for i in rows],
            self.events[mask],
            self.n[mask],
            self.moderators[rows] if self.moderators.width else self.moderators,
        )


def effect_sizes(
    events: npt.ArrayLike, n: npt.ArrayLike, measure: Measure, add: float = 0.5
) -> tuple[FloatArray, FloatArray]:
    """Transformed proportions y_i and their sampling variances v_i.

    - ``"logit"``: y = log(x / (n − x)), v = 1/x + 1/(n − x); a study with x = 0 or x = n
      has ``add`` (0.5) added to both cells first, as metafor's ``escalc(measure="PLO")``
      with ``to="only0"`` (Sweeting MJ, Sutton AJ, Lambert PC. What to add to nothing? Stat Med
      2004;23:1351-1375).
    - ``"ft"``: Freeman–Tukey double arcsine y = ½[asin √(x/(n+1)) + asin √((x+1)/(n+1))],
      v = 1/(4n + 2) (Freeman MF, Tukey JW. Transformations related to the angular and the
      square root. Ann Math Stat 1950;21:607-611); defined at 0 and n, nothing is added.
    """
    x = np.asarray(events, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    if measure == "logit":
        zero = (x == 0) | (x == m)
        a = np.where(zero, x + add, x)
        b = np.where(zero, m - x + add, m - x)
        return np.log(a / b), 1 / a + 1 / b
    if measure == "ft":
        y = 0.5 * (np.arcsin(np.sqrt(x / (m + 1))) + np.arcsin(np.sqrt((x + 1) / (m + 1))))
        return y, 1 / (4 * m + 2)
    raise ValueError(f"unknown measure {measure!r}; expected logit or ft")


def pft(p: npt.ArrayLike, n: float) -> FloatArray:
    """The double arcsine of a proportion p at sample size n (metafor ``transf.pft``)."""
    x = np.asarray(p, dtype=np.float64) * n
    return np.asarray(
        0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
    )


def ipft(y: npt.ArrayLike, n: float) -> FloatArray:
    """Back-transform a double arcsine value to a proportion at sample size n.

    p = ½{1 − sgn(cos 2y) √(1 − [sin 2y + (sin 2y − 1/sin 2y)/n]²)} (Miller JJ. The inverse of
    the Freeman-Tukey double arcsine transformation. Am Stat 1978;32:138), 0 below the value of
    p = 0 and 1 above that of p = 1, as metafor's ``transf.ipft``.
    """
    t = np.atleast_1d(np.asarray(y, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sin(2 * t)
        p = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(1 - (s + (s - 1 / s) / n) ** 2))
    p = np.where(t < pft(0.0, n), 0.0, np.where(t > pft(1.0, n), 1.0, p))
    return np.asarray(p)


def harmonic_mean(n: npt.ArrayLike) -> float:
    """Harmonic mean of the study sizes, the n Miller's back-transformation of a pooled value uses.

    As metafor's ``transf.ipft.hm`` (Miller 1978).
    """
    m = np.asarray(n, dtype=np.float64)
    return float(1 / np.mean(1 / m))


def back_transform(y: npt.ArrayLike, measure: str, n_hm: float) -> FloatArray:
    """A value on the analysis scale as a proportion (expit, or Miller's inverse at n_hm)."""
    if measure == "ft":
        return ipft(y, n_hm)
    return np.asarray(special.expit(np.asarray(y, dtype=np.float64)))


# --- the random-effects model (weighted least squares with τ²) ------------------------------


def _design(k: int, moderator: FloatArray | None) -> FloatArray:
    column = np.ones((k, 1))
    return column if moderator is None else np.column_stack([column, moderator])


def _projection(v: FloatArray, x: FloatArray, tau2: float) -> FloatArray:
    """P = W − W X (X'WX)⁻¹ X' W with W = diag 1/(v + τ²)."""
    w = 1 / (v + tau2)
    wx = x * w[:, None]
    return np.diag(w) - wx @ np.linalg.solve(x.T @ wx, wx.T)


def _q(y: FloatArray, v: FloatArray, x: FloatArray, tau2: float) -> float:
    """Generalised Q: the weighted residual sum of squares y'P y at τ²."""
    return float(y @ _projection(v, x, tau2) @ y)


def _root(f: Callable[[float], float], target: float, start: float = 0.0) -> float:
    """The τ² ≥ start where a decreasing function of τ² reaches target (bracketed by doubling)."""
    upper = max(1.0, start * 2)
    while f(upper) > target:
        upper *= 2
        if upper > 1e12:
            raise ArithmeticError("τ² search did not bracket a root")
    return float(optimize.brentq(lambda t: f(t) - target, start, upper, xtol=_TOL, rtol=_TOL))


def tau2_estimate(y: FloatArray, v: FloatArray, x: FloatArray, method: TauMethod) -> float:
    """Between-study variance τ² (truncated at 0).

    - ``"DL"``: DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials
      1986;7:177-188; with moderators the generalised form (Q_E − (k − p)) / tr P₀ of Raudenbush
      SW. Analyzing effect sizes: random-effects models. In: Cooper H et al., eds. The
      Handbook of Research Synthesis and Meta-Analysis, 2nd ed. 2009:295-315.
    - ``"REML"``: root of the restricted-likelihood score y'PPy − tr P = 0 (Viechtbauer W.
      Bias and efficiency of meta-analytic variance estimators in the random-effects model.
      J Educ Behav Stat 2005;30:261-293).
    - ``"PM"``: Paule RC, Mandel J. Consensus values and weighting factors. J Res Natl Bur
      Stand 1982;87:377-385: the τ² at which the generalised Q equals k − p.
    """
    k, p = int(x.shape[0]), int(x.shape[1])
    if method == "DL":
        p0 = _projection(v, x, 0.0)
        return max(0.0, (float(y @ p0 @ y) - (k - p)) / float(np.trace(p0)))
    if method == "PM":
        if _q(y, v, x, 0.0) <= k - p:
            return 0.0
        return _root(lambda t: _q(y, v, x, t), k - p)
    if method == "REML":

        def score(t: float) -> float:
            projection = _projection(v, x, t)
            py = projection @ y
            return float(py @ py - np.trace(projection))

        if score(0.0) <= 0:
            return 0.0
        # The score is positive below the root and negative above it.
        return _root(lambda t: score(t) + 1.0, 1.0)
    raise ValueError(f"unknown τ² method {method!r}; expected DL, REML or PM")


def q_profile_interval(
    y: FloatArray, v: FloatArray, x: FloatArray, level: float = 0.95
) -> tuple[float, float]:
    """Confidence interval of τ² by the Q-profile method, as metafor's ``confint``.

    The bounds are the τ² where the generalised Q equals the upper and lower α/2 quantiles of
    χ²(k − p), each 0 when Q(0) is already below it (Viechtbauer W. Confidence intervals for
    the amount of heterogeneity in meta-analysis. Stat Med 2007;26:37-52).
    """
    k, p = int(x.shape[0]), int(x.shape[1])
    alpha = 1 - level
    upper_q = float(stats.chi2.ppf(1 - alpha / 2, k - p))
    lower_q = float(stats.chi2.ppf(alpha / 2, k - p))
    q0 = _q(y, v, x, 0.0)
    low = 0.0 if q0 < upper_q else _root(lambda t: _q(y, v, x, t), upper_q)
    high = 0.0 if q0 < lower_q else _root(lambda t: _q(y, v, x, t), lower_q)
    return low, high


def typical_variance(v: FloatArray, x: FloatArray) -> float:
    """The 'typical' within-study variance s² = (k − p) / tr P₀ behind I² (Higgins JPT,
    Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med 2002;21:1539-1558);
    without moderators (k − 1) Σw / ((Σw)² − Σw²)."""
    k, p = int(x.shape[0]), int(x.shape[1])
    return (k - p) / float(np.trace(_projection(v, x, 0.0)))


@dataclass(frozen=True)
class Pooled:
    """A pooled estimate on the analysis scale and as a proportion, with heterogeneity."""

    measure: str
    method: str
    k: int
    estimate: float  # analysis scale (logit or double arcsine)
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    proportion: float
    proportion_ci_low: float
    proportion_ci_high: float
    proportion_pi_low: float
    proportion_pi_high: float
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    i2: float  # percent
    i2_ci_low: float
    i2_ci_high: float
    q: float
    q_df: int
    q_p: float
    hartung_knapp: bool
    weights: FloatArray  # percent, per study
    n_harmonic: float


def _interval_crit(hartung_knapp: bool, df: int, level: float) -> float:
    if hartung_knapp:
        return float(stats.t.ppf(0.5 + level / 2, df))
    return float(stats.norm.ppf(0.5 + level / 2))


def pool(
    studies: Studies,
    *,
    measure: Measure = "logit",
    method: TauMethod = "REML",
    hartung_knapp: bool = False,
    level: float = 0.95,
) -> Pooled:
    """Random-effects pooled proportion with τ², I² (Q-profile CIs), Q and prediction interval.

    The estimate is Σ w_i y_i / Σ w_i with w_i = 1/(v_i + τ²) and SE (Σ w_i)^(-½); with
    Hartung–Knapp the variance is multiplied by Σ w_i (y_i − μ̂)² / (k − 1) and intervals use
    t(k − 1) (Hartung J, Knapp G. On tests of the overall treatment effect in meta-analysis
    with normally distributed responses. Stat Med 2001;20:1771-1782), untruncated as metafor's
    ``test="knha"``. Q is Cochran's Q with k − 1 df (Cochran WG. The combination of estimates
    from different experiments. Biometrics 1954;10:101-129). The prediction interval is
    μ̂ ± c √(SE² + τ²), c the normal (t(k − 1) with Hartung–Knapp) quantile, as metafor's
    ``predict`` (Riley RD, Higgins JPT, Deeks JJ. Interpretation of random effects
    meta-analyses. BMJ 2011;342:d549). I² = τ² / (τ² + s²) with s² from `typical_variance`,
    and its interval from the τ² interval. Logit results are back-transformed by expit, double
    arcsine results by Miller's inverse at the harmonic mean of the study sizes (`ipft`).
    """
    k = len(studies.labels)
    if k < 2:
        raise ValueError(f"a meta-analysis needs at least 2 studies, got {k}")
    y, v = effect_sizes(studies.events, studies.n, measure)
    x = _design(k, None)
    tau2 = tau2_estimate(y, v, x, method)
    w = 1 / (v + tau2)
    estimate = float(np.sum(w * y) / np.sum(w))
    variance = float(1 / np.sum(w))
    if hartung_knapp:
        variance *= float(np.sum(w * (y - estimate) ** 2)) / (k - 1)
    se = math.sqrt(variance)
    crit = _interval_crit(hartung_knapp, k - 1, level)
    q = _q(y, v, x, 0.0)
    tau2_low, tau2_high = q_profile_interval(y, v, x, level)
    s2 = typical_variance(v, x)
    n_hm = harmonic_mean(studies.n)
    ci = (estimate - crit * se, estimate + crit * se)
    pi = (
        estimate - crit * math.sqrt(variance + tau2),
        estimate + crit * math.sqrt(variance + tau2),
    )
    back = back_transform(np.array([estimate, *ci, *pi]), measure, n_hm)
    return Pooled(
        measure=measure,
        method=method,
        k=k,
        estimate=estimate,
        se=se,
        ci_low=ci[0],
        ci_high=ci[1],
        pi_low=pi[0],
        pi_high=pi[1],
        proportion=float(back[0]),
        proportion_ci_low=float(back[1]),
        proportion_ci_high=float(back[2]),
        proportion_pi_low=float(back[3]),
        proportion_pi_high=float(back[4]),
        tau2=tau2,
        tau2_ci_low=tau2_low,
        tau2_ci_high=tau2_high,
        i2=100 * tau2 / (tau2 + s2),
        i2_ci_low=100 * tau2_low / (tau2_low + s2),
        i2_ci_high=100 * tau2_high / (tau2_high + s2),
        q=q,
        q_df=k - 1,
        q_p=float(stats.chi2.sf(q, k - 1)),
        hartung_knapp=hartung_knapp,
        weights=100 * w / np.sum(w),
        n_harmonic=n_hm,
    )


# --- GLMM: random-intercept logistic model ----------------------------------------------------


def _glmm_loglik(
    mu: float, log_tau: float, x: FloatArray, n: FloatArray, nodes: FloatArray, wts: FloatArray
) -> float:
    """Marginal log-likelihood Σ log ∫ Bin(x_i; n_i, expit(μ + τb)) φ(b) db by adaptive
    Gauss–Hermite quadrature centred at each study's conditional mode (Pinheiro JC, Bates DM.
    Approximations to the log-likelihood function in the nonlinear mixed-effects model. J Comput
    Graph Stat 1995;4:12-35), as lme4's ``glmer(nAGQ = q)``; binomial coefficients included."""
    tau = math.exp(log_tau)
    total = 0.0
    for xi, ni in zip(x, n, strict=True):
        # The mode of h(b) = x(μ+τb) − n log(1 + e^(μ+τb)) − b²/2: its derivative decreases
        # strictly and lies within |b| ≤ τn, so a bracketing root finder always converges
        # (plain Newton overshoots when τ is large and a study is at 0 or n).
        bound = tau * ni + 1

        def slope(b: float, xi: float = xi, ni: float = ni) -> float:
            return float(tau * (xi - ni * special.expit(mu + tau * b)) - b)

        b = float(optimize.brentq(slope, -bound, bound, xtol=1e-14, rtol=1e-15))
        p = special.expit(mu + tau * b)
        scale = 1 / math.sqrt(tau * tau * ni * p * (1 - p) + 1)
        points = b + math.sqrt(2) * scale * nodes
        eta = mu + tau * points
        log_f = xi * eta - ni * np.logaddexp(0, eta) - points**2 / 2 - 0.5 * math.log(2 * math.pi)
        log_terms = log_f + nodes**2 + np.log(wts)
        top = float(np.max(log_terms))
        total += math.log(math.sqrt(2) * scale) + top + math.log(np.sum(np.exp(log_terms - top)))
        total += float(
            special.gammaln(ni + 1) - special.gammaln(xi + 1) - special.gammaln(ni - xi + 1)
        )
    return total


@dataclass(frozen=True)
class GlmmFit:
    """Maximum-likelihood random-intercept logistic model of the study proportions."""

    k: int
    estimate: float  # logit
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    proportion: float
    proportion_ci_low: float
    proportion_ci_high: float
    proportion_pi_low: float
    proportion_pi_high: float
    tau2: float
    i2: float
    loglik: float
    quadrature_points: int


def glmm_loglik(studies: Studies, mu: float, tau2: float, quadrature_points: int = 7) -> float:
    """The GLMM marginal log-likelihood at (μ, τ²); τ² > 0."""
    nodes, wts = np.polynomial.hermite.hermgauss(quadrature_points)
    return _glmm_loglik(mu, 0.5 * math.log(tau2), studies.events, studies.n, nodes, wts)


def pool_glmm(studies: Studies, *, quadrature_points: int = 7, level: float = 0.95) -> GlmmFit:
    """Pooled proportion from the random-intercept logistic model, fitted by maximum likelihood.

    x_i ~ Binomial(n_i, expit(μ + u_i)), u_i ~ N(0, τ²) (Stijnen T, Hamza TH, Özdemir P.
    Random effects meta-analysis of event outcome in the framework of the generalized linear
    mixed model. Stat Med 2010;29:3046-3067); metafor's ``rma.glmm(measure="PLO")`` with its
    default 7-point adaptive quadrature. No continuity correction is needed at 0 or n. The SE
    of μ̂ comes from the observed information of the profile of μ and log τ; the prediction
    interval is μ̂ ± z √(SE² + τ²); I² uses the typical variance of the logit effect sizes.
    """
    k = len(studies.labels)
    if k < 2:
        raise ValueError(f"a meta-analysis needs at least 2 studies, got {k}")
    nodes, wts = np.polynomial.hermite.hermgauss(quadrature_points)

    def negative(theta: FloatArray) -> float:
        return -_glmm_loglik(theta[0], theta[1], studies.events, studies.n, nodes, wts)

    y, v = effect_sizes(studies.events, studies.n, "logit")
    start = np.array([float(np.mean(y)), 0.5 * math.log(max(float(np.var(y)), 0.01))])
    fit = optimize.minimize(negative, start, method="BFGS", options={"gtol": 1e-9})
    fit = optimize.minimize(
        negative,
        fit.x,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000},
    )
    mu, log_tau = float(fit.x[0]), float(fit.x[1])
    hessian = _numeric_hessian(negative, np.array([mu, log_tau]))
    se = math.sqrt(float(np.linalg.inv(hessian)[0, 0]))
    tau2 = math.exp(2 * log_tau)
    z = float(stats.norm.ppf(0.5 + level / 2))
    ci = (mu - z * se, mu + z * se)
    pi = (mu - z * math.sqrt(se * se + tau2), mu + z * math.sqrt(se * se + tau2))
    s2 = typical_variance(v, _design(k, None))
    back = special.expit(np.array([mu, *ci, *pi]))
    return GlmmFit(
        k=k,
        estimate=mu,
        se=se,
        ci_low=ci[0],
        ci_high=ci[1],
        pi_low=pi[0],
        pi_high=pi[1],
        proportion=float(back[0]),
        proportion_ci_low=float(back[1]),
        proportion_ci_high=float(back[2]),
        proportion_pi_low=float(back[3]),
        proportion_pi_high=float(back[4]),
        tau2=tau2,
        i2=100 * tau2 / (tau2 + s2),
        loglik=-float(fit.fun),
        quadrature_points=quadrature_points,
    )


def _numeric_hessian(
    f: Callable[[FloatArray], float], at: FloatArray, step: float = 1e-4
) -> FloatArray:
    """Central-difference Hessian of a scalar function of a vector."""
    d = len(at)
    hessian = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            e_i = np.eye(d)[i] * step
            e_j = np.eye(d)[j] * step
            hessian[i, j] = (
                f(at + e_i + e_j) - f(at + e_i - e_j) - f(at - e_i + e_j) + f(at - e_i - e_j)
            ) / (4 * step * step)
    return hessian


# --- subgroups, meta-regression, small-study effects ----------------------------------------


@dataclass(frozen=True)
class Subgroups:
    """A pooled estimate per level of a moderator and the test of differences between them."""

    moderator: str
    levels: list[str]
    pooled: list[Pooled]
    q_between: float | None
    df_between: int
    p_between: float | None


def subgroups(
    studies: Studies,
    moderator: str,
    *,
    measure: Measure = "logit",
    method: TauMethod = "REML",
    hartung_knapp: bool = False,
    level: float = 0.95,
    test_between: bool = True,
) -> Subgroups:
    """Pool within each level of a moderator (each with its own τ²) and test between levels.

    Q_between = Σ_g (μ̂_g − μ̄)² / SE_g², μ̄ the inverse-variance mean of the subgroup
    estimates, on G − 1 df (Borenstein M, Hedges LV, Higgins JPT, Rothstein HR. Introduction to
    Meta-Analysis. Wiley 2009, ch. 19, separate τ² per subgroup); metafor's fixed-effect
    ``rma`` of the subgroup estimates gives the same Q. A level with fewer than 2 studies is
    left out. ``test_between=False`` leaves the test out, for subgroups whose participants
    overlap (the same cohorts under several definitions), where it is not valid.
    """
    if moderator not in studies.moderators.columns:
        raise ValueError(f"moderator {moderator!r} is not a column of the studies")
    values = studies.moderators[moderator].cast(pl.String).to_list()
    levels = [lvl for lvl in dict.fromkeys(values) if lvl is not None]
    kept, fits = [], []
    for lvl in levels:
        mask = np.array([value == lvl for value in values])
        if mask.sum() < 2:
            continue
        kept.append(lvl)
        fits.append(
            pool(
                studies.subset(mask),
                measure=measure,
                method=method,
                hartung_knapp=hartung_knapp,
                level=level,
            )
        )
    q_between: float | None = None
    p_between: float | None = None
    if test_between and len(fits) >= 2:
        mu = np.array([f.estimate for f in fits])
        w = 1 / np.array([f.se for f in fits]) ** 2
        q_between = float(np.sum(w * (mu - np.sum(w * mu) / np.sum(w)) ** 2))
        p_between = float(stats.chi2.sf(q_between, len(fits) - 1))
    return Subgroups(moderator, kept, fits, q_between, len(fits) - 1, p_between)


@dataclass(frozen=True)
class MetaRegression:
    """Mixed-effects meta-regression on one continuous moderator."""

    moderator: str
    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    slope_p: float
    tau2: float
    i2: float
    qe: float
    qe_df: int
    qe_p: float
    qm: float
    qm_p: float


def meta_regression(
    studies: Studies,
    moderator: str,
    *,
    measure: Measure = "logit",
    method: TauMethod = "REML",
    hartung_knapp: bool = False,
) -> MetaRegression:
    """Regress the transformed proportions on a continuous moderator with residual τ².

    Weighted least squares with weights 1/(v_i + τ²), τ² estimated from the residuals
    (Thompson SG, Higgins JPT. How should meta-regression analyses be undertaken and
    interpreted? Stat Med 2002;21:1559-1573), as metafor's ``rma(mods = ~ x)``: QE tests
    residual heterogeneity (χ², k − 2 df); QM = slope² / SE² tests the moderator (χ², 1 df, or
    F(1, k − 2) with Hartung–Knapp, whose SEs are scaled by y'Py / (k − 2)).
    """
    if moderator not in studies.moderators.columns:
        raise ValueError(f"moderator {moderator!r} is not a column of the studies")
    values = studies.moderators[moderator].cast(pl.Float64, strict=False)
    if values.null_count():
        raise ValueError(f"moderator {moderator!r}: every study needs a numeric value")
    k = len(studies.labels)
    if k < 3:
        raise ValueError(f"meta-regression needs at least 3 studies, got {k}")
    y, v = effect_sizes(studies.events, studies.n, measure)
    x = _design(k, values.to_numpy().astype(np.float64))
    tau2 = tau2_estimate(y, v, x, method)
    w = 1 / (v + tau2)
    xtwx = x.T @ (x * w[:, None])
    cov = np.linalg.inv(xtwx)
    beta = cov @ (x.T @ (w * y))
    if hartung_knapp:
        cov = cov * _q(y, v, x, tau2) / (k - 2)
    qm = float(beta[1] ** 2 / cov[1, 1])
    qm_p = float(stats.f.sf(qm, 1, k - 2) if hartung_knapp else stats.chi2.sf(qm, 1))
    qe = _q(y, v, x, 0.0)
    s2 = typical_variance(v, x)
    return MetaRegression(
        moderator=moderator,
        intercept=float(beta[0]),
        slope=float(beta[1]),
        intercept_se=math.sqrt(cov[0, 0]),
        slope_se=math.sqrt(cov[1, 1]),
        slope_p=qm_p,
        tau2=tau2,
        i2=100 * tau2 / (tau2 + s2),
        qe=qe,
        qe_df=k - 2,
        qe_p=float(stats.chi2.sf(qe, k - 2)),
        qm=qm,
        qm_p=qm_p,
    )


@dataclass(frozen=True)
class Egger:
    """Egger's regression test for funnel-plot asymmetry."""

    intercept: float  # the limit estimate as SE → 0
    slope: float  # the asymmetry coefficient on SE
    slope_se: float
    t: float
    df: int
    p: float


def egger_test(studies: Studies, *, measure: Measure = "logit") -> Egger:
    """Egger's test: weighted regression of y_i on SE_i (weights 1/v_i), t test of the slope.

    Equivalent to regressing y_i/SE_i on 1/SE_i and testing the intercept (Egger M, Davey Smith
    G, Schneider M, Minder C. Bias in meta-analysis detected by a simple, graphical test. BMJ
    1997;315:629-634); metafor's ``regtest(model = "lm")``.
    """
    k = len(studies.labels)
    if k < 3:
        raise ValueError(f"Egger's test needs at least 3 studies, got {k}")
    y, v = effect_sizes(studies.events, studies.n, measure)
    se = np.sqrt(v)
    x = _design(k, se)
    w = 1 / v
    xtwx = x.T @ (x * w[:, None])
    beta = np.linalg.solve(xtwx, x.T @ (w * y))
    residual = y - x @ beta
    sigma2 = float(np.sum(w * residual**2)) / (k - 2)
    cov = np.linalg.inv(xtwx) * sigma2
    slope_se = math.sqrt(cov[1, 1])
    t = float(beta[1] / slope_se)
    return Egger(
        float(beta[0]), float(beta[1]), slope_se, t, k - 2, float(2 * stats.t.sf(abs(t), k - 2))
    )


# --- inputs ---------------------------------------------------------------------------------

STUDY, EVENTS, TOTAL = "study", "events", "n"


def studies_from_frame(
    frame: pl.DataFrame, *, study: str = STUDY, events: str = EVENTS, n: str = TOTAL
) -> Studies:
    """Studies from a table with a label, events and total per row; other columns moderate.

    Instead of events and n a row may give ``prevalence`` with ``ci_low`` and ``ci_high``
    (proportions or percent, 95%): n is then the effective size p(1 − p)/SE² with SE = (high −
    low)/(2·1.96), and events = p·n, the Wald-interval inversion a meta-analyst does by hand;
    such rows are flagged in the ``derived_counts`` moderator column.
    """
    if study not in frame.columns:
        raise ValueError(f"the table needs a {study!r} column (study labels)")
    frame = frame.with_columns(pl.col(study).cast(pl.String))
    has_counts = events in frame.columns and n in frame.columns
    has_prevalence = {"prevalence", "ci_low", "ci_high"} <= set(frame.columns)
    if not has_counts and not has_prevalence:
        raise ValueError(
            f"the table needs {events!r} and {n!r} columns, or prevalence, ci_low and ci_high"
        )
    x = np.full(frame.height, np.nan)
    m = np.full(frame.height, np.nan)
    derived = np.zeros(frame.height, dtype=bool)
    if has_counts:
        x = frame[events].cast(pl.Float64).fill_null(np.nan).to_numpy().copy()
        m = frame[n].cast(pl.Float64).fill_null(np.nan).to_numpy().copy()
    if has_prevalence:
        p, low, high = (
            frame[c].cast(pl.Float64).to_numpy() for c in ("prevalence", "ci_low", "ci_high")
        )
        scale = 100.0 if np.nanmax(np.concatenate([p, high])) > 1 else 1.0
        p, low, high = p / scale, low / scale, high / scale
        se = (high - low) / (2 * stats.norm.ppf(0.975))
        with np.errstate(divide="ignore", invalid="ignore"):
            effective = p * (1 - p) / se**2
        fill = np.isnan(m) & np.isfinite(effective)
        m = np.where(fill, effective, m)
        x = np.where(fill, p * effective, x)
        derived = fill
    problems = [
        f"row {i + 1} ({frame[study][i]!r}): no events/n and no prevalence with CI"
        for i in range(frame.height)
        if not (np.isfinite(x[i]) and np.isfinite(m[i]))
    ]
    if problems:
        raise ValueError("; ".join(problems))
    skip = {study, events, n}
    moderators = frame.drop([c for c in frame.columns if c in skip])
    if has_prevalence:
        moderators = moderators.with_columns(derived_counts=pl.Series(derived))
    return Studies(frame[study].to_list(), x, m, moderators)


def read_studies(path: Path) -> Studies:
    """Studies from a CSV/Parquet table, or from `sarcokit cohort` summary folders.

    A folder is a cohort's ``*.summary`` folder: its ``prevalence.csv`` gives one study per
    definition, labelled by the folder name, with the ``definition`` moderator.
    """
    if path.is_dir():
        return studies_from_cohorts([path])
    if path.suffix.lower() == ".parquet":
        return studies_from_frame(pl.read_parquet(path))
    return studies_from_frame(pl.read_csv(path, infer_schema_length=10000))


def studies_from_cohorts(folders: Sequence[Path]) -> Studies:
    """One study per cohort and definition from `sarcokit cohort` summary folders.

    Each folder's ``prevalence.csv`` (definition, n evaluable, events) gives the counts; the
    study label is the folder name without ``.summary``.
    """
    parts = []
    for folder in folders:
        table = folder / "prevalence.csv"
        if not table.exists():
            raise ValueError(
                f"{folder}: no prevalence.csv (is it a sarcokit cohort .summary folder?)"
            )
        label = folder.name.removesuffix(".summary")
        counts = pl.read_csv(table).select("definition", "n", "events")
        parts.append(counts.with_columns(study=pl.lit(label)))
    frame = pl.concat(parts).filter(pl.col("n") > 0).select("study", "definition", "events", "n")
    return studies_from_frame(frame)
