"""The cohort report: one self-contained HTML file (figures embedded) that opens offline."""

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
from sarcokit.definitions import definition, definitions_hash
from sarcokit.docs import cutoff_text

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans SC",sans-serif;
margin:2rem auto;max-width:1100px;color:#1d2733;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #d8dee6;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #d8dee6;padding:.25rem .5rem;text-align:right}
th{background:#f1f4f8}td:first-child,th:first-child{text-align:left}
.meta{color:#5b6b7d}.flow{display:flex;gap:1rem;flex-wrap:wrap}
.box{border:1px solid #c9d3de;border-radius:6px;padding:.6rem 1rem;background:#f8fafc}
.box b{display:block;font-size:1.4rem}img{max-width:100%}
.note{color:#5b6b7d;font-size:.85rem}
"""


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def _table(frame: pl.DataFrame, digits: int = 3) -> str:
    """A frame as an HTML table, numbers rounded for reading (the CSV keeps full precision)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = []
        for value in row:
            if isinstance(value, float):
                shown = f"{value:.{digits}f}"
            else:
                shown = "" if value is None else str(value)
            cells.append(f"<td>{html.escape(shown)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _prevalence_figure(prevalence: pl.DataFrame) -> str:
    data = prevalence.filter(pl.col("estimate").is_not_null())
    figure, axis = plt.subplots(figsize=(8, 0.45 * max(len(data), 2) + 1))
    labels = data["definition"].to_list()
    estimate = [100 * v for v in data["estimate"].to_list()]
    low = [100 * (e - lo) for e, lo in zip(data["estimate"], data["ci_low"], strict=True)]
    high = [100 * (hi - e) for e, hi in zip(data["estimate"], data["ci_high"], strict=True)]
    axis.barh(labels, estimate, xerr=[low, high], color="#4a7bb7", capsize=3)
    axis.invert_yaxis()
    axis.set_xlabel("prevalence of sarcopenia (any severity), % of evaluable, 95% CI")
    return _png(figure)


def _group_figure(by_group: pl.DataFrame, group: str) -> str:
    data = by_group.filter((pl.col("group_by") == group) & pl.col("estimate").is_not_null())
    definitions = list(dict.fromkeys(data["definition"].to_list()))
    levels = list(dict.fromkeys(data["group"].to_list()))
    figure, axis = plt.subplots(figsize=(9, 0.5 * max(len(definitions), 2) + 1))
    width = 0.8 / max(len(levels), 1)
    for index, level in enumerate(levels):
        part = data.filter(pl.col("group") == level)
        rows = {d: e for d, e in zip(part["definition"], part["estimate"], strict=True)}
        positions = [i + index * width for i in range(len(definitions))]
        axis.barh(
            positions, [100 * rows.get(d, 0.0) for d in definitions], height=width, label=level
        )
    axis.set_yticks([i + 0.4 - width / 2 for i in range(len(definitions))], definitions)
    axis.invert_yaxis()
    axis.set_xlabel("prevalence, % of evaluable")
    if levels:  # a group with no evaluable row has nothing to label
        axis.legend(title=group, fontsize=8)
    return _png(figure)


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
    return _png(figure)


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
    return _png(figure)


def _roc_figure(roc: pl.DataFrame) -> str:
    figure, axis = plt.subplots(figsize=(5.5, 5))
    for tool in dict.fromkeys(roc["tool"].to_list()):
        part = roc.filter(pl.col("tool") == tool)
        axis.plot(part["fpr"].to_list(), part["tpr"].to_list(), label=tool)
    axis.plot([0, 1], [0, 1], color="#999", linestyle=":")
    axis.set_xlabel("1 − specificity")
    axis.set_ylabel("sensitivity")
    axis.legend(fontsize=8)
    return _png(figure)


def _criteria(definition_ids: Sequence[str]) -> str:
    parts = []
    for definition_id in definition_ids:
        d = definition(definition_id)
        rows = pl.DataFrame(
            {
                "component": [t.component for t in d.tests],
                "input": [t.threshold.input for t in d.tests],
                "low when": [cutoff_text(t.threshold) for t in d.tests],
                "source": [t.threshold.source for t in d.tests],
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


def render_report(summary: CohortSummary, path: Path) -> None:
    """Write the HTML report of a cohort run."""
    flow = summary.flow
    boxes = "".join(
        f"<div class='box'>{html.escape(label)}<b>{value:,}</b></div>"
        for label, value in (
            ("rows read", flow.rows_read),
            ("scored", flow.rows_scored),
            ("rejected", flow.rows_rejected),
        )
    )
    sections = [
        f"<h1>sarcokit cohort report</h1><p class='meta'>{html.escape(', '.join(summary.inputs))}"
        f" · sarcokit {__version__} · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<h2>Participant flow</h2>",
        f"<div class='flow'>{boxes}</div>",
        "<p>Evaluable rows per definition (scored rows whose category is not indeterminate):</p>",
        _table(summary.evaluable),
        "<h2>Prevalence by definition</h2>",
        f"<p class='note'>{html.escape(summary.method_note)}</p>",
        _prevalence_figure(summary.prevalence) if summary.prevalence.height else "",
        _table(summary.prevalence),
        "<h3>Every category</h3>",
        _table(summary.categories),
    ]
    for group in dict.fromkeys(summary.by_group["group_by"].to_list()):
        sections += [
            f"<h2>Prevalence by {html.escape(group)}</h2>",
            _group_figure(summary.by_group, group),
            _table(summary.by_group.filter(pl.col("group_by") == group)),
        ]
    if summary.kappa.height:
        sections += [
            "<h2>Agreement between definitions</h2>",
            "<p class='note'>Cohen's kappa on sarcopenia (any severity) among rows evaluable under "
            "both definitions; asymptotic 95% CI.</p>",
            _heatmap(summary.kappa),
            _table(summary.kappa),
            "<h2>Overlap</h2>",
            "<p class='note'>Rows with sarcopenia under exactly this set of definitions, among "
            "rows evaluable under all of them.</p>",
            _upset(summary.overlap, summary.diagnostic_definitions),
            _table(summary.overlap.with_columns(pl.col("members").list.join(" + ")).head(20)),
        ]
    if summary.secondary is not None and summary.secondary.height:
        sections += [
            "<h2>Secondary sarcopenia by condition</h2>",
            "<p class='note'>Prevalence of sarcopenia among rows whose conditions include each "
            "recognised cause (sarcokit conditions), Wilson 95% CI.</p>",
            _table(summary.secondary.filter(pl.col("n") > 0)),
        ]
    if summary.accuracy is not None and summary.accuracy.height:
        sections += [
            f"<h2>Screening accuracy against {html.escape(summary.reference or '')}</h2>",
            _roc_figure(summary.roc) if summary.roc is not None and summary.roc.height else "",
            _table(summary.accuracy),
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
