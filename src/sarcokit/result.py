"""The result contract (DESIGN.md): derived values, screening, and per definition the category,
components, reasons and next steps, built from one evaluated row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sarcokit.definitions import (
    INDETERMINATE,
    NOT_APPLICABLE,
    Category,
    Component,
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
from sarcokit.equations import REPORT_DECIMALS
from sarcokit.fields import Problem
from sarcokit.i18n import Lang
from sarcokit.reasons import (
    Cutoff,
    Reason,
    reason_fields,
    reason_of,
    render_reason,
    round_half_up,
    source_label,
    unit_of,
)
from sarcokit.rules import components_named, evaluate_rule
from sarcokit.screening import BOUNDS, bound_column, instruments
from sarcokit.secondary.conditions import known_conditions
from sarcokit.thresholds import Threshold, Variant, applicable_variants

# The result contract's version (README, "The result contract"): 2 added the structured
# reasons (`explanations`), `contract_version` and `lang`; version 1 had reasons as text only.
CONTRACT_VERSION = 2

# Every field of a Reason at its default but code and detail, which each reason gives.
_BLANK = reason_fields()

# Inputs whose value comes from ASM, so an estimated ASM must be disclosed where they decide.
ASM_INPUTS = frozenset({"asm_kg", "asmi_kg_m2", "alm_bmi"})


@dataclass(frozen=True)
class DefinitionResult:
    """One definition's answer for one subject; reasons are data, rendered in `lang`."""

    category: str | None
    components: dict[str, str]
    explanations: tuple[Reason, ...]
    next_steps: list[str]
    # Reported measures that never change the category (AWGS 2025 outcome measures and its
    # case-finding screen), by component id; absent from the dict where a definition has none.
    outcomes: dict[str, str] = field(default_factory=dict)
    case_finding: dict[str, str] = field(default_factory=dict)
    # A user's own definition file, not one shipped with sarcokit, and the SHA-256 of its text.
    local: bool = False
    sha256: str | None = None
    lang: Lang = "en"
    # Reasons stored as text only (a visit saved before reasons were data): shown as recorded.
    recorded_reasons: tuple[str, ...] | None = None
    # The guideline behind a next step, by step: {"source": key, "source_text": as printed}.
    next_step_sources: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def cited_steps(self) -> list[tuple[str, str | None]]:
        """Each next step with its source in the result's language (None where uncited)."""
        cited = []
        for step in self.next_steps:
            source = self.next_step_sources.get(step)
            label = (
                None
                if source is None
                else source_label(source.get("source"), source.get("source_text"), self.lang)
            )
            cited.append((step, label))
        return cited

    @property
    def reasons(self) -> list[str]:
        """The reasons as sentences in the result's language."""
        if self.recorded_reasons is not None:
            return list(self.recorded_reasons)
        return [render_reason(r, self.lang) for r in self.explanations]

    def to_dict(self) -> dict[str, Any]:
        """The contract's shape for one definition."""
        shaped: dict[str, Any] = {
            "category": self.category,
            "components": dict(self.components),
            "reasons": self.reasons,
            "explanations": [r.to_dict() for r in self.explanations],
            "next_steps": list(self.next_steps),
            "next_step_sources": {k: dict(v) for k, v in self.next_step_sources.items()},
        }
        if self.outcomes:
            shaped["outcomes"] = dict(self.outcomes)
        if self.case_finding:
            shaped["case_finding"] = dict(self.case_finding)
        if self.local:
            shaped["local"] = True
            shaped["sha256"] = self.sha256
        return shaped

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], lang: Lang = "en") -> DefinitionResult:
        """A stored definition block, rendered in `lang` (stored text stays as recorded)."""
        explanations = data.get("explanations")
        return cls(
            category=data.get("category"),
            components=dict(data.get("components") or {}),
            explanations=tuple(Reason.from_dict(r) for r in explanations or ()),
            next_steps=list(data.get("next_steps") or ()),
            outcomes=dict(data.get("outcomes") or {}),
            case_finding=dict(data.get("case_finding") or {}),
            local=bool(data.get("local", False)),
            sha256=data.get("sha256"),
            lang=lang,
            recorded_reasons=(
                None if explanations is not None else tuple(data.get("reasons") or ())
            ),
            next_step_sources={
                k: dict(v) for k, v in (data.get("next_step_sources") or {}).items()
            },
        )


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
    # The language reasons and condition context are rendered in; the data is the same in all.
    lang: Lang = "en"
    # The contract version the result was produced under (1: reasons as text only).
    contract_version: int = CONTRACT_VERSION

    @property
    def ok(self) -> bool:
        """Whether the record was assessed (not rejected)."""
        return not self.problems

    def in_language(self, lang: Lang) -> Result:
        """The same result, rendered in another language (nothing is re-assessed)."""
        return replace(
            self,
            lang=lang,
            definitions={k: replace(v, lang=lang) for k, v in self.definitions.items()},
        )

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
            "contract_version": self.contract_version,
            "lang": self.lang,
            "derived": dict(self.derived),
            "screening": {k: dict(v) for k, v in self.screening.items()},
            "definitions": {k: v.to_dict() for k, v in self.definitions.items()},
            "secondary": _secondary_in(self.secondary, self.lang),
            "definitions_sha256": self.definitions_sha256,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], lang: Lang = "en") -> Result:
        """A stored result (to_dict's shape, any contract version) rendered in `lang`, without
        running the engine. A version-1 result keeps its reasons as the text it recorded."""
        if "error" in data:
            raise ValueError("a stored result holds an error, not an assessment")
        return cls(
            id=data.get("id"),
            derived=dict(data.get("derived") or {}),
            screening={k: dict(v) for k, v in (data.get("screening") or {}).items()},
            definitions={
                k: DefinitionResult.from_dict(v, lang)
                for k, v in (data.get("definitions") or {}).items()
                if isinstance(v, Mapping)
            },
            secondary=dict(data.get("secondary") or {}),
            definitions_sha256=data.get("definitions_sha256"),
            lang=lang,
            contract_version=int(data.get("contract_version", 1)),
        )


