"""Consensus definitions loaded from the cited criteria files in `sarcokit/criteria/`, and the
local definition files users bring (same schema, checked whole on load)."""

from __future__ import annotations

import ast
import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path

# Re-exported: the public order of the definitions lives where the command line loads it cheaply.
from sarcokit.definition_ids import DEFINITION_IDS as DEFINITION_IDS
from sarcokit.i18n import register_labels
from sarcokit.rules import components_named, rule_problems
from sarcokit.thresholds import (
    CriteriaError,
    Threshold,
    build_threshold,
    threshold_problems,
)

# The criteria-file schema this code reads; every file says which one it was written for.
SCHEMA_VERSION = 1

INDETERMINATE = "indeterminate"
NOT_APPLICABLE = "not_applicable"

# Component roles: a diagnostic component may be named by category rules; an outcome measure
# or a case-finding screen is evaluated and reported but never changes the category.
ROLES = ("diagnostic", "outcome", "case_finding")
# How a component combines its tests: "measured" = low if any measured test is low, normal if
# all measured are normal (criteria.md §10.1); "all" = Kleene's or over every test, so it is
# normal only when every test is known and normal (a list of risk factors, two indices of one
# measurement that the definition joins with "or").
NORMAL_WHEN = ("measured", "all")


class DefinitionError(CriteriaError):
    """A definition file with problems; `problems` lists every one, each with its line."""

    def __init__(self, where: str, problems: Sequence[tuple[int | None, str]]) -> None:
        self.where = where
        self.problems = list(problems)
        lines = [f"{where}:{line or '?'}: {message}" for line, message in self.problems]
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''}\n" + "\n".join(lines))


@dataclass(frozen=True)
class Component:
    """A component of a definition (strength, muscle quantity, ...) and how to measure it."""

    id: str
    next_step: str
    states: tuple[str, str] = ("low", "normal")
    role: str = "diagnostic"
    normal_when: str = "measured"
    # Evaluated from this age (completed years) only; younger subjects read not_applicable.
    applies_from_age: float | None = None


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
    # Next steps given only where a rule over the components holds (step, rule text, rule).
    conditional_steps: tuple[tuple[str, str, ast.expr], ...] = ()


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
    schema: int = SCHEMA_VERSION
    # The definition applies from this age; younger subjects are not_applicable.
    min_age: float | None = None
    scope_source: str | None = None
    # SHA-256 of the file's bytes: which exact cut-offs produced a result.
    sha256: str = ""
    # A user's own file (not one shipped with sarcokit), and where it was read.
    local: bool = False
    path: str | None = None
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def category_ids(self) -> tuple[str, ...]:
        """Every category this definition can answer, `indeterminate` (and `not_applicable`
        where the definition has a scope) included."""
        scope = (NOT_APPLICABLE,) if self.min_age is not None else ()
        return (*(c.id for c in self.categories), INDETERMINATE, *scope)

    @property
    def diagnoses(self) -> bool:
        """Whether any category is a sarcopenia diagnosis (the community pathway has none)."""
        return any(c.sarcopenia for c in self.categories)

    @property
    def rule_components(self) -> tuple[Component, ...]:
        """The components category rules may name (outcomes and case-finding are reported)."""
        return tuple(c for c in self.components if c.role == "diagnostic")

    def tests_of(self, component: str) -> list[Test]:
        """The tests that decide a component."""
        return [t for t in self.tests if t.component == component]


