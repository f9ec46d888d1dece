"""The cohort report: one self-contained HTML file (figures embedded) that opens offline.

Laid out as a results section is: participant flow (STROBE), what could not be evaluated,
Table 1, prevalence (crude, survey-weighted, age-standardised) overall, by sex and by age band,
agreement, overlap, screening accuracy, and the cut-offs used. Every table is also a CSV in the
summary folder (its name is given under the table). Proportions are shown as percentages.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to PNG bytes

import matplotlib.pyplot as plt
import polars as pl

from sarcokit import __version__
from sarcokit.cohort.outcomes import outcome_section
from sarcokit.cohort.summary import CohortSummary
from sarcokit.cohort.table1 import UNKNOWN
from sarcokit.definitions import definition, definitions_hash
from sarcokit.docs import cutoff_text

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans SC",sans-serif;
margin:2rem auto;max-width:1100px;color:#1d2733;line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #d8dee6;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0 .3rem;font-size:.88rem}
th,td{border:1px solid #d8dee6;padding:.25rem .5rem;text-align:right}
th{background:#f1f4f8}td:first-child,th:first-child{text-align:left}
.meta{color:#5b6b7d}img{max-width:100%}
.note{color:#5b6b7d;font-size:.85rem}.csv{color:#5b6b7d;font-size:.8rem;margin-bottom:1rem}
.lead{font-size:1rem}
.flow{display:flex;flex-direction:column;align-items:flex-start;gap:.2rem;margin:1rem 0}
.step{display:flex;align-items:center;gap:1.2rem}
.box{border:1px solid #9fb0c3;border-radius:6px;padding:.5rem 1rem;background:#f8fafc;
min-width:15rem}
.box b{display:block;font-size:1.3rem}
.side{border:1px dashed #c9a227;background:#fffaf0;border-radius:6px;padding:.4rem .8rem;
font-size:.85rem}
.side ul{margin:.2rem 0 0 1rem;padding:0}
.arrow{margin-left:7rem;color:#5b6b7d;font-size:1.2rem;line-height:1}
.missing{border-left:4px solid #c9a227;background:#fffaf0;padding:.5rem 1rem;margin:.6rem 0}
"""

_HEADERS = {
    "definition": "Definition",
    "n": "Evaluable (n)",
    "events": "With sarcopenia (n)",
    "weighted_n": "Weighted n",
    "group": "Group",
    "category": "Category",
    "scored": "Scored (n)",
    "evaluable": "Evaluable (n)",
    "indeterminate": "Indeterminate (n)",
    "outside_definition_scope": "Outside the definition's scope (n)",
    "definition_a": "Definition A",
    "definition_b": "Definition B",
    "kappa": "Cohen's κ (95% CI)",
    "observed_agreement": "Agreement, %",
    "members": "Sarcopenia under",
    "count": "Rows (n)",
    "tool": "Screening tool",
    "auc": "AUC (95% CI)",
    "variable": "Characteristic",
    "level": "",
    "missing": "Missing (n)",
    "smd": "SMD",
}


