"""What each correction of a visit changed: field by field, before and after, who, when, why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sarcokit.web.models import Visit, VisitContent, VisitRevision
from sarcokit.web.report import Row, answer_rows, measurement_rows


@dataclass(frozen=True)
class Change:
    """One value a correction changed; an empty side means not recorded on that side."""

    label: str
    before: str
    after: str
    unit_before: str = ""
    unit_after: str = ""
    # The values are themselves messages to translate (a choice such as "DXA" or "yes").
    translate: bool = False


@dataclass(frozen=True)
class CategoryChange:
    """A definition whose stored category the correction changed (codes, rendered at the edge)."""

    definition: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Correction:
    """One correction: when, by whom, why, and what it changed."""

    at: datetime
    by: str
    reason: str
    date_before: date
    date_after: date
    changes: tuple[Change, ...]
    categories: tuple[CategoryChange, ...]


def _rows(content: VisitContent, language: str) -> dict[str, Row]:
    rows = {row.label: row for row in measurement_rows(content.measurements)}
    for questionnaire, item, answer in answer_rows(content.measurements, language):
        # Questionnaire answers are already in the reader's language.
        rows[f"{questionnaire}: {item}"] = Row(f"{questionnaire}: {item}", answer)
    return rows


def _changes(before: Mapping[str, Row], after: Mapping[str, Row]) -> tuple[Change, ...]:
    changes = []
    for label in dict.fromkeys([*before, *after]):
        old, new = before.get(label), after.get(label)
        if old is not None and new is not None and (old.value, old.unit) == (new.value, new.unit):
            continue
        changes.append(
            Change(
                label,
                old.value if old else "",
                new.value if new else "",
                old.unit if old else "",
                new.unit if new else "",
                translate=bool((old and old.translate) or (new and new.translate)),
            )
        )
    return tuple(changes)


def _categories(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[CategoryChange, ...]:
    def category(result: Mapping[str, Any], name: str) -> str | None:
        answer = result.get("definitions", {}).get(name)
        return answer.get("category") if isinstance(answer, Mapping) else None

    names = dict.fromkeys([*before.get("definitions", {}), *after.get("definitions", {})])
    return tuple(
        CategoryChange(name, category(before, name), category(after, name))
        for name in names
        if category(before, name) != category(after, name)
    )


def corrections(visit: Visit, language: str) -> list[Correction]:
    """Each correction of the visit, newest first, with what it changed (from what was stored)."""
    revisions: Sequence[VisitRevision] = visit.revisions
    versions: list[VisitContent] = [*revisions, visit]
    found = []
    for revision, after in zip(revisions, versions[1:], strict=False):
        found.append(
            Correction(
                at=revision.replaced_at,
                by=revision.replacer.display_name,
                reason=revision.reason,
                date_before=revision.visit_date,
                date_after=after.visit_date,
                changes=_changes(_rows(revision, language), _rows(after, language)),
                categories=_categories(revision.result, after.result),
            )
        )
    return found[::-1]
