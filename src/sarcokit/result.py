"""The result contract (DESIGN.md): derived values, screening, and per definition the category,
components, reasons and next steps, built from one evaluated row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sarcokit.definitions import (
    INDETERMINATE,
    NOT_APPLICABLE,
    Category,
    Definition,
    Test,
    category_column,
)
from sarcokit.engine import (
    ASM_ESTIMATED,
    component_column,
    rule_column,
    test_column,
)
from sarcokit.equations import REPORT_DECIMALS, UNITS
from sarcokit.fields import Problem, field_specs
from sarcokit.i18n import Lang, text
from sarcokit.rules import components_named, evaluate_rule
from sarcokit.screening import BOUNDS, INTEGER_SCORES, bound_column, instruments
from sarcokit.secondary.conditions import known_conditions
from sarcokit.thresholds import NEGATION, SYMBOL, Threshold, Variant, applicable_variants

# Inputs whose value comes from ASM, so an estimated ASM must be disclosed where they decide.
ASM_INPUTS = frozenset({"asm_kg", "asmi_kg_m2", "alm_bmi"})


@dataclass(frozen=True)
class DefinitionResult:
    """One definition's answer for one subject."""

    category: str | None
    components: dict[str, str]
    reasons: list[str]
    next_steps: list[str]
    # Reported measures that never change the category (AWGS 2025 outcome measures and its
    # case-finding screen), by component id; absent from the dict where a definition has none.
    outcomes: dict[str, str] = field(default_factory=dict)
    case_finding: dict[str, str] = field(default_factory=dict)
    # A user's own definition file, not one shipped with sarcokit, and the SHA-256 of its text.
    local: bool = False
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The contract's shape for one definition."""
        shaped: dict[str, Any] = {
            "category": self.category,
            "components": dict(self.components),
            "reasons": list(self.reasons),
            "next_steps": list(self.next_steps),
        }
        if self.outcomes:
            shaped["outcomes"] = dict(self.outcomes)
        if self.case_finding:
            shaped["case_finding"] = dict(self.case_finding)
        if self.local:
            shaped["local"] = True
            shaped["sha256"] = self.sha256
        return shaped


@dataclass(frozen=True)
class Result:
    """One subject's assessment, or the reason the record was rejected."""

    id: Any
    derived: dict[str, float | None] = field(default_factory=dict)
    screening: dict[str, dict[str, Any]] = field(default_factory=dict)
    definitions: dict[str, DefinitionResult] = field(default_factory=dict)
    secondary: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # SHA-256 over the definition files that produced the result (definitions_hash).
    definitions_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the record was assessed (not rejected)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md result contract, as JSON-ready data."""
        if self.problems:
            first = self.problems[0].to_dict()
            return {
                "id": self.id,
                "error": {**first, "problems": [p.to_dict() for p in self.problems]},
            }
        return {
            "id": self.id,
            "derived": dict(self.derived),
            "screening": {k: dict(v) for k, v in self.screening.items()},
            "definitions": {k: v.to_dict() for k, v in self.definitions.items()},
            "secondary": dict(self.secondary),
            "definitions_sha256": self.definitions_sha256,
        }


def round_half_up(value: float, decimals: int) -> float:
    """Round as a person would (2.675 → 2.68), from the shortest decimal form of the float."""
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


def _format(value: Any, name: str, cutoffs: Sequence[float]) -> str:
    """A value for a reason: derived values at report precision, but never shown equal to a
    cut-off they differ from (6.996 is not written as 7.00 beside '< 7.0')."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if name in field_specs():
        # A measured value is shown as given, unless conversion left a long tail (4 m / 4.7 s).
        given = repr(value).split(".")[-1]
        decimals = max(1, min(len(given), 3))
    else:
        decimals = REPORT_DECIMALS.get(name, 2)
    shown = round_half_up(value, decimals)
    while any(shown == c != value for c in cutoffs) and decimals < 9:
        decimals += 1
        shown = round_half_up(value, decimals)
    return f"{shown:.{decimals}f}"


def _unit(name: str) -> str:
    spec = field_specs().get(name)
    unit = spec.unit if spec is not None else UNITS.get(name)
    return f" {unit}" if unit and unit not in ("points", "years") else ""


def _cutoff(value: float, name: str) -> str:
    """A cut-off as printed in the sources: 27 kg, 7.0 kg/m², 0.8 m/s, 8 points."""
    spec = field_specs().get(name)
    whole = name in INTEGER_SCORES or (spec is not None and spec.kind == "integer")
    if value.is_integer() and (value >= 10 or whole):
        return f"{value:.0f}"
    return f"{value:.1f}" if value.is_integer() else f"{value:g}"