def _png(figure: Any, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def _with_ci(estimate: float | None, low: float | None, high: float | None) -> str:
    if estimate is None:
        return "–"
    if low is None or high is None:
        return f"{100 * estimate:.1f}"
    return f"{100 * estimate:.1f} ({100 * low:.1f}–{100 * high:.1f})"


def _table(frame: pl.DataFrame, csv: str | None = None, digits: int = 3) -> str:
    """A frame as an HTML table with plain headers; numbers rounded for reading."""
    head = "".join(f"<th>{html.escape(_HEADERS.get(c, c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = []
        for value in row:
            if isinstance(value, float):
                shown = f"{value:.{digits}f}"
            elif isinstance(value, int):
                shown = f"{value:,}"
            else:
                shown = "" if value is None else str(value)
            cells.append(f"<td>{html.escape(shown)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    if csv:
        table += f"<p class='csv'>Also as CSV: <code>{html.escape(csv)}</code></p>"
    return table


def _ci_expr(estimate: str, low: str, high: str, scale: float = 100) -> pl.Expr:
    """'28.5 (25.1–32.2)' from an estimate and its interval, as percentages."""
    shown = [(scale * pl.col(c)).round(1).cast(pl.String) for c in (estimate, low, high)]
    interval = pl.format("{} ({}–{})", *shown)
    return (
        pl.when(pl.col(estimate).is_null())
        .then(pl.lit("–"))
        .when(pl.col(low).is_null() | pl.col(high).is_null())
        .then(shown[0])
        .otherwise(interval)
    )


def _lead(text: str) -> str:
    return f"<p class='lead'>{html.escape(text)}</p>"


def _prevalence_rows(table: pl.DataFrame, weighted: bool = False) -> pl.DataFrame:
    """Definition, n, events, prevalence % (95% CI): the shape every prevalence table shows."""
    columns: dict[str, list[Any]] = {"Definition": [], "Evaluable (n)": []}
    columns["With sarcopenia (n)"] = []
    if weighted:
        columns["Weighted n"] = []
    columns["Prevalence, % (95% CI)"] = []
    for row in table.iter_rows(named=True):
        columns["Definition"].append(row["definition"])
        columns["Evaluable (n)"].append(row["n"])
        columns["With sarcopenia (n)"].append(row["events"])
        if weighted:
            columns["Weighted n"].append(round(row["weighted_n"] or 0))
        columns["Prevalence, % (95% CI)"].append(
            _with_ci(row["estimate"], row["ci_low"], row["ci_high"])
        )
    return pl.DataFrame(columns)


def _forest(table: pl.DataFrame, title: str) -> str:
    """Prevalence with its CI, one line per definition."""
    data = table.filter(pl.col("estimate").is_not_null())
    figure, axis = plt.subplots(figsize=(7.5, 0.42 * max(len(data), 2) + 1.2))
    labels = data["definition"].to_list()
    y = list(range(len(labels)))
    estimate = [100 * v for v in data["estimate"]]
    low = [
        100 * (e - (lo if lo is not None else e))
        for e, lo in zip(data["estimate"], data["ci_low"], strict=True)
    ]
    high = [
        100 * ((hi if hi is not None else e) - e)
        for e, hi in zip(data["estimate"], data["ci_high"], strict=True)
    ]
    axis.errorbar(estimate, y, xerr=[low, high], fmt="s", color="#2f5d8a", capsize=3, ms=6)
    for yy, e in zip(y, estimate, strict=True):
        axis.annotate(
            f"{e:.1f}%", (e, yy), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8
        )
    axis.set_yticks(y, labels)
    axis.invert_yaxis()
    axis.set_xlim(left=0)
    axis.set_xlabel("prevalence of sarcopenia, % (95% CI)")
    axis.set_title(title, fontsize=10)
    axis.grid(axis="x", color="#e5e9ef")
    return _png(figure, title)


def _group_figure(by_group: pl.DataFrame, group: str, title: str) -> str:
    """Grouped bars with CI bars; the legend outside the plot; an unknown group labelled."""
    data = by_group.filter((pl.col("group_by") == group) & pl.col("estimate").is_not_null())
    data = data.with_columns(pl.col("group").fill_null(UNKNOWN))
    definitions = list(dict.fromkeys(data["definition"].to_list()))
    levels = list(dict.fromkeys(data["group"].to_list()))
    figure, axis = plt.subplots(
        figsize=(8.5, 0.55 * max(len(definitions), 2) * max(len(levels), 1) / 2 + 1.4)
    )
    width = 0.8 / max(len(levels), 1)
    for index, level in enumerate(levels):
        part = data.filter(pl.col("group") == level)
        rows = {r["definition"]: r for r in part.iter_rows(named=True)}
        positions, values, errors_low, errors_high = [], [], [], []
        for i, d in enumerate(definitions):
            if d not in rows:
                continue
            r = rows[d]
            positions.append(i + index * width)
            values.append(100 * r["estimate"])
            errors_low.append(
                100 * (r["estimate"] - (r["ci_low"] if r["ci_low"] is not None else r["estimate"]))
            )
            errors_high.append(
                100
                * ((r["ci_high"] if r["ci_high"] is not None else r["estimate"]) - r["estimate"])
            )
        axis.barh(
            positions,
            values,
            height=width,
            label=level,
            xerr=[errors_low, errors_high],
            capsize=2,
            error_kw={"elinewidth": 0.8},
        )
    axis.set_yticks(
        [i + (len(levels) - 1) * width / 2 for i in range(len(definitions))], definitions
    )
    axis.invert_yaxis()
    axis.set_xlim(left=0)
    axis.set_xlabel("prevalence of sarcopenia, % (95% CI)")
    if levels:
        axis.legend(
            title=group.replace("_", " "), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1)
        )
    return _png(figure, title)


def _heatmap(kappa: pl.DataFrame) -> str:
    names = list(
        dict.fromkeys([*kappa["definition_a"].to_list(), *kappa["definition_b"].to_list()])
    )
    index = {name: i for i, name in enumerate(names)}
    grid = [[1.0 if i == j else float("nan") for j in range(len(names))] for i in range(len(names))]
    for a, b, value in zip(
        kappa["definition_a"], kappa["definition_b"], kappa["kappa"], strict=True
    ):
        if value is not None:
            grid[index[a]][index[b]] = grid[index[b]][index[a]] = value
    figure, axis = plt.subplots(figsize=(1 + 0.75 * len(names), 0.75 * len(names)))
    image = axis.imshow(grid, vmin=-0.2, vmax=1, cmap="viridis")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            if grid[i][j] == grid[i][j]:  # not NaN
                axis.text(
                    j, i, f"{grid[i][j]:.2f}", ha="center", va="center", fontsize=7, color="w"
                )
    figure.colorbar(image, label="Cohen's kappa")
    return _png(figure, "agreement between definitions")


def _upset(overlap: pl.DataFrame, definitions: Sequence[str], top: int = 15) -> str:
    # The empty set (no definition positive) dwarfs the rest; its count is in the table.
    data = overlap.filter(pl.col("members").list.len() > 0).sort("count", descending=True).head(top)
    figure, (bars, dots) = plt.subplots(
        2,
        1,
        figsize=(max(6, 0.55 * len(data) + 2), 2.5 + 0.3 * len(definitions)),
        gridspec_kw={"height_ratios": [2, 1.2]},
        sharex=True,
    )
    bars.bar(range(len(data)), data["count"].to_list(), color="#4a7bb7")
    bars.set_ylabel("rows")
    for x, members in enumerate(data["members"].to_list()):
        for y, name in enumerate(definitions):
            dots.scatter(x, y, color="#1d2733" if name in members else "#d8dee6", s=30)
    dots.set_yticks(range(len(definitions)), definitions, fontsize=8)
    dots.set_xticks([])
    dots.invert_yaxis()
    return _png(figure, "overlap of definitions")


def _roc_figure(roc: pl.DataFrame) -> str:
    figure, axis = plt.subplots(figsize=(5.5, 5))
    for tool in dict.fromkeys(roc["tool"].to_list()):
        part = roc.filter(pl.col("tool") == tool)
        axis.plot(part["fpr"].to_list(), part["tpr"].to_list(), label=tool)
    axis.plot([0, 1], [0, 1], color="#999", linestyle=":")
    axis.set_xlabel("1 − specificity")
    axis.set_ylabel("sensitivity")
    axis.legend(fontsize=8, loc="lower right")
    return _png(figure, "ROC curves")


def _criteria(definition_ids: Sequence[str]) -> str:
    parts = []
    for definition_id in definition_ids:
        d = definition(definition_id)
        rows = pl.DataFrame(
            {
                "Component": [t.component.replace("_", " ") for t in d.tests],
                "Measurement": [t.threshold.input for t in d.tests],
                "Low when": [cutoff_text(t.threshold) for t in d.tests],
                "Source": [t.threshold.source for t in d.tests],
            }
        )
        local = " — local definition" if d.local else ""
        parts.append(
            f"<h3>{html.escape(d.name)} (<code>{d.id}</code>){local}</h3>"
            f"<p class='note'>{html.escape(d.citation)}</p>"
            f"<p class='note'>definition file SHA-256 <code>{d.sha256}</code></p>{_table(rows)}"
        )
    parts.append(
        "<p class='note'>definitions SHA-256 (all files, in this order) "
        f"<code>{definitions_hash(definition_ids)}</code></p>"
    )
    return "".join(parts)


def _flow(summary: CohortSummary) -> str:
    flow = summary.flow

    def side(title: str, reasons: Sequence[tuple[str, int]], total: int) -> str:
        items = "".join(f"<li>{html.escape(r)}: {n:,}</li>" for r, n in reasons)
        return f"<div class='side'><b>{html.escape(title)}: {total:,}</b><ul>{items}</ul></div>"

    after_exclusion = flow.rows_read - flow.rows_excluded
    steps = [
        f"<div class='step'><div class='box'>Rows read<b>{flow.rows_read:,}</b></div>"
        + side("Excluded, outside the study's scope", flow.excluded_by, flow.rows_excluded)
        + "</div>",
        "<div class='arrow'>↓</div>",
        f"<div class='step'><div class='box'>Eligible<b>{after_exclusion:,}</b></div>"
        + side(
            "Rejected, a value could not be used (a row can have several)",
            flow.rejected_by,
            flow.rows_rejected,
        )
        + "</div>",
        "<div class='arrow'>↓</div>",
        f"<div class='step'><div class='box'>Analysed<b>{flow.rows_scored:,}</b></div></div>",
    ]
    text = (
        f"Of {flow.rows_read:,} rows read, {flow.rows_excluded:,} were outside the study's "
        f"scope, {flow.rows_rejected:,} were rejected because a value could not be used, and "
        f"{flow.rows_scored:,} were analysed. Each rejected row is listed with its field, value "
        "and reason in the rejects file."
    )
    unused = ""
    if flow.unused_columns:
        unused = (
            "<p class='note'>Input columns no field uses (kept in the results file, not "
            f"analysed): {html.escape(', '.join(flow.unused_columns))}.</p>"
        )
    return _lead(text) + f"<div class='flow'>{''.join(steps)}</div>" + unused


def _evaluable(summary: CohortSummary) -> str:
    parts = [
        _lead(
            "A definition can classify a row only when the measurements it needs are there; "
            "rows it cannot classify are indeterminate and are left out of its prevalence."
        )
    ]
    if summary.not_evaluable is not None and summary.not_evaluable.height:
        items = "".join(
            f"<li>{html.escape(s)}</li>" for s in summary.not_evaluable["sentence"].to_list()
        )
        parts.append(
            "<div class='missing'><b>Not evaluable in this cohort</b><ul>" + items + "</ul>"
            "<p class='note'>Add the missing measurements (for NHANES, the grip-strength file "
            "MGX and the DXA file DXX) to evaluate these definitions.</p></div>"
        )
    table = summary.evaluable.with_columns(
        (100 * pl.col("evaluable") / pl.col("scored")).round(1).alias("Evaluable, %")
    )
    partial = table.filter((pl.col("evaluable") > 0) & (pl.col("Evaluable, %") < 80))
    if partial.height:
        names = ", ".join(partial["definition"].to_list())
        parts.append(
            "<p class='note'>Under " + html.escape(names) + " fewer than 80% of rows are "
            "evaluable: rows are more often evaluable when a measurement decides the answer on "
            "its own, so prevalence among the evaluable may be biased.</p>"
        )
    parts.append(_table(table, "evaluable.csv", digits=1))
    return "".join(parts)


def render_report(summary: CohortSummary, path: Path) -> None:
    """Write the HTML report of a cohort run."""
    weighted = summary.survey is not None and summary.survey.height > 0
    sections = [
        f"<h1>sarcokit cohort report</h1><p class='meta'>{html.escape(', '.join(summary.inputs))}"
        f" · sarcokit {__version__} · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<h2>Participant flow</h2>",
        _flow(summary),
        "<h2>What could be evaluated</h2>",
        _evaluable(summary),
    ]
    if summary.table1 is not None:
        split = summary.lead is not None
        how = (
            "weighted by the survey design (n is the count of rows; percentages, means and SDs "
            "are weighted)"
            if summary.design is not None and summary.design.weight
            else "unweighted"
        )
        lead_text = (
            "Characteristics of the analysed participants, overall and by sarcopenia status "
            f"under {summary.lead}; "
            "SMD is the standardised mean difference between the sarcopenia and no-sarcopenia "
            f"columns ({how})."
            if split
            else f"Characteristics of the analysed participants ({how}). No definition could be "
            "evaluated, so the table is not split by sarcopenia status."
        )
        sections += [
            "<h2>Table 1. Participant characteristics</h2>",
            _lead(lead_text),
            _table(summary.table1, "table1.csv", digits=2),
            "<p class='note'>Continuous variables: mean ± SD, or median [IQR] when skewed "
            "(|skewness| &gt; 1). Categorical: n (%). Missing: rows without the value (not in "
            "the denominators).</p>",
        ]
    sections.append("<h2>Prevalence of sarcopenia by definition</h2>")
    if summary.prevalence.height and summary.prevalence["estimate"].is_not_null().any():
        crude = summary.prevalence
        sections += [
            _lead(
                "The share of evaluable participants with sarcopenia (any severity) under each "
                "definition, with 95% confidence intervals."
            ),
            _forest(
                summary.survey.filter(pl.col("group_by") == "overall")
                if weighted and summary.survey is not None
                else crude,
                "Prevalence by definition" + (" (survey-weighted)" if weighted else ""),
            ),
            "<h3>Crude (unweighted)</h3>",
            _table(_prevalence_rows(crude), "prevalence.csv"),
            f"<p class='note'>{html.escape(summary.method_note)}</p>",
        ]
    else:
        sections.append(
            "<div class='missing'>No definition could classify any analysed row, so no "
            "prevalence can be estimated; see “What could be evaluated”.</div>"
        )
    if summary.design is not None:
        sections.append("<h3>Survey-weighted (design-based)</h3>")
        if weighted and summary.survey is not None:
            overall = summary.survey.filter(pl.col("group_by") == "overall")
            sections += [
                _lead(
                    f"Weighted by {summary.design.weight or 'equal weights'}, strata "
                    f"{summary.design.strata or 'none'}, PSU {summary.design.psu or 'each row'}: "
                    "Taylor-linearised standard errors, logit intervals with degrees of freedom "
                    "= PSUs − strata."
                ),
                _table(_prevalence_rows(overall, weighted=True), "survey_prevalence.csv"),
            ]
        else:
            sections.append(
                "<div class='missing'>The survey design was given, but no definition has an "
                "evaluable row to weight.</div>"
            )
    if summary.standard is not None:
        sections.append("<h3>Age-standardised</h3>")
        if summary.standardised is not None and summary.standardised.height:
            overall = summary.standardised.filter(pl.col("group_by") == "overall")
            sections += [
                _lead(summary.standard_note or ""),
                _table(_prevalence_rows(overall), "age_standardised_prevalence.csv"),
            ]
            by_sex = summary.standardised.filter(pl.col("group_by") == "sex")
            if by_sex.height:
                shown = by_sex.select(
                    pl.col("definition"),
                    pl.col("group").alias("Sex"),
                    pl.all().exclude("definition", "group", "group_by"),
                )
                sections.append(
                    _table(_prevalence_rows(shown).insert_column(1, shown["Sex"]), None)
                )
        else:
            note = summary.standard_note or ""
            sections.append(
                "<div class='missing'>No definition has an evaluable row, so nothing could be "
                f"standardised to {html.escape(summary.standard)}. {html.escape(note)}</div>"
            )
    group_source = summary.survey if weighted and summary.survey is not None else summary.by_group
    for group, title in (("sex", "Prevalence by sex"), ("age_band", "Prevalence by age band")):
        part = (
            group_source.filter(pl.col("group_by") == group)
            if group_source.height
            else group_source
        )
        if not part.height or not part["estimate"].is_not_null().any():
            continue
        part = part.with_columns(pl.col("group").fill_null(UNKNOWN))
        rows = part.select(
            pl.col("definition").alias("Definition"),
            pl.col("group").alias("Sex" if group == "sex" else "Age band"),
            pl.col("n").alias("Evaluable (n)"),
            pl.col("events").alias("With sarcopenia (n)"),
            _ci_expr("estimate", "ci_low", "ci_high").alias("Prevalence, % (95% CI)"),
        )
        kind = "survey-weighted" if weighted else "crude"
        sections += [
            f"<h2>{title}</h2>",
            _lead(
                f"Prevalence ({kind}) within each {'sex' if group == 'sex' else 'age band'}, with "
                "95% CIs; “unknown” is a group whose value is missing."
            ),
            _group_figure(part, group, title),
            _table(rows, "survey_prevalence.csv" if weighted else "prevalence_by_group.csv"),
        ]
    nothing = (
        "<div class='missing'>No definition could classify any analysed row, so there is "
        "nothing to show here; see “What could be evaluated”.</div>"
    )
    if summary.categories.height and not summary.categories["estimate"].is_not_null().any():
        sections += ["<h3>Every category</h3>", nothing]
    if summary.categories.height and summary.categories["estimate"].is_not_null().any():
        categories = summary.categories.select(
            pl.col("definition"),
            pl.col("category").str.replace_all("_", " "),
            pl.col("events").alias("Rows (n)"),
            _ci_expr("estimate", "ci_low", "ci_high").alias("% of evaluable (95% CI)"),
        )
        sections += [
            "<h3>Every category</h3>",
            _lead("Each definition's categories as a share of its evaluable rows."),
            _table(categories, "categories.csv"),
        ]
    if summary.kappa.height and not (summary.kappa["n"] > 0).any():
        sections += ["<h2>Agreement between definitions</h2>", nothing, "<h2>Overlap</h2>", nothing]
    if summary.kappa.height and (summary.kappa["n"] > 0).any():
        kappa = summary.kappa.select(
            "definition_a",
            "definition_b",
            "n",
            (100 * pl.col("observed_agreement")).round(1).alias("observed_agreement"),
            pl.struct("kappa", "ci_low", "ci_high")
            .map_elements(
                lambda r: (
                    "–"
                    if r["kappa"] is None
                    else f"{r['kappa']:.2f} ({r['ci_low']:.2f} to {r['ci_high']:.2f})"
                    if r["ci_low"] is not None
                    else f"{r['kappa']:.2f}"
                ),
                return_dtype=pl.String,
            )
            .alias("kappa"),
        )
        sections += [
            "<h2>Agreement between definitions</h2>",
            _lead(
                "How often two definitions agree on sarcopenia (any severity) among rows both "
                "can classify: percentage agreement and Cohen's kappa with its asymptotic 95% CI."
            ),
            _heatmap(summary.kappa),
            _table(kappa, "kappa.csv", digits=1),
            "<h2>Overlap</h2>",
            _lead(
                "Rows with sarcopenia under exactly this set of definitions, among rows "
                "evaluable under all of them."
            ),
            _upset(summary.overlap, summary.diagnostic_definitions),
            _table(
                summary.overlap.with_columns(pl.col("members").list.join(" + ")).head(20),
                "overlap.csv",
            ),
        ]
    if summary.secondary is not None and summary.secondary.height:
        secondary = summary.secondary.filter(pl.col("n") > 0)
        sections += [
            "<h2>Secondary sarcopenia by condition</h2>",
            _lead(
                "Prevalence of sarcopenia among rows whose conditions include each recognised "
                "cause (Wilson 95% CI)."
            ),
            _table(
                secondary.select(
                    "condition",
                    "definition",
                    "n",
                    "events",
                    _ci_expr("estimate", "ci_low", "ci_high").alias("Prevalence, % (95% CI)"),
                ),
                "secondary_sarcopenia_by_condition.csv",
            ),
        ]
    if summary.accuracy is not None and summary.accuracy.height:
        accuracy = summary.accuracy
        shown = accuracy.select(
            pl.col("tool"),
            pl.col("n_reference_positive").alias("Reference positive (n)"),
            pl.col("n_reference_negative").alias("Reference negative (n)"),
            *(
                _ci_expr(m, f"{m}_ci_low", f"{m}_ci_high").alias(label)
                for m, label in (
                    ("sensitivity", "Sensitivity, %"),
                    ("specificity", "Specificity, %"),
                    ("ppv", "PPV, %"),
                    ("npv", "NPV, %"),
                )
            ),
            pl.struct("auc", "auc_ci_low", "auc_ci_high")
            .map_elements(
                lambda r: (
                    "–"
                    if r["auc"] is None
                    else f"{r['auc']:.2f} ({r['auc_ci_low']:.2f}–{r['auc_ci_high']:.2f})"
                ),
                return_dtype=pl.String,
            )
            .alias("auc"),
            pl.col("youden_cutoff").cast(pl.String).alias("Youden cut-off"),
        )
        sections += [
            f"<h2>Screening accuracy against {html.escape(summary.reference or '')}</h2>",
            _lead(
                "How well each screening tool, at its published cut-off, finds the participants "
                "the reference definition diagnoses (95% CIs); the ROC curve shows every cut-off."
            ),
            _roc_figure(summary.roc) if summary.roc is not None and summary.roc.height else "",
            _table(shown, "screening_accuracy.csv"),
        ]
    sections += outcome_section(summary.extra, _png, _table)
    sections += ["<h2>Cut-offs and citations used</h2>", _criteria(summary.definitions)]
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>sarcokit cohort report</title><style>{_STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )
    path.write_text(document, encoding="utf-8")