class _Lines:
    """Finds the line of a table or key in a criteria file, for compiler-like messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def find(self, pattern: str, start: int = 0, stop: int | None = None) -> int | None:
        """1-based line of the first match of a regular expression at or after `start`."""
        compiled = re.compile(pattern)
        for number in range(start, stop if stop is not None else len(self.lines)):
            if compiled.search(self.lines[number]):
                return number + 1
        return None

    def entry(self, header: str, entry_id: str) -> int | None:
        """The line of `id = "entry_id"` inside the [[header]] tables."""
        first = self.find(rf"^\s*\[\[{re.escape(header)}\]\]")
        if first is None:
            return None
        return self.find(rf'^\s*id\s*=\s*"{re.escape(entry_id)}"', first - 1)

    def key_in(self, anchor: int | None, key: str) -> int | None:
        """The line of `key` within the table that starts at or around `anchor`."""
        if anchor is None:
            return None
        end = self.find(r"^\s*\[", anchor) or len(self.lines) + 1
        start = max(anchor - 3, 0)
        return self.find(rf"^\s*{re.escape(key)}\s*=", start, end - 1) or anchor


def known_inputs() -> frozenset[str]:
    """Every column a test may read: subject-record fields, derived values, screening scores
    and flags, and the secondary tools' flags."""
    from sarcokit.engine import secondary_columns
    from sarcokit.equations import DERIVED
    from sarcokit.fields import input_columns
    from sarcokit.screening import FLAG_COLUMNS, SCORE_COLUMNS

    return frozenset(
        {
            *input_columns(),
            *DERIVED,
            *FLAG_COLUMNS.values(),
            *SCORE_COLUMNS.values(),
            "ct_low_muscle",
            *secondary_columns(()),
        }
    )


_TOP_KEYS = frozenset(
    {
        "schema",
        "id",
        "name",
        "title",
        "citation",
        "doi",
        "population",
        "notes",
        "scope",
        "components",
        "tests",
        "categories",
        "labels",
    }
)
_REQUIRED = ("schema", "id", "name", "title", "citation", "population")


