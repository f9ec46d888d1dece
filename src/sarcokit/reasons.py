"""Reasons as data: what a test showed, which cut-off applied and why a category was given, kept
as codes and numbers and rendered into the reader's language only at the edge (terminal, page,
PDF, API). A stored reason renders the same way years later without re-running the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sarcokit.definitions import Definition, definition
from sarcokit.equations import REPORT_DECIMALS, UNITS
from sarcokit.fields import field_specs
from sarcokit.i18n import Lang, label, text
from sarcokit.screening import INTEGER_SCORES
from sarcokit.thresholds import NEGATION, SYMBOL


def round_half_up(value: float, decimals: int) -> float:
    """Round as a person would (2.675 → 2.68), from the shortest decimal form of the float."""
    shortest = repr(value)
    # No more decimals than asked (a measured 17.5 kg): already rounded, without Decimal.
    plain = "e" not in shortest and "n" not in shortest and decimals >= 0
    if plain and len(shortest.partition(".")[2]) <= decimals:
        return float(value)
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(shortest).quantize(quantum, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Cutoff:
    """One cut-off that applied: its value, the inequality for 'low' as the source prints it,
    and the stratum (sex, age band in completed years, mass methods) it belongs to."""

    value: float
    op: str
    sex: str | None = None
    age_from: float | None = None
    age_below: float | None = None
    methods: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "value": self.value,
            "op": self.op,
            "sex": self.sex,
            "age_from": self.age_from,
            "age_below": self.age_below,
            "methods": None if self.methods is None else list(self.methods),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cutoff:
        """Read back what to_dict wrote."""
        methods = data.get("methods")
        return cls(
            value=float(data["value"]),
            op=str(data["op"]),
            sex=data.get("sex"),
            age_from=data.get("age_from"),
            age_below=data.get("age_below"),
            methods=None if methods is None else tuple(methods),
        )

    @property
    def age_banded(self) -> bool:
        """Whether the cut-off applies to an age band only."""
        return self.age_from is not None or self.age_below is not None


@dataclass(frozen=True)
class Reason:
    """One reason, as data. `code` names the sentence (`reason.<code>` in the catalogues).

    `source` is a key into the criteria file (`ewgsop2/tests/grip`, `ewgsop2/categories/
    sarcopenia`, `awgs2025/scope`) or the conditions table (`conditions/cirrhosis`);
    `source_text` is the citation as the file prints it. `low` is the test's flag (true = the
    value met the inequality for low). `detail` holds what only some codes need (answered-item
    bounds, fields shown beside a flag, the categories still open, …).
    """

    code: str
    definition: str | None = None
    component: str | None = None
    test: str | None = None
    input: str | None = None
    value: Any = None
    unit: str | None = None
    op: str | None = None
    cutoffs: tuple[Cutoff, ...] = ()
    low: bool | None = None
    state: str | None = None
    category: str | None = None
    source: str | None = None
    source_text: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (every key present, null where it does not apply)."""
        return {
            "code": self.code,
            "definition": self.definition,
            "component": self.component,
            "test": self.test,
            "input": self.input,
            "value": self.value,
            "unit": self.unit,
            "op": self.op,
            "cutoffs": [c.to_dict() for c in self.cutoffs],
            "low": self.low,
            "state": self.state,
            "category": self.category,
            "source": self.source,
            "source_text": self.source_text,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reason:
        """Read back what to_dict wrote (a stored result)."""
        return cls(
            code=str(data["code"]),
            definition=data.get("definition"),
            component=data.get("component"),
            test=data.get("test"),
            input=data.get("input"),
            value=data.get("value"),
            unit=data.get("unit"),
            op=data.get("op"),
            cutoffs=tuple(Cutoff.from_dict(c) for c in data.get("cutoffs") or ()),
            low=data.get("low"),
            state=data.get("state"),
            category=data.get("category"),
            source=data.get("source"),
            source_text=data.get("source_text"),
            detail=dict(data.get("detail") or {}),
        )


_FIELD_NAMES = frozenset(f.name for f in fields(Reason))
_DEFAULTS = {f.name: f.default for f in fields(Reason) if f.default is not MISSING}


def reason_fields(**given: Any) -> dict[str, Any]:
    """Every field of a Reason with a plain default (all but code and detail), updated with
    `given`: a template for reason_of."""
    return {**_DEFAULTS, **given}


def reason_of(values: dict[str, Any]) -> Reason:
    """A Reason from a dict holding every one of its fields, which it takes (not a copy).

    The same object the constructor makes, without its frozen `__init__` (one guarded setattr
    per field, fifteen of them): building ~60 reasons was a quarter of a record's assessment."""
    if len(values) != len(_FIELD_NAMES):  # the templates hold every field; a stray key shows
        given = ", ".join(sorted(values.keys() ^ _FIELD_NAMES))
        raise TypeError(f"reason_of needs exactly the fields of a Reason; differing: {given}")
    made = object.__new__(Reason)
    object.__setattr__(made, "__dict__", values)
    return made


# -- rendering ---------------------------------------------------------------------------------


def _found(definition_id: str | None) -> Definition | None:
    """The definition of an id in this process; None for a local one not loaded here (its
    stored text then stands)."""
    if definition_id is None:
        return None
    try:
        return definition(definition_id)
    except KeyError:
        return None


def _definition_labels(definition_id: str | None, lang: Lang) -> Mapping[str, str]:
    found = _found(definition_id)
    return {} if found is None else found.labels.get(lang, {})


def _name_of(found: Definition | None, definition_id: str, lang: Lang) -> str:
    if found is None:
        return definition_id
    name = found.labels.get(lang, {}).get("name")
    return found.name if name is None else str(name)


def definition_name(definition_id: str, lang: Lang) -> str:
    """A definition's name in the reader's language (`[labels.<lang>] name` in its criteria
    file), else the name the file gives, else the id."""
    return _name_of(_found(definition_id), definition_id, lang)


def _source_of(key: str, printed: str | None, labels: Mapping[str, str]) -> str:
    _, _, path = key.partition("/")
    translated = labels.get(f"source.{path.replace('/', '.')}")
    return str(translated) if translated else printed or key


def source_label(key: str | None, printed: str | None, lang: Lang) -> str:
    """A source in the reader's language: the criteria file's `[labels.<lang>]` entry
    `source.<kind>.<id>` where it has one, else the citation as printed in the file."""
    if key is None:
        return printed or ""
    return _source_of(key, printed, _definition_labels(key.partition("/")[0], lang))


def unit_suffix(name: str) -> str:
    """' kg' for a reason's value; nothing for points, years and ratios."""
    spec = field_specs().get(name)
    unit = spec.unit if spec is not None else UNITS.get(name)
    return f" {unit}" if unit and unit not in ("points", "years") else ""


def unit_of(name: str) -> str | None:
    """The unit of an input or derived value, as data (None for ratios)."""
    spec = field_specs().get(name)
    return spec.unit if spec is not None else UNITS.get(name)


def format_value(value: Any, name: str, cutoffs: Sequence[float]) -> str:
    """A value for a reason: derived values at report precision, but never shown equal to a
    cut-off they differ from (6.996 is not written as 7.00 beside '< 7.0')."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if name in field_specs():
        # A measured value is shown as given, unless conversion left a long tail (4 m / 3.8 s):
        # then at the report's precision, as the result table shows it (1.05 m/s, not 1.053).
        given = repr(value).split(".")[-1]
        decimals = max(1, len(given)) if len(given) <= 3 else REPORT_DECIMALS.get(name, 3)
    else:
        decimals = REPORT_DECIMALS.get(name, 2)
    shown = round_half_up(value, decimals)
    while any(shown == c != value for c in cutoffs) and decimals < 9:
        decimals += 1
        shown = round_half_up(value, decimals)
    return f"{shown:.{decimals}f}"


def format_cutoff(value: float, name: str) -> str:
    """A cut-off as printed in the sources: 27 kg, 7.0 kg/m², 0.8 m/s, 8 points."""
    spec = field_specs().get(name)
    whole = name in INTEGER_SCORES or (spec is not None and spec.kind == "integer")
    if value.is_integer() and (value >= 10 or whole):
        return f"{value:.0f}"
    return f"{value:.1f}" if value.is_integer() else f"{value:g}"


def age_band_text(cutoff: Cutoff, lang: Lang) -> str:
    """An age band in completed years: 'age 50-64', 'age ≥65'."""
    if cutoff.age_below is None:
        return text(lang, "age.from", low=f"{cutoff.age_from:g}")
    low = f"{cutoff.age_from:g}" if cutoff.age_from is not None else "0"
    return text(lang, "age.band", low=low, high=f"{cutoff.age_below - 1:g}")


def _group(cutoff: Cutoff, lang: Lang, by_method: bool) -> str:
    parts = []
    if cutoff.age_banded:
        parts.append(age_band_text(cutoff, lang))
    if cutoff.sex is not None:
        parts.append(label(lang, f"sex.{cutoff.sex}"))
    if by_method and cutoff.methods is not None:
        parts.append("/".join(label(lang, f"method.{m}") for m in cutoff.methods))
    return text(lang, "reason.group", who=", ".join(parts)) if parts else ""


# A cut-off as a reason shows it, by (cut-off, input, low, language, by method): the same few
# dozen cut-offs are written into every record's reasons. Bounded, since stored results bring
# cut-offs of their own.
_CUTOFF_TEXTS: dict[tuple[Cutoff, str, bool | None, Lang, bool], str] = {}
_CUTOFF_TEXTS_KEPT = 4096


def _cutoff_text(cutoff: Cutoff, name: str, low: bool | None, lang: Lang, by_method: bool) -> str:
    """'< 16 kg (women)' (low given), '16 kg (women)' (low None: the cut-off alone)."""
    key = (cutoff, name, low, lang, by_method)
    shown = _CUTOFF_TEXTS.get(key)
    if shown is None:
        group = _group(cutoff, lang, by_method)
        if low is None:
            shown = f"{format_cutoff(cutoff.value, name)}{group}"
        else:
            symbol = SYMBOL[cutoff.op if low else NEGATION[cutoff.op]]
            shown = f"{symbol} {format_cutoff(cutoff.value, name)}{unit_suffix(name)}{group}"
        if len(_CUTOFF_TEXTS) >= _CUTOFF_TEXTS_KEPT:
            _CUTOFF_TEXTS.clear()
        _CUTOFF_TEXTS[key] = shown
    return shown


def _comparison(reason: Reason, low: bool, lang: Lang) -> str:
    name = reason.input or ""
    by_method = bool(reason.detail.get("by_method"))
    return " / ".join(_cutoff_text(c, name, low, lang, by_method) for c in reason.cutoffs)


def _names(lang: Lang, section: str, ids: Sequence[str]) -> str:
    return ", ".join(label(lang, f"{section}.{i}") for i in ids)


def render_reason(reason: Reason, lang: Lang) -> str:
    """One reason as a sentence in the reader's language."""
    code, detail, name = reason.code, reason.detail, reason.input or ""
    values: dict[str, Any] = {}
    if reason.input is not None:
        values["input"] = label(lang, f"input.{reason.input}")
    if reason.component is not None:
        values["component"] = label(lang, f"component.{reason.component}")
    if reason.state is not None:
        values["state"] = label(lang, f"state.{reason.state}")
    found = _found(reason.definition)
    if reason.definition is not None:
        values["definition"] = _name_of(found, reason.definition, lang)
    source = reason.source
    if source is None:
        values["source"] = reason.source_text or ""
    else:
        owner = source.partition("/")[0]
        holder = found if owner == reason.definition else _found(owner)
        labels = {} if holder is None else holder.labels.get(lang, {})
        values["source"] = _source_of(source, reason.source_text, labels)
    shown = ""
    if reason.value is not None and code not in ("in_scope", "out_of_scope"):
        cutoffs = [c.value for c in reason.cutoffs]
        shown = format_value(reason.value, name, cutoffs) + unit_suffix(name)
    by_method = bool(detail.get("by_method"))
    if code == "test" and reason.op in ("is_true", "in"):
        fields = [
            *([str(reason.value)] if reason.op == "in" else []),
            *(f"{n} {format_value(v, n, [])}" for n, v in detail.get("shown", ())),
        ]
        sentence = text(
            lang,
            "reason.test",
            **{**values, "value": ", ".join(fields)},
            comparison=values["state"],
        )
        return " ".join(sentence.split())  # no double space where nothing is shown
    if code == "test":
        comparison = _comparison(reason, bool(reason.low), lang)
        return text(lang, "reason.test", **values, value=shown, comparison=comparison)
    if code == "partial":
        comparison = _comparison(reason, bool(reason.low), lang)
        low, high = detail["bounds"]
        return text(lang, "reason.partial", **values, low=low, high=high, comparison=comparison)
    if code in ("sex_unknown", "age_unknown", "method_unknown"):
        listed = " / ".join(_cutoff_text(c, name, None, lang, by_method) for c in reason.cutoffs)
        return text(lang, f"reason.{code}", **values, value=shown, cutoffs=listed)
    if code == "method_not_covered":
        return text(lang, f"reason.{code}", **values, value=shown, method=detail.get("method"))
    if code == "component_not_applicable":
        return text(lang, f"reason.{code}", **values, age=f"{detail['age']:g}")
    if code == "not_assessed":
        inputs = _names(lang, "input", detail.get("inputs", ()))
        return text(lang, f"reason.{code}", **values, inputs=inputs)
    if code == "estimated":
        return text(lang, f"reason.{code}", equation=detail["equation"])
    if code == "category":
        states = ", ".join(
            f"{label(lang, f'component.{c}')} {label(lang, f'state.{s}')}"
            for c, s in detail.get("states", ())
        )
        category = label(lang, f"category.{reason.category}")
        return text(lang, f"reason.{code}", **values, states=states, category=category)
    if code in ("indeterminate", "not_excluded"):
        return text(
            lang, f"reason.{code}", categories=_names(lang, "category", detail["categories"])
        )
    if code in ("secondary", "awgs_trigger"):
        # Imported here: the conditions table loads Polars, which `import sarcokit` must not.
        from sarcokit.secondary.conditions import known_conditions

        condition = known_conditions()[detail["condition"]]
        return text(
            lang,
            f"reason.{code}",
            **values,
            condition=condition.label[lang],
            context=condition.context[lang],
        )
    if code in ("in_scope", "out_of_scope", "age_not_given"):
        value = "" if reason.value is None else f"{reason.value:g}"
        return text(lang, f"reason.{code}", **values, value=value, age=f"{detail['age']:g}")
    # unable, and any code whose sentence needs only the common labels
    return text(lang, f"reason.{code}", **values)
