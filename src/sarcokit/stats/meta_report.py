"""A meta-analysis run end to end: pooled estimates per subgroup, result table, forest and funnel.

The numbers come from `sarcokit.stats.meta`; this module arranges them into one table (a row
per study and per pooled estimate) and draws them in the style of the cohort report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy import special, stats

from sarcokit.stats.meta import (
    Egger,
    GlmmFit,
    Measure,
    Pooled,
    Studies,
    TauMethod,
    effect_sizes,
    egger_test,
    ipft,
    pool,
    pool_glmm,
)

AnyMeasure = Literal["logit", "ft", "glmm"]
Fit = Pooled | GlmmFit

# Colours of the cohort report (its bars are #4a7bb7, its text #1d2733).
_BLUE, _INK, _GREY = "#4a7bb7", "#1d2733", "#8a97a6"


@dataclass(frozen=True)
class Group:
    """The studies of one subgroup (or all of them) and their pooled estimate."""

    label: str  # "all studies" for the overall analysis
    studies: Studies
    fit: Fit


@dataclass(frozen=True)
class MetaAnalysis:
    """Every pooled estimate of a run, the between-subgroup test and Egger's test."""

    measure: AnyMeasure
    method: str
    hartung_knapp: bool
    level: float
    by: str | None
    groups: list[Group]
    overall: Group | None
    q_between: float | None
    df_between: int | None
    p_between: float | None
    egger: Egger | None
    note: str


def _fit(
    studies: Studies, measure: AnyMeasure, method: TauMethod, hartung_knapp: bool, level: float
) -> Fit:
    if measure == "glmm":
        return pool_glmm(studies, level=level)
    return pool(studies, measure=measure, method=method, hartung_knapp=hartung_knapp, level=level)


def analyse(
    studies: Studies,
    *,
    measure: AnyMeasure = "logit",
    method: TauMethod = "REML",
    hartung_knapp: bool = False,
    by: str | None = None,
    level: float = 0.95,
) -> MetaAnalysis:
    """Pool all studies, or each subgroup of ``by`` with the between-subgroup Q test.

    When the same study label appears in several subgroups (one cohort under several
    definitions) the subgroups share participants: neither an overall pooled estimate nor the
    between-subgroup test is valid then, and both are left out with a note saying why.
    Egger's test is run on the overall analysis when it has at least 10 studies (Sterne JAC et
    al. Recommendations for examining and interpreting funnel plot asymmetry in meta-analyses
    of randomised controlled trials. BMJ 2011;343:d4002).
    """
    notes: list[str] = []
    groups: list[Group] = []
    overlapping = False
    if by is not None:
        if by not in studies.moderators.columns:
            known = ", ".join(studies.moderators.columns) or "none"
            raise ValueError(f"--by {by!r}: not a column of the studies (columns: {known})")
        values = studies.moderators[by].cast(pl.String).to_list()
        levels = [v for v in dict.fromkeys(values) if v is not None]
        seen: dict[str, str] = {}
        for label, value in zip(studies.labels, values, strict=True):
            if value is not None and seen.setdefault(label, value) != value:
                overlapping = True
        for level_name in levels:
            mask = np.array([v == level_name for v in values])
            if mask.sum() < 2:
                notes.append(f"{by} = {level_name}: a single study, not pooled")
                continue
            subset = studies.subset(mask)
            groups.append(
                Group(level_name, subset, _fit(subset, measure, method, hartung_knapp, level))
            )
    overall: Group | None = None
    if by is None or not overlapping:
        overall = Group(
            "all studies", studies, _fit(studies, measure, method, hartung_knapp, level)
        )
    else:
        notes.append(
            f"the same studies appear under several {by} values, so their participants overlap: "
            "no overall estimate and no between-subgroup test"
        )
    q_between = df_between = p_between = None
    if len(groups) >= 2 and not overlapping:
        mu = np.array([g.fit.estimate for g in groups])
        w = 1 / np.array([g.fit.se for g in groups]) ** 2
        q_between = float(np.sum(w * (mu - np.sum(w * mu) / np.sum(w)) ** 2))
        df_between = len(groups) - 1
        p_between = float(stats.chi2.sf(q_between, df_between))
    egger = None
    if overall is not None and len(studies.labels) >= 10:
        egger = egger_test(studies, measure="ft" if measure == "ft" else "logit")
    return MetaAnalysis(
        measure=measure,
        method="ML (GLMM)" if measure == "glmm" else method,
        hartung_knapp=hartung_knapp and measure != "glmm",
        level=level,
        by=by,
        groups=groups,
        overall=overall,
        q_between=q_between,
        df_between=df_between,
        p_between=p_between,
        egger=egger,
        note="; ".join(notes),
    )