def parse_definition(text: str, where: str, *, local: bool) -> Definition:
    """Check a whole criteria file and build the definition; raises DefinitionError listing
    every problem found, each with its line, rather than stopping at the first."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) if match else None
        raise DefinitionError(where, [(line, f"not valid TOML: {error}")]) from None
    at = _Lines(text)
    problems: list[tuple[int | None, str]] = []

    def problem(line: int | None, message: str) -> None:
        problems.append((line, message))

    for key in _REQUIRED:
        if key not in raw:
            problem(1, f"missing top-level key {key!r}")
    for key in sorted(set(raw) - _TOP_KEYS):
        problem(at.find(rf"^\s*{re.escape(key)}\s*="), f"unknown top-level key {key!r}")
    schema = raw.get("schema")
    if schema is not None and schema != SCHEMA_VERSION:
        problem(
            at.find(r"^\s*schema\s*="),
            f"schema = {schema!r}; this sarcokit reads schema {SCHEMA_VERSION}",
        )
    definition_id = str(raw.get("id", ""))
    if "id" in raw and not re.fullmatch(r"[a-z][a-z0-9_]*", definition_id):
        problem(
            at.find(r"^\s*id\s*="),
            f"id {definition_id!r} must be lower-case letters, digits and _ (a column prefix)",
        )
    if local and definition_id in DEFINITION_IDS:
        problem(
            at.find(r"^\s*id\s*="),
            f"id {definition_id!r} is a built-in definition; a local file needs its own id",
        )

    # Components
    components: list[Component] = []
    raw_components = raw.get("components", {})
    if not isinstance(raw_components, Mapping) or not raw_components:
        problem(1, "no [components.<id>] tables")
        raw_components = {}
    for cid, entry in raw_components.items():
        line = at.find(rf"^\s*\[components\.{re.escape(cid)}\]")
        if not isinstance(entry, Mapping):
            problem(line, f"component {cid!r} is not a table")
            continue
        role = entry.get("role", "diagnostic")
        normal_when = entry.get("normal_when", "measured")
        if "next_step" not in entry:
            problem(line, f"component {cid!r} lacks next_step")
        if role not in ROLES:
            problem(
                at.key_in(line, "role"), f"component {cid!r} has role {role!r}; allowed: {ROLES}"
            )
        if normal_when not in NORMAL_WHEN:
            problem(
                at.key_in(line, "normal_when"),
                f"component {cid!r} has normal_when {normal_when!r}; allowed: {NORMAL_WHEN}",
            )
        states = tuple(entry.get("states", ("low", "normal")))
        if len(states) != 2:
            problem(at.key_in(line, "states"), f"component {cid!r} needs two states")
            states = ("low", "normal")
        applies = entry.get("applies_from_age")
        components.append(
            Component(
                cid,
                str(entry.get("next_step", "")),
                (str(states[0]), str(states[1])),
                str(role),
                str(normal_when),
                None if applies is None else float(applies),
            )
        )
    component_ids = [c.id for c in components]
    diagnostic_ids = [c.id for c in components if c.role == "diagnostic"]

    # Tests
    inputs = known_inputs()
    tests: list[Test] = []
    raw_tests = raw.get("tests", [])
    if not raw_tests:
        problem(1, "no [[tests]]")
    seen_tests: set[str] = set()
    for index, entry in enumerate(raw_tests):
        test_id = str(entry.get("id", f"#{index + 1}"))
        line = at.entry("tests", test_id) if "id" in entry else None
        if "id" not in entry:
            problem(None, f"test number {index + 1} lacks an id")
        if test_id in seen_tests:
            problem(line, f"test id {test_id!r} is used twice")
        seen_tests.add(test_id)
        component = entry.get("component")
        if component not in component_ids:
            problem(
                at.key_in(line, "component"),
                f"test {test_id!r} names unknown component {component!r}; "
                f"declared: {', '.join(component_ids) or 'none'}",
            )
        input_name = entry.get("input")
        if input_name is not None and input_name not in inputs:
            problem(
                at.key_in(line, "input"),
                f"test {test_id!r} reads unknown input field {input_name!r} "
                "(not a subject-record field, derived value or score)",
            )
        found = threshold_problems(test_id, entry)
        for message in found:
            key = next(
                (k for k in ("low_when", "source", "cutoffs", "cutoff", "codes") if k in message),
                "id",
            )
            problem(at.key_in(line, key), message)
        if not found and component in component_ids:
            tests.append(
                Test(str(component), build_threshold(test_id, entry), tuple(entry.get("show", ())))
            )

    # Categories
    categories: list[Category] = []
    raw_categories = raw.get("categories", [])
    if not raw_categories:
        problem(1, "no [[categories]]")
    category_ids = [str(c.get("id")) for c in raw_categories]
    for index, entry in enumerate(raw_categories):
        category_id = str(entry.get("id", f"#{index + 1}"))
        line = at.entry("categories", category_id) if "id" in entry else None
        if category_ids.count(category_id) > 1 and category_ids.index(category_id) != index:
            problem(line, f"category id {category_id!r} is used twice")
        if category_id in (INDETERMINATE, NOT_APPLICABLE):
            problem(line, f"category id {category_id!r} is reserved")
        for key in ("when", "source", "sarcopenia"):
            if key not in entry:
                problem(line, f"category {category_id!r} lacks {key!r}")
        when = str(entry.get("when", "False"))
        messages, rule = rule_problems(when, diagnostic_ids, component_ids, category_ids)
        for message in messages:
            problem(at.key_in(line, "when"), f"category {category_id!r}: {message}")
        steps: list[str] = []
        conditional: list[tuple[str, str, ast.expr]] = []
        for step in entry.get("next_steps", []):
            if isinstance(step, str):
                steps.append(step)
                continue
            step_when = str(step.get("when", ""))
            step_messages, step_rule = rule_problems(
                step_when, diagnostic_ids, component_ids, category_ids
            )
            for message in step_messages:
                problem(at.key_in(line, "next_steps"), f"category {category_id!r}: {message}")
            if step_rule is not None and "step" in step:
                conditional.append((str(step["step"]), step_when, step_rule))
            elif "step" not in step:
                problem(
                    at.key_in(line, "next_steps"), f"category {category_id!r}: step lacks 'step'"
                )
        if rule is not None:
            categories.append(
                Category(
                    id=category_id,
                    when=when,
                    rule=rule,
                    source=str(entry.get("source", "")),
                    next_steps=tuple(steps),
                    final=bool(entry.get("final", False)),
                    sarcopenia=bool(entry.get("sarcopenia", False)),
                    conditional_steps=tuple(conditional),
                )
            )
    for component in components:
        line = at.find(rf"^\s*\[components\.{re.escape(component.id)}\]")
        if not any(t.component == component.id for t in tests) and component.id in {
            e.get("component") for e in raw_tests
        } - {None}:
            continue  # its tests already reported their own problems
        if not any(t.component == component.id for t in tests):
            problem(line, f"component {component.id!r} has no test")
        used = any(component.id in components_named(c.rule) for c in categories)
        if component.role == "diagnostic" and not used and len(categories) == len(raw_categories):
            problem(line, f"component {component.id!r} is used by no category")

    scope = raw.get("scope", {})
    min_age = scope.get("min_age") if isinstance(scope, Mapping) else None
    if scope and (not isinstance(min_age, int | float) or not scope.get("source")):
        problem(at.find(r"^\s*\[scope\]"), "[scope] needs min_age (a number) and a source")
    for key in sorted(set(scope) - {"min_age", "source"}) if isinstance(scope, Mapping) else []:
        problem(at.find(r"^\s*\[scope\]"), f"[scope] has unknown key {key!r}")
    if problems:
        raise DefinitionError(where, sorted(problems, key=lambda p: (p[0] or 0, p[1])))
    return Definition(
        id=definition_id,
        name=str(raw["name"]),
        title=str(raw["title"]),
        citation=str(raw["citation"]),
        doi=raw.get("doi"),
        population=str(raw["population"]),
        notes=tuple(raw.get("notes", ())),
        components=tuple(components),
        tests=tuple(tests),
        categories=tuple(categories),
        schema=int(schema or SCHEMA_VERSION),
        min_age=None if min_age is None else float(min_age),
        scope_source=None if not scope else str(scope.get("source")),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        local=local,
        labels={lang: dict(entries) for lang, entries in raw.get("labels", {}).items()},
    )


def _load(definition_id: str) -> Definition:
    where = f"criteria/{definition_id}.toml"
    text = files("sarcokit").joinpath(where).read_text("utf-8")
    loaded = parse_definition(text, where, local=False)
    if loaded.id != definition_id:
        raise CriteriaError(f"{where}: id {loaded.id!r} does not match the file name")
    return loaded


# Local definitions loaded in this process, by id; and callbacks that drop compiled pipelines
# when one is (re)loaded, since they are cached by definition id.
_LOCAL: dict[str, Definition] = {}
_ON_LOAD: list[Callable[[], None]] = []


def on_local_load(callback: Callable[[], None]) -> None:
    """Run `callback` whenever a local definition is loaded (to clear caches keyed by id)."""
    _ON_LOAD.append(callback)


def load_definition(path: str | Path) -> Definition:
    """Read a user's own definition file, check all of it, and make its id usable everywhere a
    built-in id is; raises DefinitionError listing every problem with its line."""
    where = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as error:
        raise DefinitionError(where, [(None, f"cannot read the file: {error.strerror}")]) from None
    loaded = parse_definition(text, where, local=True)
    loaded = Definition(**{**loaded.__dict__, "path": where})
    for lang, labels in loaded.labels.items():
        register_labels(lang, {str(k): str(v) for k, v in labels.items()})
    previous = _LOCAL.get(loaded.id)
    _LOCAL[loaded.id] = loaded
    if previous is None or previous.sha256 != loaded.sha256:
        for callback in _ON_LOAD:
            callback()
    return loaded


def local_definitions() -> dict[str, Definition]:
    """The local definitions loaded in this process, by id."""
    return dict(_LOCAL)


def category_column(definition: Definition) -> str:
    """Public column of a definition's category."""
    return f"{definition.id}_category"


