"""Consensus definitions loaded from the cited criteria files in `sarcokit/criteria/`, and the
local definition files users bring (same schema, checked whole on load)."""

from __future__ import annotations

import ast
import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

# Re-exported: the public order of the definitions lives where the command line loads it cheaply.
from sarcokit.definition_ids import DEFINITION_IDS as DEFINITION_IDS
from sarcokit.i18n import Lang, Message, register_labels, translated
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

    def in_language(self, lang: Lang) -> list[tuple[int | None, str]]:
        """Every problem with its line, each message in `lang`."""
        return [(line, translated(message, lang)) for line, message in self.problems]


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
    # Where the guideline says what to do next (the citation of `next_steps`), if it does.
    steps_source: str | None = None


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


def _in_category(category_id: str, message: str) -> Message:
    return Message("loader.in_category", category=category_id, message=message)


# The TOML type of every key the loader reads, checked before anything else so that a value of
# the wrong type is named with its line instead of failing somewhere in the checks that follow.
# A type is a Python type, a tuple of them, ["list", item], {key: type} for a table with those
# keys (others are the later checks' concern), or ["map", value] for a table of any keys.
_NUMBER = (int, float)
_CUTOFF_TYPES: dict[str, Any] = {
    "any": _NUMBER, "male": _NUMBER, "female": _NUMBER, "methods": ["list", str],
    "low_when": str, "age_from": _NUMBER, "age_below": _NUMBER,
}  # fmt: skip
_FILE_TYPES: dict[str, Any] = {
    "schema": int, "id": str, "name": str, "title": str, "citation": str, "doi": str,
    "population": str, "notes": ["list", str],
    "scope": {"min_age": _NUMBER, "source": str},
    "labels": ["map", ["map", str]],
    "components": ["map", {
        "role": str, "normal_when": str, "next_step": str, "states": ["list", str],
        "applies_from_age": _NUMBER,
    }],
    "tests": ["list", {
        "id": str, "component": str, "input": str, "low_when": str, "source": str,
        "cutoff": _CUTOFF_TYPES, "cutoffs": ["list", _CUTOFF_TYPES], "codes": ["list", str],
        "show": ["list", str], "unable": {"field": str, "value": bool},
    }],
    "categories": ["list", {
        "id": str, "when": str, "source": str, "sarcopenia": bool, "final": bool,
        "next_steps_source": str,
        "next_steps": ["list", (str, {"when": str, "step": str})],
    }],
}  # fmt: skip
_TOML_KIND = {str: "text", bool: "true or false", int: "a number", float: "a number",
              dict: "a table", list: "an array"}  # fmt: skip


def _type_problems(value: Any, expected: Any, where: str) -> list[tuple[str, Any, str]]:
    """(key path, value, what was expected) for each value of the wrong TOML type."""
    found: list[tuple[str, Any, str]] = []
    if isinstance(expected, list):
        kind, inner = expected
        if not isinstance(value, list if kind == "list" else dict):
            return [(where, value, "an array" if kind == "list" else "a table")]
        pairs: list[tuple[Any, Any]] = (
            list(enumerate(value)) if isinstance(value, list) else list(value.items())
        )
        for key, item in pairs:
            inside = f"{where}[{key}]" if kind == "list" else f"{where}.{key}"
            found += _type_problems(item, inner, inside)
        return found
    if isinstance(expected, dict):
        if not isinstance(value, dict):
            return [(where, value, "a table")]
        for key, item in value.items():
            if key in expected:
                found += _type_problems(item, expected[key], f"{where}.{key}".lstrip("."))
        return found
    options = expected if isinstance(expected, tuple) else (expected,)
    for option in options:
        if isinstance(option, dict | list):
            if not _type_problems(value, option, where):
                return []
        elif isinstance(value, option) and not (isinstance(value, bool) and option is not bool):
            return []
    kinds = ("a table" if isinstance(o, dict) else _TOML_KIND.get(o, str(o)) for o in options)
    wanted = " or ".join(dict.fromkeys(kinds))
    return [(where, value, wanted)]


def _line_of(at: _Lines, path: str) -> int | None:
    """The line of a key path such as `tests[2].cutoff.male` or `components.strength.role`."""
    parts = re.findall(r"[^.\[\]]+", path)
    head, rest = parts[0], parts[1:]
    anchor: int | None = None
    if head in ("tests", "categories") and rest and rest[0].isdigit():
        anchor = 0
        for _ in range(int(rest[0]) + 1):
            anchor = at.find(rf"^\s*\[\[{head}\]\]", anchor or 0)
            if anchor is None:
                return None
        rest = rest[1:]
    elif head in ("components", "labels") and rest:
        anchor = at.find(rf"^\s*\[{head}\.{re.escape(rest[0])}\]")
        rest = rest[1:]
    elif head == "scope":
        anchor = at.find(r"^\s*\[scope\]")
    keys = [part for part in rest if not part.isdigit()]
    if anchor is None:
        return at.find(rf"^\s*{re.escape(head)}\s*=")
    if not keys:
        return anchor
    end = at.find(r"^\s*\[", anchor) or len(at.lines) + 1
    return at.find(rf"^\s*{re.escape(keys[0])}\s*=", anchor, end - 1) or anchor


