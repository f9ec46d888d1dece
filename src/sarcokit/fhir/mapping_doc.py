"""docs/fhir-mappings.md, generated from reference/fhir.toml (and fields.toml for the units)."""

from __future__ import annotations

from sarcokit.fhir.mapping import Coding, FhirMapping, InputMap, fhir_mapping
from sarcokit.fields import field_specs, input_columns

_HEADER = """# FHIR mappings

Generated from `src/sarcokit/reference/fhir.toml` by `sarcokit fhir mappings` (`make docs`);
do not edit by hand. A test fails when this file and the mapping disagree.

How an observation is read: its code picks the row below; its UCUM unit must be one of the
accepted ones (anything else is refused, naming the field and the unit) and is converted to the
field's unit as fields.toml says; an observation older than the look-back window before the
assessment date is listed as too old; of several on the newest day the rule in "choice" picks
one. Every observation used or left out is listed with its reason.
"""


def _system(mapping: FhirMapping, coding: Coding) -> str:
    names = {url: name for name, url in mapping.systems.items()}
    if coding.system == mapping.codesystem_url:
        return "project"
    return names.get(coding.system, coding.system)


def _evidence(mapping: FhirMapping, coding: Coding) -> str:
    if coding.system == mapping.codesystem_url:
        return f"project CodeSystem ({mapping.codesystem_url}): no LOINC code exists"
    return coding.evidence or "none recorded"


def _conversion(item: InputMap, unit: str) -> str:
    column = item.units[unit]
    spec, name = input_columns()[column]
    alternative = spec.alternative(name)
    if alternative is None:
        return f"as is → `{spec.name}`"
    if alternative.divide_by is not None:
        how = f"÷ {alternative.divide_by:.12g}"
    else:
        how = f"× {alternative.factor:.12g}"
    return f"{how} (as `{column}`) → `{spec.name}`"


def _code(mapping: FhirMapping, coding: Coding) -> str:
    shown = coding.display or mapping.concepts.get(coding.code, {}).get("display", "")
    return f"`{coding.code}` ({_system(mapping, coding)}) {shown}".rstrip()


def mappings_markdown() -> str:
    """The whole mapping as Markdown: codes, systems, units, conversions, windows, evidence."""
    mapping = fhir_mapping()
    specs = field_specs()
    lines = [_HEADER, "## Code systems", ""]
    lines += ["| name | URL |", "|---|---|"]
    lines += [f"| {name} | {url} |" for name, url in mapping.systems.items()]
    lines += [f"| project | {mapping.codesystem_url} |", ""]
    lines += ["## Observations read into the subject record", ""]
    for item in mapping.inputs:
        spec = specs[item.field]
        lines += [f"### `{item.name}` → `{item.field}` ({spec.unit or 'no unit'})", ""]
        lines += [f"- Codes: {'; '.join(_code(mapping, c) for c in item.codes)}"]
        lines += [f"- Category: {item.category}"]
        units = ", ".join(f"`{u}` {_conversion(item, u)}" for u in item.units)
        lines += [f"- Accepted UCUM units: {units}"]
        lines += [f"- Emitted UCUM unit: `{item.emit}`"]
        lines += [f"- Look-back window: {item.lookback_days} days"]
        choice = {"latest": "the newest", "max": "the best (largest)", "min": "the smallest"}
        lines += [f"- Choice on the newest day: {choice[item.combine]}"]
        if item.implies:
            implied = ", ".join(f"`{k}` = {v!r}" for k, v in item.implies.items())
            lines += [f"- The code also sets: {implied}"]
        if item.yields_to:
            lines += [f"- Not used when `{item.yields_to}` was observed within its window"]
        lines += ["- Evidence:"]
        lines += [f"  - `{c.code}`: {_evidence(mapping, c)}" for c in item.codes]
        lines += [""]
    lines += ["## Results written (not read back)", ""]
    lines += ["| value | code | system | UCUM unit | evidence |", "|---|---|---|---|---|"]
    for name, out in mapping.outputs.items():
        lines += [
            f"| `{name}` | `{out.code.code}` {out.code.display or ''} | "
            f"{_system(mapping, out.code)} | `{out.unit}` | {_evidence(mapping, out.code)} |"
        ]
    lines += [
        f"| SARC-F total | `sarc-f-total` | project | `{mapping.sarc_f_total_unit}` | "
        f"{_evidence(mapping, Coding(mapping.codesystem_url, 'sarc-f-total'))} |",
        "",
        "One Observation per definition (code `sarcopenia-category`, the definition as "
        "`method`, its category as the value, its components as `component`) and a "
        "DiagnosticReport (`sarcopenia-report`) grouping them, all in the project CodeSystem.",
        "",
        "## Condition (only when a clinician confirms it)",
        "",
        f"- `{mapping.condition.code}` ({_system(mapping, mapping.condition)}) "
        f"{mapping.condition.display}: {_evidence(mapping, mapping.condition)}",
        "",
        "## SARC-F",
        "",
        f"- Read from a QuestionnaireResponse answering `{mapping.questionnaire_url}`, "
        f"look-back window {mapping.sarc_f_lookback_days} days; the Questionnaire is "
        "published by `sarcokit fhir questionnaire` with the answer scores as `itemWeight`.",
        "",
        "## Project CodeSystem concepts (measurements without a LOINC code)",
        "",
        "| code | display | definition |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{code}` | {entry.get('display', '')} | {entry.get('definition', '')} |"
        for code, entry in mapping.concepts.items()
    ]
    return "\n".join(lines) + "\n"