def study_intervals(
    studies: Studies, measure: AnyMeasure, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each study's proportion and its interval on the analysis scale, back-transformed.

    Logit (and GLMM) intervals are expit(y ± z√v); double arcsine ones use Miller's inverse at
    the study's own n, as metafor's ``forest(..., transf = transf.ipft, targs = ni)``.
    """
    z = float(stats.norm.ppf(0.5 + level / 2))
    y, v = effect_sizes(studies.events, studies.n, "ft" if measure == "ft" else "logit")
    low, high = y - z * np.sqrt(v), y + z * np.sqrt(v)
    estimate = studies.events / studies.n
    if measure == "ft":
        lows = np.array([ipft(lo, n)[0] for lo, n in zip(low, studies.n, strict=True)])
        highs = np.array([ipft(hi, n)[0] for hi, n in zip(high, studies.n, strict=True)])
        return estimate, lows, highs
    return estimate, special.expit(low), special.expit(high)


def _pooled_row(analysis: MetaAnalysis, group: Group, subgroup: str | None) -> dict[str, Any]:
    fit = group.fit
    row: dict[str, Any] = {
        "row": "pooled",
        "subgroup": subgroup,
        "study": group.label,
        "k": fit.k,
        "events": float(np.sum(group.studies.events)),
        "n": float(np.sum(group.studies.n)),
        "proportion": fit.proportion,
        "ci_low": fit.proportion_ci_low,
        "ci_high": fit.proportion_ci_high,
        "pi_low": fit.proportion_pi_low,
        "pi_high": fit.proportion_pi_high,
        "weight_percent": None,
        "estimate": fit.estimate,
        "se": fit.se,
        "tau2": fit.tau2,
        "i2_percent": fit.i2,
        "measure": analysis.measure,
        "method": analysis.method + (" + Hartung-Knapp" if analysis.hartung_knapp else ""),
    }
    if isinstance(fit, Pooled):
        row |= {
            "tau2_ci_low": fit.tau2_ci_low,
            "tau2_ci_high": fit.tau2_ci_high,
            "i2_ci_low": fit.i2_ci_low,
            "i2_ci_high": fit.i2_ci_high,
            "q": fit.q,
            "q_df": fit.q_df,
            "q_p": fit.q_p,
        }
    return row


def result_table(analysis: MetaAnalysis) -> pl.DataFrame:
    """One row per study (with its weight in its pool) and per pooled estimate; then the
    between-subgroup test and Egger's test as rows of their own."""
    rows: list[dict[str, Any]] = []
    parts = [(g, g.label) for g in analysis.groups]
    if analysis.overall is not None:
        parts.append((analysis.overall, None))  # type: ignore[arg-type]
    for group, subgroup in parts:
        if subgroup is None and analysis.groups:
            continue  # the studies are already listed in their subgroups
        estimate, low, high = study_intervals(group.studies, analysis.measure, analysis.level)
        weights = group.fit.weights if isinstance(group.fit, Pooled) else None
        for i, label in enumerate(group.studies.labels):
            rows.append(
                {
                    "row": "study",
                    "subgroup": subgroup,
                    "study": label,
                    "k": 1,
                    "events": float(group.studies.events[i]),
                    "n": float(group.studies.n[i]),
                    "proportion": float(estimate[i]),
                    "ci_low": float(low[i]),
                    "ci_high": float(high[i]),
                    "weight_percent": None if weights is None else float(weights[i]),
                }
            )
    for group in analysis.groups:
        rows.append(_pooled_row(analysis, group, group.label))
    if analysis.overall is not None:
        rows.append(_pooled_row(analysis, analysis.overall, None))
    if analysis.q_between is not None:
        rows.append(
            {
                "row": "between_subgroups",
                "study": f"between {analysis.by} subgroups",
                "q": analysis.q_between,
                "q_df": analysis.df_between,
                "q_p": analysis.p_between,
            }
        )
    if analysis.egger is not None:
        rows.append(
            {
                "row": "egger_test",
                "study": "Egger's test (slope on SE)",
                "estimate": analysis.egger.slope,
                "se": analysis.egger.slope_se,
                "q": analysis.egger.t,
                "q_df": analysis.egger.df,
                "q_p": analysis.egger.p,
            }
        )
    schema = {
        "row": pl.String,
        "subgroup": pl.String,
        "study": pl.String,
        "k": pl.Int64,
        "events": pl.Float64,
        "n": pl.Float64,
        "proportion": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "pi_low": pl.Float64,
        "pi_high": pl.Float64,
        "weight_percent": pl.Float64,
        "estimate": pl.Float64,
        "se": pl.Float64,
        "tau2": pl.Float64,
        "tau2_ci_low": pl.Float64,
        "tau2_ci_high": pl.Float64,
        "i2_percent": pl.Float64,
        "i2_ci_low": pl.Float64,
        "i2_ci_high": pl.Float64,
        "q": pl.Float64,
        "q_df": pl.Int64,
        "q_p": pl.Float64,
        "measure": pl.String,
        "method": pl.String,
    }
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _heterogeneity(fit: Fit) -> str:
    text = f"I² = {fit.i2:.0f}%, τ² = {fit.tau2:.3f}"
    if isinstance(fit, Pooled):
        text += f", Q = {fit.q:.1f} (df {fit.q_df}, p {_p(fit.q_p)})"
    return text


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def forest_plot(analysis: MetaAnalysis, *, title: str | None = None) -> Any:
    """A forest plot: each study's proportion and interval (square sized by weight), each
    pooled estimate as a diamond with its prediction interval, heterogeneity beneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    entries: list[tuple[str, Any]] = []  # (kind, payload) from top to bottom
    sections = [(g, True) for g in analysis.groups]
    if analysis.overall is not None:
        sections.append((analysis.overall, not analysis.groups))
    for group, list_studies in sections:
        if analysis.groups and group is not analysis.overall:
            entries.append(("header", f"{analysis.by}: {group.label}"))
        if list_studies:
            estimate, low, high = study_intervals(group.studies, analysis.measure, analysis.level)
            weights = group.fit.weights if isinstance(group.fit, Pooled) else None
            for i, label in enumerate(group.studies.labels):
                entries.append(
                    (
                        "study",
                        (
                            label,
                            group.studies.events[i],
                            group.studies.n[i],
                            estimate[i],
                            low[i],
                            high[i],
                            None if weights is None else weights[i],
                        ),
                    )
                )
        entries.append(("pooled", group))
        entries.append(("gap", None))
    height = 0.32 * len(entries) + 1.6
    figure, (left, axis, right) = plt.subplots(
        1,
        3,
        figsize=(11, height),
        sharey=True,
        gridspec_kw={"width_ratios": [3.2, 4.5, 3.0], "wspace": 0.02},
    )
    rows = len(entries)
    level = round(100 * analysis.level)
    for position, (kind, payload) in enumerate(entries):
        y = rows - position
        if kind == "header":
            left.text(0, y, payload, fontweight="bold", va="center", color=_INK)
        elif kind == "study":
            label, events, n, p, lo, hi, weight = payload
            left.text(0, y, label, va="center", color=_INK, fontsize=9)
            left.text(0.98, y, f"{events:g}/{n:g}", va="center", ha="right", fontsize=9)
            axis.plot([100 * lo, 100 * hi], [y, y], color=_INK, linewidth=1)
            size = 4 + (0 if weight is None else 12 * math.sqrt(weight / 100))
            axis.plot(100 * p, y, marker="s", color=_BLUE, markersize=size, linestyle="none")
            text = f"{_percent(p)} [{_percent(lo)}, {_percent(hi)}]"
            right.text(0.02, y, text, va="center", fontsize=9)
            if weight is not None:
                right.text(0.98, y, f"{weight:.1f}%", va="center", ha="right", fontsize=9)
        elif kind == "pooled":
            group = payload
            fit = group.fit
            name = "Overall" if group is analysis.overall else f"Subtotal {group.label}"
            left.text(0, y, f"{name} (k = {fit.k})", va="center", fontweight="bold", fontsize=9)
            left.text(0, y - 0.45, _heterogeneity(fit), va="center", fontsize=7, color=_GREY)
            p, lo, hi = fit.proportion, fit.proportion_ci_low, fit.proportion_ci_high
            axis.add_patch(
                Polygon(
                    [(100 * lo, y), (100 * p, y + 0.3), (100 * hi, y), (100 * p, y - 0.3)],
                    closed=True,
                    color=_INK if group is analysis.overall else _BLUE,
                )
            )
            axis.plot(
                [100 * fit.proportion_pi_low, 100 * fit.proportion_pi_high],
                [y - 0.45, y - 0.45],
                color=_GREY,
                linewidth=2.5,
                solid_capstyle="butt",
            )
            right.text(
                0.02,
                y,
                f"{_percent(p)} [{_percent(lo)}, {_percent(hi)}]",
                va="center",
                fontweight="bold",
                fontsize=9,
            )
            right.text(
                0.02,
                y - 0.45,
                f"PI [{_percent(fit.proportion_pi_low)}, {_percent(fit.proportion_pi_high)}]",
                va="center",
                fontsize=7,
                color=_GREY,
            )
    left.text(0, rows + 1, "Study", fontweight="bold", va="center")
    left.text(0.98, rows + 1, "Events/N", fontweight="bold", va="center", ha="right")
    right.text(0.02, rows + 1, f"% [{level}% CI]", fontweight="bold", va="center")
    if analysis.measure != "glmm":  # the GLMM has no inverse-variance weights
        right.text(0.98, rows + 1, "Weight", fontweight="bold", va="center", ha="right")
    for side in (left, right):
        side.set_xlim(0, 1)
        side.axis("off")
    axis.set_ylim(0, rows + 1.6)
    axis.set_yticks([])
    for spine in ("left", "right", "top"):
        axis.spines[spine].set_visible(False)
    if analysis.measure == "glmm":
        model = "random-intercept logistic GLMM, ML"
    else:
        scale = "logit" if analysis.measure == "logit" else "Freeman–Tukey double arcsine"
        model = f"{scale}, τ² {analysis.method}"
        model += ", Hartung–Knapp" if analysis.hartung_knapp else ""
    axis.set_xlabel(f"proportion, % ({model})")
    axis.grid(axis="x", color="#d8dee6", linewidth=0.6)
    axis.set_xlim(left=0)
    footer = []
    if analysis.q_between is not None and analysis.p_between is not None:
        footer.append(
            f"Test for subgroup differences: Q = {analysis.q_between:.2f}, "
            f"df = {analysis.df_between}, p {_p(analysis.p_between)}"
        )
    if analysis.note:
        footer.append(analysis.note)
    if footer:
        figure.text(0.01, 0.005, "\n".join(footer), fontsize=8, color=_GREY, va="bottom")
    if title:
        figure.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return figure


def funnel_plot(analysis: MetaAnalysis) -> Any:
    """Funnel plot: each study's transformed proportion against its SE, with the pseudo 95%
    region around the overall estimate, and Egger's test when it was run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    group = analysis.overall or (analysis.groups[0] if analysis.groups else None)
    if group is None:
        raise ValueError("no pooled estimate to draw a funnel around")
    scale: Measure = "ft" if analysis.measure == "ft" else "logit"
    y, v = effect_sizes(group.studies.events, group.studies.n, scale)
    se = np.sqrt(v)
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    top = float(se.max()) * 1.05
    centre = group.fit.estimate
    axis.fill(
        [centre - 1.96 * top, centre, centre + 1.96 * top],
        [top, 0, top],
        color="#eef2f7",
        edgecolor=_GREY,
        linestyle=":",
    )
    axis.axvline(centre, color=_INK, linewidth=1)
    axis.scatter(y, se, color=_BLUE, zorder=3)
    axis.set_ylim(top, 0)
    axis.set_ylabel("standard error")
    axis.set_xlabel("double arcsine" if scale == "ft" else "logit of the proportion")
    if analysis.egger is not None:
        axis.set_title(
            f"Egger's test: t = {analysis.egger.t:.2f}, p {_p(analysis.egger.p)}", fontsize=9
        )
    return figure
