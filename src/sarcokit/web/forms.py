"""The visit form and questionnaires: what they ask, and their answers as a subject record."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from sarcokit.fields import (
    FieldSpec,
    InputError,
    Problem,
    field_specs,
    input_columns,
    parse_record,
    trials_name,
)

YES, NO = "yes", "no"


@dataclass(frozen=True)
class Unit:
    """A unit a value may be entered in, and the record field that takes it."""

    field: str
    symbol: str


@dataclass(frozen=True)
class FormField:
    """One input of the visit form."""

    field: str
    label: str
    kind: str
    units: tuple[Unit, ...]
    choices: tuple[tuple[str, str], ...]
    trials: int
    minimum: float | None
    maximum: float | None


@dataclass(frozen=True)
class Section:
    """A titled group of inputs; a collapsed one is shown folded (optional inputs)."""

    id: str
    title: str
    fields: tuple[FormField, ...]
    collapsed: bool = False


@dataclass(frozen=True)
class SecondaryResult:
    """A value of the result's secondary block shown on the visit page: path, label, unit."""

    path: tuple[str, ...]
    label: str
    unit: str
    values: Mapping[str, str]


@dataclass(frozen=True)
class Answer:
    """One answer to a questionnaire item and the value it records."""

    value: Any
    text: Mapping[str, str]

    @property
    def form_value(self) -> str:
        """The answer as a form posts it."""
        return _form_text(self.value)


@dataclass(frozen=True)
class Item:
    """A questionnaire item as worded in the validated instrument."""

    field: str
    component: Mapping[str, str]
    question: Mapping[str, str]
    answers: tuple[Answer, ...]


@dataclass(frozen=True)
class Questionnaire:
    """A validated case-finding questionnaire."""

    id: str
    title: Mapping[str, str]
    citation: str
    citation_zh: str
    note: str
    items: tuple[Item, ...]


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, list):
        return "; ".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unit_symbol(field: str) -> str:
    spec, alternative = input_columns()[field]
    found = spec.alternative(alternative)
    return found.unit if found else spec.unit or ""


@cache
def _form_file() -> dict[str, Any]:
    return tomllib.loads(files("sarcokit.web").joinpath("visit_form.toml").read_text("utf-8"))


def _labelled(entry: Mapping[str, str], name: str, where: str) -> dict[str, str]:
    # A record field's label is its one label in fields.toml; other values name their own.
    spec = field_specs().get(name)
    label = spec.label if spec is not None else entry.get("label", "")
    if not label:
        raise KeyError(f"visit_form.toml: {where} {name!r} has no label (fields.toml or here)")
    return {**entry, "label": label}


def derived_labels() -> dict[str, dict[str, str]]:
    """Derived value → its label (msgid) and unit, for the values a visit page shows."""
    shown: dict[str, dict[str, str]] = _form_file()["derived"]
    return {name: _labelled(entry, name, "derived") for name, entry in shown.items()}


def history_specs() -> list[dict[str, str]]:
    """The measures a patient's history charts: engine column, label (msgid), unit, and which
    way is better."""
    charted = [_labelled(spec, spec["input"], "history") for spec in _form_file()["history"]]
    for spec in charted:
        if spec.get("better") not in ("higher", "lower"):
            raise ValueError(
                f"visit_form.toml: history {spec.get('input')!r} has better ="
                f" {spec.get('better')!r}; expected 'higher' or 'lower'"
            )
    return charted


@cache
def sections() -> tuple[Section, ...]:
    """The measurement sections of the visit form."""
    raw = _form_file()
    specs = field_specs()
    built = []
    for section in raw["sections"]:
        entries = []
        for entry in section["fields"]:
            entries.append(_form_field(entry, specs.get(entry["field"])))
        built.append(
            Section(
                section["id"],
                section["title"],
                tuple(entries),
                bool(section.get("collapsed", False)),
            )
        )
    return tuple(built)