def parse_definition(text: str, where: str, *, local: bool) -> Definition:
    """Check a whole criteria file and build the definition; raises DefinitionError listing
    every problem found, each with its line, rather than stopping at the first."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) if match else None
        raise DefinitionError(
            where, [(line, Message("loader.not_toml", error=str(error)))]
        ) from None
    at = _Lines(text)
    problems: list[tuple[int | None, str]] = []
    for path, value, expected in _type_problems(raw, _FILE_TYPES, ""):
        shown = value if isinstance(value, str | int | float | bool) else _TOML_KIND[type(value)]
        line = _line_of(at, path)
        problems.append(
            (line, Message("loader.wrong_type", key=path, value=shown, expected=expected))
        )
    if problems:
        # The checks below read these values: they are named here, each with its line.
        raise DefinitionError(where, problems)

    def problem(line: int | None, message: str) -> None:
        problems.append((line, message))

    for key in _REQUIRED:
        if key not in raw:
            problem(1, Message("loader.missing_key", key=key))
    for key in sorted(set(raw) - _TOP_KEYS):
        problem(at.find(rf"^\s*{re.escape(key)}\s*="), Message("loader.unknown_key", key=key))
    schema = raw.get("schema")
    if schema is not None and schema != SCHEMA_VERSION:
        problem(
            at.find(r"^\s*schema\s*="),
            Message("loader.schema", schema=schema, version=SCHEMA_VERSION),
        )
    definition_id = str(raw.get("id", ""))
    if "id" in raw and not re.fullmatch(r"[a-z][a-z0-9_]*", definition_id):
        problem(
            at.find(r"^\s*id\s*="),
            Message("loader.id_form", id=definition_id),
        )
    if local and definition_id in DEFINITION_IDS:
        problem(
            at.find(r"^\s*id\s*="),
            Message("loader.builtin_id", id=definition_id),
        )

    # Components
    components: list[Component] = []
    raw_components = raw.get("components", {})
    if not isinstance(raw_components, Mapping) or not raw_components:
        problem(1, Message("loader.no_components"))
        raw_components = {}
    for cid, entry in raw_components.items():
        line = at.find(rf"^\s*\[components\.{re.escape(cid)}\]")
        if not isinstance(entry, Mapping):
            problem(line, Message("loader.component_not_table", component=cid))
            continue
        role = entry.get("role", "diagnostic")
        normal_when = entry.get("normal_when", "measured")
        if "next_step" not in entry:
            problem(line, Message("loader.component_lacks_next_step", component=cid))
        if role not in ROLES:
            problem(
                at.key_in(line, "role"),
                Message("loader.component_role", component=cid, role=role, allowed=ROLES),
            )
        if normal_when not in NORMAL_WHEN:
            problem(
                at.key_in(line, "normal_when"),
                Message(
                    "loader.component_normal_when",
                    component=cid,
                    normal_when=normal_when,
                    allowed=NORMAL_WHEN,
                ),
            )
        states = tuple(entry.get("states", ("low", "normal")))
        if len(states) != 2:
            problem(at.key_in(line, "states"), Message("loader.component_states", component=cid))
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
        problem(1, Message("loader.no_tests"))
    seen_tests: set[str] = set()
    for index, entry in enumerate(raw_tests):
        test_id = str(entry.get("id", f"#{index + 1}"))
        line = at.entry("tests", test_id) if "id" in entry else None
        if "id" not in entry:
            problem(None, Message("loader.test_lacks_id", number=index + 1))
        if test_id in seen_tests:
            problem(line, Message("loader.test_id_twice", test=test_id))
        seen_tests.add(test_id)
        component = entry.get("component")
        if component not in component_ids:
            problem(
                at.key_in(line, "component"),
                Message(
                    "loader.test_unknown_component",
                    test=test_id,
                    component=component,
                    declared=", ".join(component_ids) or Message("loader.none"),
                ),
            )
        input_name = entry.get("input")
        if input_name is not None and input_name not in inputs:
            problem(
                at.key_in(line, "input"),
                Message("loader.test_unknown_input", test=test_id, input=input_name),
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
        problem(1, Message("loader.no_categories"))
    category_ids = [str(c.get("id")) for c in raw_categories]
    for index, entry in enumerate(raw_categories):
        category_id = str(entry.get("id", f"#{index + 1}"))
        line = at.entry("categories", category_id) if "id" in entry else None
        if category_ids.count(category_id) > 1 and category_ids.index(category_id) != index:
            problem(line, Message("loader.category_id_twice", category=category_id))
        if category_id in (INDETERMINATE, NOT_APPLICABLE):
            problem(line, Message("loader.category_reserved", category=category_id))
        for key in ("when", "source", "sarcopenia"):
            if key not in entry:
                problem(line, Message("loader.category_lacks", category=category_id, key=key))
        when = str(entry.get("when", "False"))
        messages, rule = rule_problems(when, diagnostic_ids, component_ids, category_ids)
        for message in messages:
            problem(at.key_in(line, "when"), _in_category(category_id, message))
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
                problem(at.key_in(line, "next_steps"), _in_category(category_id, message))
            if step_rule is not None and "step" in step:
                conditional.append((str(step["step"]), step_when, step_rule))
            elif "step" not in step:
                problem(
                    at.key_in(line, "next_steps"),
                    _in_category(category_id, Message("loader.step_lacks_step")),
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
                    steps_source=(
                        str(entry["next_steps_source"]) if "next_steps_source" in entry else None
                    ),
                )
            )
    for component in components:
        line = at.find(rf"^\s*\[components\.{re.escape(component.id)}\]")
        if not any(t.component == component.id for t in tests) and component.id in {
            e.get("component") for e in raw_tests
        } - {None}:
            continue  # its tests already reported their own problems
        if not any(t.component == component.id for t in tests):
            problem(line, Message("loader.component_no_test", component=component.id))
        used = any(component.id in components_named(c.rule) for c in categories)
        if component.role == "diagnostic" and not used and len(categories) == len(raw_categories):
            problem(line, Message("loader.component_unused", component=component.id))

    scope = raw.get("scope", {})
    min_age = scope.get("min_age") if isinstance(scope, Mapping) else None
    if scope and (not isinstance(min_age, int | float) or not scope.get("source")):
        problem(at.find(r"^\s*\[scope\]"), Message("loader.scope"))
    for key in sorted(set(scope) - {"min_age", "source"}) if isinstance(scope, Mapping) else []:
        problem(at.find(r"^\s*\[scope\]"), Message("loader.scope_key", key=key))
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


# Local definitions: the current one of each id in this process, and every version ever read,
# by (id, SHA-256), so a result can be reproduced under the exact text that produced it while
# a newer text of the same id is current (the clinic keeps every uploaded version).
_LOCAL: dict[str, Definition] = {}
_VERSIONS: dict[tuple[str, str], Definition] = {}

# A definition id (its current version) or one exact version of a definition.
DefinitionRef = str | Definition


def local_from_text(text: str, where: str) -> Definition:
    """Check a user's definition text and keep this exact version for the engine (not made
    current: see use_local); raises DefinitionError listing every problem with its line."""
    parsed = parse_definition(text, where, local=True)
    known = _VERSIONS.get((parsed.id, parsed.sha256))
    if known is not None:
        return known
    loaded = Definition(**{**parsed.__dict__, "path": where})
    for lang, labels in loaded.labels.items():
        register_labels(lang, {str(k): str(v) for k, v in labels.items()})
    _VERSIONS[(loaded.id, loaded.sha256)] = loaded
    return loaded


def use_local(loaded: Definition) -> None:
    """Make a local definition the current one of its id in this process."""
    _VERSIONS.setdefault((loaded.id, loaded.sha256), loaded)
    _LOCAL[loaded.id] = loaded


def load_definition(path: str | Path) -> Definition:
    """Read a user's own definition file, check all of it, and make its id usable everywhere a
    built-in id is; raises DefinitionError listing every problem with its line."""
    where = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as error:
        message = Message("loader.cannot_read", error=error.strerror)
        raise DefinitionError(where, [(None, message)]) from None
    loaded = local_from_text(text, where)
    use_local(loaded)
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


def resolve(ref: DefinitionRef) -> Definition:
    """A definition given by id (its current version) or as one exact version."""
    return ref if isinstance(ref, Definition) else definition(ref)


def definitions(ids: Sequence[DefinitionRef] | None = None) -> list[Definition]:
    """The requested definitions (all built-in ones by default), in the order given."""
    return [resolve(i) for i in (ids or DEFINITION_IDS)]


# Identifies one exact version of a definition: (id, SHA-256 of its file).
DefinitionKey = tuple[str, str]


def definition_key(ref: DefinitionRef) -> DefinitionKey:
    """The (id, SHA-256) of a definition: compiled pipelines are cached by it, so two versions
    of one local id never share one."""
    chosen = resolve(ref)
    return (chosen.id, chosen.sha256)


def definition_version(key: DefinitionKey) -> Definition:
    """The definition of an exact (id, SHA-256); KeyError when this process never read it."""
    definition_id, sha256 = key
    if (definition_id, sha256) in _VERSIONS:
        return _VERSIONS[(definition_id, sha256)]
    chosen = definition(definition_id)
    if chosen.sha256 != sha256:
        raise KeyError(f"definition {definition_id!r} with SHA-256 {sha256} was never read")
    return chosen


def definitions_hash(ids: Sequence[DefinitionRef]) -> str:
    """SHA-256 over the files of the given definitions (id and file hash, in the order given):
    stored with every result so it can be traced to the exact cut-offs that produced it."""
    digest = hashlib.sha256()
    for ref in ids:
        chosen = resolve(ref)
        digest.update(f"{chosen.id}:{chosen.sha256}\n".encode())
    return digest.hexdigest()
