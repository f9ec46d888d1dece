"""History charts as inline SVG, drawn on the server (no script, so the CSP stays strict)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from markupsafe import Markup

from sarcokit.web.history import Series

WIDTH, HEIGHT = 420, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 110, 16, 34


def _scale(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    span = high - low or 1.0
    return lambda v: start + (v - low) / span * (end - start)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def chart(series: Series, gettext: Callable[..., str]) -> Markup:
    """An SVG line chart of one measure, its cut-off lines and its meaningful changes."""
    title = f"{gettext(series.label)} ({series.unit})"
    if not series.points:
        empty = escape(gettext("No values recorded yet."))
        return Markup(
            f'<svg class="chart" viewBox="0 0 {WIDTH} 60" role="img" aria-label="{escape(title)}">'
            f'<text x="8" y="34" class="empty">{empty}</text></svg>'
        )
    values = [p.value for p in series.points] + [c.value for c in series.cutoffs]
    low, high = min(values), max(values)
    margin = (high - low) * 0.15 or abs(high) * 0.1 or 1.0
    y = _scale(low - margin, high + margin, HEIGHT - BOTTOM, TOP)
    count = len(series.points)
    x = _scale(0, max(count - 1, 1), LEFT, WIDTH - RIGHT)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}" class="axis"/>',
    ]
    for tick in (low, high):
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" class="tick" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )
    for line in series.cutoffs:
        level = y(line.value)
        parts.append(
            f'<line x1="{LEFT}" y1="{level:.1f}" x2="{WIDTH - RIGHT}" y2="{level:.1f}" '
            f'class="cutoff"/><text x="{WIDTH - RIGHT + 4}" y="{level + 4:.1f}" '
            f'class="cutoff-label">{escape(line.label)}</text>'
        )
    path = " ".join(f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(series.points))
    parts.append(f'<polyline points="{path}" class="series"/>')
    for i, point in enumerate(series.points):
        cx, cy = x(i), y(point.value)
        marker = "point meaningful" if point.meaningful else "point"
        label = f"{point.visit_date.isoformat()}: {_fmt(point.value)} {series.unit}"
        if point.meaningful:
            label += " — " + gettext("meaningful change")
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" class="{marker}">'
            f"<title>{escape(label)}</title></circle>"
        )
        parts.append(
            f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" class="tick" text-anchor="middle">'
            f"{point.visit_date.isoformat()}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