def _form_field(entry: Mapping[str, Any], spec: FieldSpec | None) -> FormField:
    if spec is None:
        # A list such as `conditions`, which the core reads from text separated by ';'.
        if entry.get("kind") != "list":
            raise KeyError(f"visit_form.toml: {entry['field']!r} is not a subject-record field")
        unit = Unit(entry["field"], "")
        return FormField(entry["field"], entry["label"], "list", (unit,), (), 1, None, None)
    if "label" in entry or not spec.label:
        # One label per field: the form takes the field's own, never a second wording.
        raise KeyError(
            f"visit_form.toml: {entry['field']!r} takes its label from fields.toml"
            " (give it there, once)"
        )
    units = tuple(Unit(u, _unit_symbol(u)) for u in entry.get("units", [entry["field"]]))
    choices = tuple(entry.get("choices", {}).items()) or tuple((v, v) for v in spec.values)
    return FormField(
        field=entry["field"],
        label=spec.label,
        kind=spec.kind,
        units=units,
        choices=choices,
        trials=int(entry.get("trials", 1)),
        minimum=spec.min,
        maximum=spec.max,
    )


def secondary_results() -> tuple[SecondaryResult, ...]:
    """The secondary-sarcopenia values a visit page shows when they are known."""
    return tuple(
        SecondaryResult(
            tuple(entry["path"].split(".")),
            entry["label"],
            entry.get("unit", ""),
            entry.get("values", {}),
        )
        for entry in _form_file()["secondary_results"]
    )


@cache
def questionnaires() -> tuple[Questionnaire, ...]:
    """SARC-F and MSRA with their item wording in English and Chinese."""
    path = files("sarcokit").joinpath("reference/questionnaires.toml")
    raw = tomllib.loads(path.read_text("utf-8"))
    return tuple(
        Questionnaire(
            id=key,
            title=body["title"],
            citation=body["citation"],
            citation_zh=body.get("citation_zh", ""),
            note=body.get("note", ""),
            items=tuple(
                Item(
                    field=item["field"],
                    component=item["component"],
                    question=item["question"],
                    answers=tuple(
                        Answer(a["value"], {k: v for k, v in a.items() if k != "value"})
                        for a in item["answers"]
                    ),
                )
                for item in body["items"]
            ),
        )
        for key, body in raw.items()
    )


def _problem(field: str, value: Any, expected: str) -> Problem:
    return Problem(
        field, value, expected, f"{field} = {value!r}; expected {expected}", "not_recognised"
    )


def _boolean(name: str, text: str) -> bool:
    if text not in (YES, NO):
        raise InputError([_problem(name, text, f"{YES} or {NO}")])
    return text == YES


def _trials(form_field: FormField, unit: Unit, form: Mapping[str, str]) -> dict[str, Any]:
    given = [
        form.get(f"{form_field.field}__{n}", "").strip() for n in range(1, form_field.trials + 1)
    ]
    given = [t for t in given if t]
    if not given:
        return {}
    # Each trial is checked by the core, so a bad one is named like any other field; every
    # trial is kept, in the unit it was entered in.
    values = [float(parse_record({unit.field: t})[unit.field]) for t in given]
    listed = trials_name(unit.field)
    return {listed: values} if listed else {unit.field: max(values)}


