"""History charts as inline SVG, drawn on the server (no script, so the CSP stays strict)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

from sarcokit.web.history import Point, Series

WIDTH, HEIGHT = 440, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 120, 22, 34
# Date labels are about 64 px wide at the chart's font size; closer ones would overlap.
DATE_SPACING = 70
# Cut-off labels closer than this are moved apart so that each stays readable.
LABEL_SPACING = 12


def _scale(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    span = high - low or 1.0
    return lambda v: start + (v - low) / span * (end - start)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, most: int = 5) -> list[float]:
    """Round axis values (steps of 1, 2 or 5 × 10^k) covering low..high, at most `most` of them."""
    if high <= low:
        return [low]
    raw = (high - low) / max(most - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def direction(change: float | None, better: str) -> str:
    """Whether a change is for the better, the worse, or none, for a measure's meaning."""
    if change is None or abs(change) < 1e-9:
        return "same"
    rising = change > 0
    return "better" if rising == (better == "higher") else "worse"


def _spread(levels: Sequence[float]) -> list[float]:
    """Label positions near their levels, at least LABEL_SPACING apart (top to bottom)."""
    placed: list[float] = []
    for level in sorted(levels):
        placed.append(max(level, placed[-1] + LABEL_SPACING) if placed else level)
    order = sorted(range(len(levels)), key=lambda i: levels[i])
    result = [0.0] * len(levels)
    for rank, index in enumerate(order):
        result[index] = placed[rank]
    return result


def _dated(count: int, x: Callable[[float], float]) -> list[int]:
    """Which points get a date label: the first, the last, and those far enough apart."""
    chosen: list[int] = []
    for i in range(count):
        last = i == count - 1
        if not chosen or x(i) - x(chosen[-1]) >= DATE_SPACING:
            chosen.append(i)
        elif last:
            chosen[-1] = i
    return chosen


def _point_title(series: Series, point: Point, trend: str, gettext: Callable[..., str]) -> str:
    label = f"{point.visit_date.isoformat()}: {_fmt(point.value)} {series.unit}"
    if trend != "same" and point.change is not None:
        sign = "+" if point.change > 0 else ""
        label += f" ({sign}{_fmt(point.change)})"
        label += " — " + (gettext("better") if trend == "better" else gettext("worse"))
    if point.meaningful:
        label += " — " + gettext("meaningful change")
    return label


def chart(series: Series, gettext: Callable[..., str]) -> Markup:
    """An SVG line chart of one measure: values on the points, each change coloured by whether
    it is better or worse for this measure, the cut-off lines labelled, meaningful changes
    ringed."""
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
    ticks = nice_ticks(low - margin, high + margin)
    bottom, top = min(ticks[0], low - margin), max(ticks[-1], high + margin)
    y = _scale(bottom, top, HEIGHT - BOTTOM, TOP)
    count = len(series.points)
    x = (
        _scale(-0.5, count - 0.5, LEFT, WIDTH - RIGHT)
        if count == 1
        else _scale(0, count - 1, LEFT + 12, WIDTH - RIGHT - 12)
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{LEFT - 6}" y="{TOP - 8}" class="unit" text-anchor="end">'
        f"{escape(series.unit)}</text>",
    ]
    for tick in ticks:
        level = y(tick)
        parts.append(
            f'<line x1="{LEFT}" y1="{level:.1f}" x2="{WIDTH - RIGHT}" y2="{level:.1f}" '
            f'class="grid"/><text x="{LEFT - 6}" y="{level + 4:.1f}" class="tick" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    parts += [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}" class="axis"/>',
    ]
    levels = [y(line.value) for line in series.cutoffs]
    for line, level, label_at in zip(series.cutoffs, levels, _spread(levels), strict=True):
        parts.append(
            f'<line x1="{LEFT}" y1="{level:.1f}" x2="{WIDTH - RIGHT}" y2="{level:.1f}" '
            f'class="cutoff"/><text x="{WIDTH - RIGHT + 4}" y="{label_at + 4:.1f}" '
            f'class="cutoff-label">{escape(line.label)}</text>'
        )
    points = series.points
    for i in range(1, count):
        trend = direction(points[i].change, series.better)
        parts.append(
            f'<line x1="{x(i - 1):.1f}" y1="{y(points[i - 1].value):.1f}" x2="{x(i):.1f}" '
            f'y2="{y(points[i].value):.1f}" class="segment {trend}"/>'
        )
    for i, point in enumerate(points):
        cx, cy = x(i), y(point.value)
        trend = direction(point.change, series.better)
        marker = f"point {trend}" + (" meaningful" if point.meaningful else "")
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" class="{marker}">'
            f"<title>{escape(_point_title(series, point, trend, gettext))}</title></circle>"
            f'<text x="{cx:.1f}" y="{cy - 9:.1f}" class="value" text-anchor="middle">'
            f"{_fmt(point.value)}</text>"
        )
    for i in _dated(count, x):
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" class="tick date" '
            f'text-anchor="middle">{points[i].visit_date.isoformat()}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