def _group(variant: Variant, lang: Lang, by_method: bool) -> str:
    parts = []
    if variant.age_banded:
        parts.append(age_band_text(variant, lang))
    if variant.sex is not None:
        parts.append(text(lang, f"sex.{variant.sex}"))
    if by_method and variant.methods is not None:
        parts.append("/".join(text(lang, f"method.{m}") for m in variant.methods))
    return text(lang, "reason.group", who=", ".join(parts)) if parts else ""


def age_band_text(variant: Variant, lang: Lang) -> str:
    """An age band in completed years: 'age 50-64', 'age ≥65'."""
    if variant.age_below is None:
        return text(lang, "age.from", low=f"{variant.age_from:g}")
    low = f"{variant.age_from:g}" if variant.age_from is not None else "0"
    return text(lang, "age.band", low=low, high=f"{variant.age_below - 1:g}")


def _by_method(test: Threshold) -> bool:
    """Whether the cut-offs differ by mass method, so a reason must name the method."""
    return len({v.methods for v in test.variants}) > 1


def _comparison(test: Threshold, variants: Sequence[Variant], low: bool, lang: Lang) -> str:
    unit = _unit(test.input)
    return " / ".join(
        f"{SYMBOL[_op(v.op or test.op, low)]} {_cutoff(v.value, test.input)}{unit}"
        f"{_group(v, lang, _by_method(test))}"
        for v in variants
    )


def _op(op: str, low: bool) -> str:
    return op if low else NEGATION[op]


def _test_reason(
    definition: Definition,
    component: str,
    assigned: Test,
    row: Mapping[str, Any],
    lang: Lang,
) -> str | None:
    """One sentence on what a test showed, or None when it was not done."""
    test = assigned.threshold
    flag = row[test_column(definition, test.id)]
    value = row.get(test.input)
    states = next(c.states for c in definition.components if c.id == component)
    labels = {
        "input": text(lang, f"input.{test.input}"),
        "component": text(lang, f"component.{component}"),
        "source": test.source,
    }
    if test.unable is not None and row.get(test.unable.field) == test.unable.value:
        return text(lang, "reason.unable", state=text(lang, f"state.{states[0]}"), **labels)
    sex, method, age = row.get("sex"), row.get("asm_method"), row.get("age")
    if value is None:
        low, high = (row.get(bound_column(test.input, b)) for b in BOUNDS)
        if flag is None or low is None or high is None:
            return None
        # A score with items missing whose flag the answered items already decide (§10.10).
        return text(
            lang,
            "reason.partial",
            low=low,
            high=high,
            comparison=_comparison(
                test, applicable_variants(test, sex, method, age), bool(flag), lang
            ),
            state=text(lang, f"state.{states[0] if flag else states[1]}"),
            **labels,
        )
    variants = applicable_variants(test, sex, method, age)
    if age is not None and test.variants and not applicable_variants(test, None, None, age):
        return None  # no cut-off for this age: the definition's scope says so once
    shown = _format(value, test.input, [v.value for v in variants])
    if flag is None:
        if not variants:
            return text(
                lang,
                "reason.method_not_covered",
                value=shown + _unit(test.input),
                definition=definition.name,
                method=method,
                **labels,
            )
        key = (
            "reason.sex_unknown"
            if sex is None and any(v.sex for v in variants)
            else "reason.age_unknown"
            if age is None and any(v.age_banded for v in variants)
            else "reason.method_unknown"
        )
        cutoffs = " / ".join(
            f"{_cutoff(v.value, test.input)}{_group(v, lang, _by_method(test))}" for v in variants
        )
        return text(lang, key, value=shown + _unit(test.input), cutoffs=cutoffs, **labels)
    state = text(lang, f"state.{states[0] if flag else states[1]}")
    if test.op in ("is_true", "in"):
        shown_fields = ", ".join(
            [
                *([str(value)] if test.op == "in" else []),
                *(f"{name} {_format(row.get(name), name, [])}" for name in assigned.show),
            ]
        )
        sentence = text(
            lang, "reason.test", value=shown_fields, comparison=state, state=state, **labels
        )
        return " ".join(sentence.split())  # no double space where nothing is shown
    return text(
        lang,
        "reason.test",
        value=shown + _unit(test.input),
        comparison=_comparison(test, variants, bool(flag), lang),
        state=state,
        **labels,
    )


def _states_text(
    definition: Definition, names: Sequence[str], components: Mapping[str, str], lang: Lang
) -> str:
    return ", ".join(
        f"{text(lang, f'component.{name}')} {text(lang, f'state.{components[name]}')}"
        for name in names
    )