def read_measurements(form: Mapping[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """The visit form's answers as subject-record fields (blank inputs are left out, not zero),
    and every problem with the others, all in one round."""
    record: dict[str, Any] = {}
    problems: list[Problem] = []
    for section in sections():
        for form_field in section.fields:
            try:
                record.update(_field_value(form_field, form))
            except InputError as error:
                problems.extend(error.problems)
    for questionnaire in questionnaires():
        for item in questionnaire.items:
            text = form.get(item.field, "").strip()
            if not text:
                continue
            allowed = {a.form_value: a.value for a in item.answers}
            if text in allowed:
                record[item.field] = allowed[text]
            else:
                problems.append(_problem(item.field, text, f"one of {', '.join(allowed)}"))
    return record, problems


def _field_value(form_field: FormField, form: Mapping[str, str]) -> dict[str, Any]:
    name = form_field.field
    chosen = form.get(f"{name}__unit", form_field.units[0].field)
    unit = next((u for u in form_field.units if u.field == chosen), None)
    if unit is None:
        expected = f"one of {', '.join(u.field for u in form_field.units)}"
        raise InputError([_problem(f"{name}__unit", chosen, expected)])
    if form_field.trials > 1:
        return _trials(form_field, unit, form)
    text = form.get(name, "").strip()
    if not text:
        return {}
    if form_field.kind == "boolean":
        return {name: _boolean(name, text)}
    return {unit.field: text}


def form_values(measurements: Mapping[str, Any]) -> dict[str, str]:
    """A stored record as the visit form's inputs, to correct it."""
    values: dict[str, str] = {}
    for section in sections():
        for form_field in section.fields:
            for unit in form_field.units:
                if unit.field in measurements:
                    values[f"{form_field.field}__unit"] = unit.field
                    values[_input_name(form_field)] = _form_text(measurements[unit.field])
                listed = trials_name(unit.field)
                if form_field.trials > 1 and listed is not None and listed in measurements:
                    values[f"{form_field.field}__unit"] = unit.field
                    for n, trial in enumerate(measurements[listed], start=1):
                        values[f"{form_field.field}__{n}"] = _form_text(trial)
    for questionnaire in questionnaires():
        for item in questionnaire.items:
            if item.field in measurements:
                values[item.field] = _form_text(measurements[item.field])
    return values


def _input_name(form_field: FormField) -> str:
    # A field asked in trials shows a single stored value as its first trial.
    return f"{form_field.field}__1" if form_field.trials > 1 else form_field.field


@cache
def form_inputs() -> dict[str, FormField]:
    """Record column (a field or one of its units) → the visit-form input that takes it."""
    inputs: dict[str, FormField] = {}
    for section in sections():
        for form_field in section.fields:
            inputs[form_field.field] = form_field
            inputs.update((unit.field, form_field) for unit in form_field.units)
    return inputs


def _label_ids() -> dict[str, str]:
    return {name: form_field.label for name, form_field in form_inputs().items()}


# The inputs of the account, patient and settings forms, named as those forms label them.
_PAGE_LABELS = {
    "username": "Username",
    "display_name": "Full name",
    "password": "New password",
    "roles": "Roles",
    "language": "Language",
    "record_number": "Record number",
    "name": "Name",
    "sex": "Sex",
    "date_of_birth": "Date of birth",
    "visit_date": "Visit date",
    "clinic_name": "Clinic name (heads every report)",
    "definitions": "Clinic definitions",
}


def field_label(name: str, gettext: Callable[..., str], language: str) -> str | None:
    """How the form names an input (translated), for messages that name the field."""
    if name in _label_ids():
        return gettext(_label_ids()[name])
    if name in _PAGE_LABELS:
        return gettext(_PAGE_LABELS[name])
    key = "zh" if language == "zh-CN" else "en"
    for questionnaire in questionnaires():
        for item in questionnaire.items:
            if item.field == name:
                return f"{questionnaire.title[key]}: {item.component[key]}"
    return None


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def problem_text(problem: Problem, gettext: Callable[..., str], language: str) -> str:
    """A refused value as a clinician reads it, in the reader's language, naming the input."""
    label = field_label(problem.field, gettext, language) or problem.field
    columns = input_columns()
    spec, unit_name = columns.get(problem.field, (None, None))
    unit = _unit_symbol(problem.field) if spec is not None else ""
    value = _shown(problem.value)
    if problem.code == "range" and problem.suggestion:
        return gettext(
            "%(label)s %(value)s %(unit)s is not plausible — did you mean %(suggested)s?",
            label=label,
            value=value,
            unit=unit,
            suggested=_unit_symbol(problem.suggestion),
        )
    if problem.code == "range" and spec is not None:
        low, high, _ = spec.plausible(unit_name)
        return gettext(
            "%(label)s %(value)s %(unit)s is not plausible: expected %(low)s to %(high)s %(unit)s.",
            label=label,
            value=value,
            unit=unit,
            low=_shown(low),
            high=_shown(high),
        )
    if problem.code == "not_number":
        return gettext("%(label)s: “%(value)s” is not a number.", label=label, value=value)
    if problem.code == "not_whole":
        return gettext("%(label)s: %(value)s is not a whole number.", label=label, value=value)
    if problem.code == "not_recognised":
        return gettext(
            "%(label)s: “%(value)s” is not one of the choices.", label=label, value=value
        )
    if problem.code == "conflict":
        return gettext("%(label)s is given in two ways; give it once.", label=label)
    if problem.expected and problem.message.startswith(f"{problem.field} = "):
        # A message in the developer's form (`roles = []; expected …`): what was expected.
        return gettext("%(label)s: expected %(expected)s.", label=label, expected=problem.expected)
    return gettext("%(label)s: %(detail)s", label=label, detail=problem.message)
