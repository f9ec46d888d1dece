"""The terminal view of where a FHIR record's values came from."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sarcokit.fhir.inbound import FhirRecord


def render_sources(read: FhirRecord, console: Console) -> None:
    """Two tables: the observations used (field, resource, date, value) and those ignored."""
    used = Table(title=f"FHIR observations used (as of {read.as_of.isoformat()})")
    for column in ("field", "resource", "code", "date", "value", "unit"):
        used.add_column(column)
    for u in read.used:
        cells = (u.field, u.resource, u.code, u.date, str(u.value), u.unit or "")
        # Units such as [lb_av] would otherwise read as markup.
        used.add_row(*(escape(c) for c in cells))
    console.print(used)
    if read.ignored:
        ignored = Table(title="FHIR observations ignored")
        for column in ("resource", "code", "reason", "detail"):
            ignored.add_column(column)
        for i in read.ignored:
            shown = (i.resource, i.code or "", i.reason, i.detail)
            ignored.add_row(*(escape(c) for c in shown))
        console.print(ignored)
