"""The terminal view of results: one panel per definition, in English or Chinese."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sarcokit.i18n import Lang, text
from sarcokit.reasons import definition_name
from sarcokit.result import Result

_STYLE = {
    "severe_sarcopenia": "bold red",
    "sarcopenia": "red",
    "weakness_slowness_low_lean_mass": "bold red",
    "weakness_with_low_lean_mass": "red",
    "probable_sarcopenia": "yellow",
    "possible_sarcopenia": "yellow",
    "presarcopenia": "yellow",
    "indeterminate": "magenta",
}


def render(result: Result, console: Console, lang: Lang = "en") -> None:
    """Print one subject's result."""
    title = f"[bold]{result.id if result.id is not None else ''}[/bold]"
    if not result.ok:
        lines = [Text(p.message, style="red") for p in result.problems]
        console.print(
            Panel(Group(*lines), title=f"{title} {text(lang, 'ui.error')}", border_style="red")
        )
        return
    summary = Table.grid(padding=(0, 2))
    for name, value in result.derived.items():
        if value is not None:
            summary.add_row(name, f"{value:g}")
    for name, block in result.screening.items():
        shown = ", ".join(
            f"{k}={v}" for k, v in block.items() if v is not None and k != "provisional"
        )
        if shown and any(v is not None for k, v in block.items() if k != "provisional"):
            summary.add_row(name, shown)
    console.print(
        Panel(summary, title=f"{title} {text(lang, 'ui.derived')} / {text(lang, 'ui.screening')}")
    )
    for definition_id, outcome in result.definitions.items():
        category = outcome.category or "indeterminate"
        body: list[Text | Table] = []
        heading = Text(f"{text(lang, 'ui.category')}: ")
        heading.append(text(lang, f"category.{category}"), style=_STYLE.get(category, "green"))
        body.append(heading)
        states = Table.grid(padding=(0, 2))
        reported = {**outcome.components, **outcome.outcomes, **outcome.case_finding}
        for component, state in reported.items():
            states.add_row(text(lang, f"component.{component}"), text(lang, f"state.{state}"))
        body.append(states)
        body.append(Text(f"{text(lang, 'ui.reasons')}:", style="bold"))
        body.extend(Text(f"  • {reason}") for reason in outcome.reasons)
        if outcome.next_steps:
            body.append(Text(f"{text(lang, 'ui.next_steps')}:", style="bold"))
            body.extend(Text(f"  → {text(lang, f'next.{step}')}") for step in outcome.next_steps)
            cited = dict.fromkeys(label for _, label in outcome.cited_steps if label)
            body.extend(Text(f"    [{label}]", style="dim") for label in cited)
        console.print(Panel(Group(*body), title=definition_name(definition_id, lang)))
    secondary = _flatten(result.secondary)
    if secondary:
        table = Table.grid(padding=(0, 2))
        for name, value in secondary:
            table.add_row(name, str(value))
        console.print(Panel(table, title=f"{title} {text(lang, 'ui.secondary')}"))


def _flatten(block: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Known values of a nested block as dotted names (unknowns are left out of the view)."""
    rows: list[tuple[str, Any]] = []
    for key, value in block.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            if value:
                rows.append(
                    (
                        name,
                        "; ".join(
                            str(v.get("text", v)) if isinstance(v, Mapping) else str(v)
                            for v in value
                        ),
                    )
                )
        elif value is not None and not (key.endswith("_base") and len(rows) == 0):
            rows.append((name, value))
    return rows