def sarcopenia_column(definition: Definition) -> str:
    """Public column: true when the category is a sarcopenia diagnosis (any severity)."""
    return f"{definition.id}_sarcopenia"


@cache
def _builtin(definition_id: str) -> Definition:
    return _load(definition_id)


def definition(definition_id: str) -> Definition:
    """One definition by id (built-in or loaded locally); raises KeyError naming the known ids."""
    if definition_id in _LOCAL:
        return _LOCAL[definition_id]
    if definition_id not in DEFINITION_IDS:
        known = ", ".join((*DEFINITION_IDS, *_LOCAL))
        raise KeyError(f"unknown definition {definition_id!r}; known: {known}")
    return _builtin(definition_id)


def definitions(ids: tuple[str, ...] | None = None) -> list[Definition]:
    """The requested definitions (all built-in ones by default), in the order given."""
    return [definition(i) for i in (ids or DEFINITION_IDS)]


def definitions_hash(ids: Sequence[str]) -> str:
    """SHA-256 over the files of the given definitions (id and file hash, in the order given):
    stored with every result so it can be traced to the exact cut-offs that produced it."""
    digest = hashlib.sha256()
    for definition_id in ids:
        digest.update(f"{definition_id}:{definition(definition_id).sha256}\n".encode())
    return digest.hexdigest()