def _secondary_in(secondary: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    """The secondary block with each recognised condition's context in `lang`."""
    conditions = secondary.get("conditions")
    if not isinstance(conditions, Mapping) or not conditions.get("context"):
        return dict(secondary)
    known = known_conditions()
    context = [
        {**entry, "text": known[entry["condition"]].context[lang]}
        if entry.get("condition") in known
        else dict(entry)
        for entry in conditions["context"]
    ]
    return {**secondary, "conditions": {**conditions, "context": context}}


def _source(
    definition: Definition, kind: str, entry_id: str | None, printed: str
) -> dict[str, Any]:
    key = f"{definition.id}/{kind}" + (f"/{entry_id}" if entry_id else "")
    return {"source": key, "source_text": printed}


def _cutoff(test: Threshold, variant: Variant) -> Cutoff:
    return Cutoff(
        value=variant.value,
        op=variant.op or test.op,
        sex=variant.sex,
        age_from=variant.age_from,
        age_below=variant.age_below,
        methods=variant.methods,
    )


def _by_method(test: Threshold) -> bool:
    """Whether the cut-offs differ by mass method, so a reason must name the method."""
    return len({v.methods for v in test.variants}) > 1


# What explaining a definition needs that does not depend on the subject (column names, the
# static fields of each reason, a Cutoff per cut-off variant), worked out once per definition
# version: one record's ten definitions give ~60 reasons, and redoing this for each was most
# of an assessment's time.


@dataclass(frozen=True)
class _TestPlan:
    assigned: Test
    flag_column: str
    # Every field of the reasons this test gives, at its value for all subjects.
    template: dict[str, Any]
    states: tuple[str, str]
    by_method: bool
    bounds: tuple[str, ...]
    # The Cutoff of each of the threshold's variants, by the variant's identity.
    cutoff_of: dict[int, Cutoff]
    # A pre-classified flag or a code list: the reason shows fields, not cut-offs.
    shows_fields: bool
    asm_input: bool
    # Whether any cut-off is for an age band only (else every age has one).
    age_banded: bool

    def cutoffs(self, variants: Sequence[Variant]) -> tuple[Cutoff, ...]:
        """The cut-offs of these variants of the test's threshold."""
        return tuple(self.cutoff_of[id(v)] for v in variants)


@dataclass(frozen=True)
class _ComponentPlan:
    component: Component
    column: str
    tests: tuple[_TestPlan, ...]
    # The inputs of its tests, each once, in order (a not-assessed reason names them).
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class _CategoryPlan:
    category: Category
    rule_column: str
    named: tuple[str, ...]
    source: dict[str, Any]


@dataclass(frozen=True)
class _Plan:
    definition: Definition
    category_column: str
    components: tuple[_ComponentPlan, ...]
    rule_components: tuple[str, ...]
    outcomes: tuple[str, ...]
    case_finding: tuple[str, ...]
    categories: tuple[_CategoryPlan, ...]


# Plans by the identity of their definition (a Definition holds dicts, so it is not hashable);
# each entry keeps its definition alive, so an id is never reused while its plan is kept.
_PLANS: dict[int, _Plan] = {}
_PLANS_KEPT = 256


def _plan(definition: Definition) -> _Plan:
    """The subject-independent part of explaining `definition`, built on first use."""
    plan = _PLANS.get(id(definition))
    if plan is not None and plan.definition is definition:
        return plan
    if len(_PLANS) >= _PLANS_KEPT:  # many one-off versions (a test's variations): start afresh
        _PLANS.clear()
    plan = _build_plan(definition)
    _PLANS[id(definition)] = plan
    return plan


def _build_plan(definition: Definition) -> _Plan:
    components = []
    for component in definition.components:
        tests = []
        for assigned in definition.tests_of(component.id):
            test = assigned.threshold
            template = {
                **_BLANK,
                "definition": definition.id,
                "component": component.id,
                "test": test.id,
                "input": test.input,
                "unit": unit_of(test.input),
                "op": test.op,
                **_source(definition, "tests", test.id, test.source),
            }
            tests.append(
                _TestPlan(
                    assigned=assigned,
                    flag_column=test_column(definition, test.id),
                    template=template,
                    states=component.states,
                    by_method=_by_method(test),
                    bounds=tuple(bound_column(test.input, b) for b in BOUNDS),
                    cutoff_of={id(v): _cutoff(test, v) for v in test.variants},
                    shows_fields=test.op in ("is_true", "in"),
                    asm_input=test.input in ASM_INPUTS,
                    age_banded=any(v.age_banded for v in test.variants),
                )
            )
        components.append(
            _ComponentPlan(
                component=component,
                column=component_column(definition, component.id),
                tests=tuple(tests),
                inputs=tuple(dict.fromkeys(t.assigned.threshold.input for t in tests)),
            )
        )
    return _Plan(
        definition=definition,
        category_column=category_column(definition),
        components=tuple(components),
        rule_components=tuple(c.id for c in definition.rule_components),
        outcomes=tuple(c.id for c in definition.components if c.role == "outcome"),
        case_finding=tuple(c.id for c in definition.components if c.role == "case_finding"),
        categories=tuple(
            _CategoryPlan(
                category=c,
                rule_column=rule_column(definition, c.id),
                named=tuple(components_named(c.rule)),
                source=_source(definition, "categories", c.id, c.source),
            )
            for c in definition.categories
        ),
    )


def _test_reason(plan: _TestPlan, row: Mapping[str, Any]) -> Reason | None:
    """What a test showed, or None when it was not done."""
    test = plan.assigned.threshold
    flag = row[plan.flag_column]
    value = row.get(test.input)
    template = plan.template
    states = plan.states
    if test.unable is not None and row.get(test.unable.field) == test.unable.value:
        return reason_of(
            {**template, "code": "unable", "low": True, "state": states[0], "detail": {}}
        )
    sex, method, age = row.get("sex"), row.get("asm_method"), row.get("age")
    variants = applicable_variants(test, sex, method, age)
    if value is None:
        low, high = (row.get(column) for column in plan.bounds)
        if flag is None or low is None or high is None:
            return None
        # A score with items missing whose flag the answered items already decide (§10.10).
        return reason_of(
            {
                **template,
                "code": "partial",
                "cutoffs": plan.cutoffs(variants),
                "low": bool(flag),
                "state": states[0] if flag else states[1],
                "detail": {"by_method": plan.by_method, "bounds": [low, high]},
            }
        )
    if age is not None and plan.age_banded and not applicable_variants(test, None, None, age):
        return None  # no cut-off for this age: the definition's scope says so once
    if flag is None:
        if not variants:
            return reason_of(
                {
                    **template,
                    "code": "method_not_covered",
                    "value": value,
                    "detail": {"method": method},
                }
            )
        code = (
            "sex_unknown"
            if sex is None and any(v.sex for v in variants)
            else "age_unknown"
            if age is None and any(v.age_banded for v in variants)
            else "method_unknown"
        )
        return reason_of(
            {
                **template,
                "code": code,
                "value": value,
                "cutoffs": plan.cutoffs(variants),
                "detail": {"by_method": plan.by_method},
            }
        )
    detail: dict[str, Any] = {"by_method": plan.by_method}
    if plan.shows_fields:
        detail["shown"] = [[name, row.get(name)] for name in plan.assigned.show]
    return reason_of(
        {
            **template,
            "code": "test",
            "value": value,
            "cutoffs": () if plan.shows_fields else plan.cutoffs(variants),
            "low": bool(flag),
            "state": states[0] if flag else states[1],
            "detail": detail,
        }
    )


def _reason(code: str, definition: Definition, **fields: Any) -> Reason:
    """A reason that is not a test's (scope, category, open categories, …)."""
    return reason_of({**_BLANK, "detail": {}, **fields, "code": code, "definition": definition.id})


def explain(
    definition: Definition,
    row: Mapping[str, Any],
    lang: Lang = "en",
    conditions: Sequence[str] = (),
) -> DefinitionResult:
    """Category, components, reasons and next steps of one definition for one evaluated row;
    the reasons are data, rendered in `lang` when read as text."""
    plan = _plan(definition)
    category = row[plan.category_column]
    states = {c.component.id: row[c.column] for c in plan.components}
    components = {name: states[name] for name in plan.rule_components}
    reasons: list[Reason] = []
    estimated_used = False
    age = row.get("age")
    if definition.min_age is not None:
        reasons.append(_scope_reason(definition, age))
    if category != NOT_APPLICABLE:
        for planned in plan.components:
            component = planned.component
            if component.applies_from_age is not None and states[component.id] == NOT_APPLICABLE:
                reasons.append(
                    _reason(
                        "component_not_applicable",
                        definition,
                        component=component.id,
                        detail={"age": component.applies_from_age},
                    )
                )
                continue
            said = False
            for test in planned.tests:
                reason = _test_reason(test, row)
                if reason is not None:
                    reasons.append(reason)
                    said = True
                    estimated_used |= test.asm_input and bool(row.get(ASM_ESTIMATED))
            if not said:
                reasons.append(
                    _reason(
                        "not_assessed",
                        definition,
                        component=component.id,
                        detail={"inputs": list(planned.inputs)},
                    )
                )
    if estimated_used:
        reasons.append(_reason("estimated", definition, detail={"equation": "Wen 2011"}))

    rules = {c.category.id: row[c.rule_column] for c in plan.categories}
    chosen_plan = next((c for c in plan.categories if c.category.id == category), None)
    chosen = None if chosen_plan is None else chosen_plan.category
    position = definition.categories.index(chosen) if chosen else len(definition.categories)
    pending = [c for c in definition.categories[:position] if rules[c.id] is None]
    if category == NOT_APPLICABLE:
        pending = []  # outside the definition's scope nothing is open
    if chosen_plan is not None:
        reasons.append(
            _reason(
                "category",
                definition,
                category=chosen_plan.category.id,
                **chosen_plan.source,
                detail={"states": [[name, components[name]] for name in chosen_plan.named]},
            )
        )
    open_ids = [c.id for c in pending]
    if category == INDETERMINATE:
        reasons.append(_reason("indeterminate", definition, detail={"categories": open_ids}))
    elif pending and chosen is not None and not chosen.final:
        reasons.append(_reason("not_excluded", definition, detail={"categories": open_ids}))

    if conditions:
        reasons.extend(secondary_reasons(definition, chosen, conditions))
    steps: list[str] = []
    flags: dict[str, bool | None] | None = None
    if category != NOT_APPLICABLE and (chosen is None or not chosen.final):
        flags = _flags(definition, states)
        unknown = {
            n
            for c in pending
            for n in components_named(c.rule)
            if components[n] == "unknown" and _decides(c, n, flags)
        }
        steps.extend(c.next_step for c in definition.components if c.id in unknown)
    cited: dict[str, dict[str, str]] = {}
    if chosen is not None:
        steps.extend(chosen.next_steps)
        if chosen.steps_source is not None:
            key = f"{definition.id}/categories/{chosen.id}/next_steps"
            cited = {
                s: {"source": key, "source_text": chosen.steps_source} for s in chosen.next_steps
            }
        if chosen.conditional_steps:
            flags = flags if flags is not None else _flags(definition, states)
            steps.extend(
                step for step, _, rule in chosen.conditional_steps if evaluate_rule(rule, flags)
            )
    return DefinitionResult(
        category,
        components,
        tuple(reasons),
        list(dict.fromkeys(steps)),
        outcomes={name: states[name] for name in plan.outcomes},
        case_finding={name: states[name] for name in plan.case_finding},
        local=definition.local,
        sha256=definition.sha256 if definition.local else None,
        lang=lang,
        next_step_sources=cited,
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


def _scope_reason(definition: Definition, age: float | None) -> Reason:
    """Whether the subject's age is within the definition's scope, said plainly."""
    assert definition.min_age is not None
    common: dict[str, Any] = {
        "input": None,
        "detail": {"age": definition.min_age},
        **_source(definition, "scope", None, definition.scope_source or definition.name),
    }
    if age is None:
        return _reason("age_not_given", definition, **common)
    code = "out_of_scope" if age < definition.min_age else "in_scope"
    return _reason(code, definition, value=age, **common)


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
    definition: Definition, chosen: Category | None, conditions: Sequence[str]
) -> list[Reason]:
    """A diagnosis with a recognised disease reads as secondary sarcopenia; AWGS 2019 names
    some chronic diseases as reasons to assess sarcopenia in hospital."""
    known = known_conditions()
    reasons = []
    if chosen is not None and chosen.sarcopenia:
        for condition_id in conditions:
            reasons.append(
                Reason(
                    "secondary",
                    definition=definition.id,
                    source=f"conditions/{condition_id}",
                    source_text=known[condition_id].source,
                    detail={"condition": condition_id},
                )
            )
    if definition.id.startswith("awgs2019"):
        for condition_id in conditions:
            if known[condition_id].awgs2019_trigger:
                reasons.append(
                    Reason(
                        "awgs_trigger", definition=definition.id, detail={"condition": condition_id}
                    )
                )
    return reasons


# The factor and osteosarcopenia columns of a row, by the row's columns in order: every row of
# one compiled pipeline has the same ~300, and scanning them all was a tenth of an assessment.
_SECONDARY_NAMES: dict[
    tuple[str, ...], tuple[tuple[tuple[str, str, str], ...], tuple[tuple[str, str], ...]]
] = {}
_SECONDARY_NAMES_KEPT = 64


def _secondary_names(
    row: Mapping[str, Any],
) -> tuple[tuple[tuple[str, str, str], ...], tuple[tuple[str, str], ...]]:
    """(factor, value column, flag column) of each factor; (variant, column) of each
    osteosarcopenia column."""
    columns = tuple(row)
    found = _SECONDARY_NAMES.get(columns)
    if found is None:
        factors = tuple(
            (
                name.removeprefix("factor_").removesuffix("_value"),
                name,
                name.removesuffix("_value") + "_flag",
            )
            for name in columns
            if name.startswith("factor_") and name.endswith("_value")
        )
        osteo = tuple(
            (name.removeprefix("osteosarcopenia_"), name)
            for name in columns
            if name.startswith("osteosarcopenia_")
        )
        if len(_SECONDARY_NAMES) >= _SECONDARY_NAMES_KEPT:
            _SECONDARY_NAMES.clear()
        found = _SECONDARY_NAMES[columns] = (factors, osteo)
    return found


def secondary_of(
    row: Mapping[str, Any], recognised: Sequence[str], others: Sequence[str], lang: Lang
) -> dict[str, Any]:
    """The secondary block: CT muscle, liver scores, bone and osteosarcopenia, GLIM, contributing
    factors, and the recognised conditions with their context."""
    known = known_conditions()
    factor_names, osteo_names = _secondary_names(row)
    factors = {
        factor: {"value": row[value], "flag": row.get(flag)} for factor, value, flag in factor_names
    }
    osteo = {variant: row[name] for variant, name in osteo_names}
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