def explain(
    definition: Definition,
    row: Mapping[str, Any],
    lang: Lang,
    conditions: Sequence[str] = (),
) -> DefinitionResult:
    """Category, components, reasons and next steps of one definition for one evaluated row."""
    category = row[category_column(definition)]
    states = {c.id: row[component_column(definition, c.id)] for c in definition.components}
    components = {c.id: states[c.id] for c in definition.rule_components}
    reasons: list[str] = []
    estimated_used = False
    age = row.get("age")
    if definition.min_age is not None:
        reasons.append(_scope_reason(definition, age, lang))
    for component in definition.components:
        if category == NOT_APPLICABLE:
            break
        if component.applies_from_age is not None and states[component.id] == NOT_APPLICABLE:
            reasons.append(
                text(
                    lang,
                    "reason.component_not_applicable",
                    component=text(lang, f"component.{component.id}"),
                    age=f"{component.applies_from_age:g}",
                )
            )
            continue
        said = False
        for test in definition.tests_of(component.id):
            sentence = _test_reason(definition, component.id, test, row, lang)
            if sentence is not None:
                reasons.append(sentence)
                said = True
                estimated_used |= test.threshold.input in ASM_INPUTS and bool(
                    row.get(ASM_ESTIMATED)
                )
        if not said:
            inputs = ", ".join(
                dict.fromkeys(
                    text(lang, f"input.{t.threshold.input}")
                    for t in definition.tests_of(component.id)
                )
            )
            reasons.append(
                text(
                    lang,
                    "reason.not_assessed",
                    component=text(lang, f"component.{component.id}"),
                    inputs=inputs,
                )
            )
    if estimated_used:
        reasons.append(text(lang, "reason.estimated", equation="Wen 2011"))

    rules = {c.id: row[rule_column(definition, c.id)] for c in definition.categories}
    chosen = next((c for c in definition.categories if c.id == category), None)
    position = definition.categories.index(chosen) if chosen else len(definition.categories)
    pending = [c for c in definition.categories[:position] if rules[c.id] is None]
    if category == NOT_APPLICABLE:
        pending = []  # outside the definition's scope nothing is open
    if chosen is not None:
        named = components_named(chosen.rule)
        reasons.append(
            text(
                lang,
                "reason.category",
                states=_states_text(definition, named, components, lang),
                category=text(lang, f"category.{chosen.id}"),
                source=chosen.source,
            )
        )
    names = ", ".join(text(lang, f"category.{c.id}") for c in pending)
    if category == INDETERMINATE:
        reasons.append(text(lang, "reason.indeterminate", categories=names))
    elif pending and chosen is not None and not chosen.final:
        reasons.append(text(lang, "reason.not_excluded", categories=names))

    reasons.extend(secondary_reasons(definition, chosen, conditions, lang))
    steps: list[str] = []
    if category != NOT_APPLICABLE and (chosen is None or not chosen.final):
        unknown = {
            n
            for c in pending
            for n in components_named(c.rule)
            if components[n] == "unknown" and _decides(c, n, _flags(definition, states))
        }
        steps.extend(c.next_step for c in definition.components if c.id in unknown)
    if chosen is not None:
        steps.extend(chosen.next_steps)
        flags = _flags(definition, states)
        steps.extend(
            step for step, _, rule in chosen.conditional_steps if evaluate_rule(rule, flags)
        )
    return DefinitionResult(
        category,
        components,
        reasons,
        list(dict.fromkeys(steps)),
        outcomes={c.id: states[c.id] for c in definition.components if c.role == "outcome"},
        case_finding={
            c.id: states[c.id] for c in definition.components if c.role == "case_finding"
        },
        local=definition.local,
        sha256=definition.sha256 if definition.local else None,
    )


def _flags(definition: Definition, states: Mapping[str, str]) -> dict[str, bool | None]:
    """Each component's three-valued flag (true = low / positive / present) from its state."""
    return {
        c.id: None if states[c.id] not in c.states else states[c.id] == c.states[0]
        for c in definition.components
    }


def _decides(category: Category, component: str, flags: Mapping[str, bool | None]) -> bool:
    """Whether measuring an unknown component could settle this open category's rule (with
    normal strength, AWGS 2025 no longer needs the muscle mass, only the risk factors)."""
    open_value = evaluate_rule(category.rule, flags)
    return any(
        evaluate_rule(category.rule, {**flags, component: value}) != open_value
        for value in (True, False)
    )


