"""Consensus definitions loaded from the cited criteria files in `sarcokit/criteria/`."""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from sarcokit.rules import components_named, parse_rule
from sarcokit.thresholds import CriteriaError, Threshold, parse_threshold

# Public order of the definitions (DESIGN.md); the ids are part of the public contract.
DEFINITION_IDS = (
    "ewgsop2010",
    "ewgsop2",
    "awgs2014",
    "awgs2019",
    "awgs2019_community",
    "cn2021",
    "iwgs2011",
    "fnih2014",
    "sdoc2020",
    "sdoc2020_grip_bmi",
)

INDETERMINATE = "indeterminate"


@dataclass(frozen=True)
class Component:
    """A component of a definition (strength, muscle quantity, ...) and how to measure it."""

    id: str
    next_step: str
    states: tuple[str, str] = ("low", "normal")


@dataclass(frozen=True)
class Test:
    """A cut-off test assigned to one component of one definition."""

    component: str
    threshold: Threshold
    # Fields a reason shows beside a pre-classified flag (which cut-off set, which value).
    show: tuple[str, ...] = ()


@dataclass(frozen=True)
class Category:
    """A category and the rule over components that establishes it."""

    id: str
    when: str
    rule: ast.expr
    source: str
    next_steps: tuple[str, ...] = ()
    final: bool = False
    sarcopenia: bool = False


@dataclass(frozen=True)
class Definition:
    """One consensus definition: cited cut-offs, components and ordered category rules."""

    id: str
    name: str
    title: str
    citation: str
    doi: str | None
    population: str
    notes: tuple[str, ...]
    components: tuple[Component, ...]
    tests: tuple[Test, ...]
    categories: tuple[Category, ...]

    @property
    def category_ids(self) -> tuple[str, ...]:
        """Every category this definition can answer, `indeterminate` included."""
        return (*(c.id for c in self.categories), INDETERMINATE)

    @property
    def diagnoses(self) -> bool:
        """Whether any category is a sarcopenia diagnosis (the community pathway has none)."""
        return any(c.sarcopenia for c in self.categories)

    def tests_of(self, component: str) -> list[Test]:
        """The tests that decide a component."""
        return [t for t in self.tests if t.component == component]


def _load(definition_id: str) -> Definition:
    where = f"criteria/{definition_id}.toml"
    text = files("sarcokit").joinpath(where).read_text("utf-8")
    raw = tomllib.loads(text)
    if raw.get("id") != definition_id:
        raise CriteriaError(f"{where}: id {raw.get('id')!r} does not match the file name")
    components = tuple(
        Component(cid, str(c["next_step"]), tuple(c.get("states", ("low", "normal"))))
        for cid, c in raw["components"].items()
    )
    component_ids = [c.id for c in components]
    tests = []
    for entry in raw["tests"]:
        if entry["component"] not in component_ids:
            raise CriteriaError(f"{where}: test {entry['id']!r} names an unknown component")
        threshold = parse_threshold(entry["id"], entry, where)
        tests.append(Test(entry["component"], threshold, tuple(entry.get("show", ()))))
    categories = tuple(
        Category(
            id=c["id"],
            when=c["when"],
            rule=parse_rule(c["when"], component_ids, where),
            source=c["source"],
            next_steps=tuple(c.get("next_steps", ())),
            final=bool(c.get("final", False)),
            sarcopenia=bool(c["sarcopenia"]),
        )
        for c in raw["categories"]
    )
    for component in component_ids:
        if not any(t.component == component for t in tests):
            raise CriteriaError(f"{where}: component {component!r} has no test")
        if not any(component in components_named(c.rule) for c in categories):
            raise CriteriaError(f"{where}: component {component!r} is used by no category")
    return Definition(
        id=definition_id,
        name=raw["name"],
        title=raw["title"],
        citation=raw["citation"],
        doi=raw.get("doi"),
        population=raw["population"],
        notes=tuple(raw.get("notes", ())),
        components=components,
        tests=tuple(tests),
        categories=categories,
    )


def category_column(definition: Definition) -> str:
    """Public column of a definition's category."""
    return f"{definition.id}_category"


def sarcopenia_column(definition: Definition) -> str:
    """Public column: true when the category is a sarcopenia diagnosis (any severity)."""
    return f"{definition.id}_sarcopenia"


@cache
def definition(definition_id: str) -> Definition:
    """One definition by id; raises KeyError naming the known ids."""
    if definition_id not in DEFINITION_IDS:
        known = ", ".join(DEFINITION_IDS)
        raise KeyError(f"unknown definition {definition_id!r}; known: {known}")
    return _load(definition_id)


def definitions(ids: tuple[str, ...] | None = None) -> list[Definition]:
    """The requested definitions (all by default), in the public order."""
    return [definition(i) for i in (ids or DEFINITION_IDS)]