def _scope_reason(definition: Definition, age: float | None, lang: Lang) -> str:
    """Whether the subject's age is within the definition's scope, said plainly."""
    assert definition.min_age is not None
    limit = f"{definition.min_age:g}"
    source = definition.scope_source or definition.name
    if age is None:
        return text(lang, "reason.age_not_given", definition=definition.name, age=limit)
    key = "reason.out_of_scope" if age < definition.min_age else "reason.in_scope"
    return text(lang, key, value=f"{age:g}", definition=definition.name, age=limit, source=source)


def screening_of(row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The screening block of the contract."""
    ishii = row["ishii_score"]
    return {
        "sarc_f": {"total": row["sarc_f_total"], "positive": row["sarc_f_positive"]},
        "sarc_calf": {"total": row["sarc_calf_total"], "positive": row["sarc_calf_positive"]},
        "calf": {"low": row["calf_low"]},
        "ishii": {
            "score": None if ishii is None else round_half_up(ishii, 2),
            "positive": row["ishii_positive"],
            "provisional": instruments()["ishii"].provisional,
        },
        "msra7": {"total": row["msra7_total"], "at_risk": row["msra7_at_risk"]},
        "msra5": {"total": row["msra5_total"], "at_risk": row["msra5_at_risk"]},
    }


def derived_of(row: Mapping[str, Any]) -> dict[str, float | None]:
    """The derived block of the contract, rounded half-up for reporting."""
    return {
        name: None if row[name] is None else round_half_up(row[name], decimals)
        for name, decimals in REPORT_DECIMALS.items()
    }


def secondary_reasons(
    definition: Definition, chosen: Category | None, conditions: Sequence[str], lang: Lang
) -> list[str]:
    """A diagnosis with a recognised disease reads as secondary sarcopenia; AWGS 2019 names
    some chronic diseases as reasons to assess sarcopenia in hospital."""
    known = known_conditions()
    sentences = []
    if chosen is not None and chosen.sarcopenia:
        for condition_id in conditions:
            condition = known[condition_id]
            sentences.append(
                text(
                    lang,
                    "reason.secondary",
                    condition=condition.label[lang],
                    context=condition.context[lang],
                    source=condition.source,
                )
            )
    if definition.id.startswith("awgs2019"):
        for condition_id in conditions:
            condition = known[condition_id]
            if condition.awgs2019_trigger:
                sentences.append(text(lang, "reason.awgs_trigger", condition=condition.label[lang]))
    return sentences


def secondary_of(
    row: Mapping[str, Any], recognised: Sequence[str], others: Sequence[str], lang: Lang
) -> dict[str, Any]:
    """The secondary block: CT muscle, liver scores, bone and osteosarcopenia, GLIM, contributing
    factors, and the recognised conditions with their context."""
    known = known_conditions()
    factors = {
        name.removeprefix("factor_").removesuffix("_value"): {
            "value": row[name],
            "flag": row.get(name.removesuffix("_value") + "_flag"),
        }
        for name in row
        if name.startswith("factor_") and name.endswith("_value")
    }
    osteo = {
        name.removeprefix("osteosarcopenia_"): row[name]
        for name in row
        if name.startswith("osteosarcopenia_")
    }
    smi = row.get("l3_smi_cm2_m2")
    return {
        "ct_muscle": {
            "l3_smi_cm2_m2": None if smi is None else round_half_up(smi, 2),
            "prado2008": {"low_smi": row.get("ct_low_smi_prado2008")},
            "martin2013": {
                "low_smi": row.get("ct_low_smi_martin2013"),
                "myosteatosis": row.get("ct_myosteatosis_martin2013"),
            },
            "carey2017": {"low_smi": row.get("ct_low_smi_carey2017")},
        },
        "liver": {
            "meld": row.get("meld"),
            "meld_na": row.get("meld_na"),
            "meld3": row.get("meld3"),
            "meld_sarcopenia": row.get("meld_sarcopenia"),
            # Which MELD the MELD-Sarcopenia used; said only where there is a score.
            "meld_sarcopenia_base": (
                None if row.get("meld_sarcopenia") is None else row.get("meld_sarcopenia_base")
            ),
        },
        "bone_category": row.get("bone_category"),
        "osteosarcopenia": osteo,
        "glim": {
            "phenotypic_met": row.get("glim_phenotypic_met"),
            "etiologic_met": row.get("glim_etiologic_met"),
            "malnutrition": row.get("glim_malnutrition"),
            "stage": row.get("glim_stage"),
        },
        "factors": factors,
        "conditions": {
            "recognised": list(recognised),
            "not_recognised": list(others),
            "context": [
                {
                    "condition": condition_id,
                    "text": known[condition_id].context[lang],
                    "source": known[condition_id].source,
                }
                for condition_id in recognised
            ],
        },
    }
