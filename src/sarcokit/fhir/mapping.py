"""The FHIR mapping as data (reference/fhir.toml): codes → fields, UCUM units, look-back windows."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cache, cached_property
from importlib.resources import files
from typing import Any, Literal

from sarcokit.fields import field_specs, input_columns

Combine = Literal["latest", "max", "min"]


@dataclass(frozen=True)
class Coding:
    """One code: its system URL, code and display, with the evidence it was checked against."""

    system: str
    code: str
    display: str | None = None
    evidence: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        """The FHIR Coding."""
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True)
class InputMap:
    """How one kind of coded Observation feeds one subject-record field."""

    name: str
    field: str
    codes: tuple[Coding, ...]
    units: Mapping[str, str]
    emit: str
    lookback_days: int
    combine: Combine
    category: str
    implies: Mapping[str, Any] = dataclass_field(default_factory=dict)
    yields_to: str | None = None

    def to_canonical(self, value: float, unit: str) -> float:
        """The value in the field's canonical unit (the unit must be accepted)."""
        column = self.units[unit]
        spec, alternative = input_columns()[column]
        found = spec.alternative(alternative)
        return value if found is None else found.to_canonical(value)

    def from_canonical(self, value: float) -> float:
        """The canonical value expressed in the emitted unit."""
        spec, alternative = input_columns()[self.units[self.emit]]
        found = spec.alternative(alternative)
        if found is None:
            return value
        return value * found.divide_by if found.divide_by is not None else value / found.factor


@dataclass(frozen=True)
class OutputMap:
    """How a derived value is written: its code and UCUM unit."""

    name: str
    code: Coding
    unit: str


@dataclass(frozen=True)
class FhirMapping:
    """The whole mapping file, resolved."""

    systems: Mapping[str, str]
    base: str
    codesystem_url: str
    questionnaire_url: str
    identifier_base: str
    codesystem_meta: Mapping[str, str]
    concepts: Mapping[str, Mapping[str, str]]
    inputs: tuple[InputMap, ...]
    outputs: Mapping[str, OutputMap]
    sarc_f_lookback_days: int
    sarc_f_total_unit: str
    condition: Coding

    @cached_property
    def by_code(self) -> dict[tuple[str, str], InputMap]:
        """(system URL, code) → the input it feeds."""
        return {(c.system, c.code): item for item in self.inputs for c in item.codes}

    @property
    def ucum(self) -> str:
        """The UCUM system URL."""
        return self.systems["ucum"]

    def project_coding(self, code: str, display: str | None = None) -> dict[str, Any]:
        """A Coding in the project CodeSystem (the code must be one of its concepts)."""
        out: dict[str, Any] = {"system": self.codesystem_url, "code": code}
        shown = display or self.concepts.get(code, {}).get("display")
        if shown:
            out["display"] = shown
        return out


class MappingError(ValueError):
    """The mapping file contradicts itself or the subject record."""


def _coding(raw: Mapping[str, Any], systems: Mapping[str, str], project: str) -> Coding:
    system = raw["system"]
    url = project if system == "project" else systems[system]
    return Coding(url, str(raw["code"]), raw.get("display"), raw.get("evidence"))


@cache
def fhir_mapping() -> FhirMapping:
    """The mapping in reference/fhir.toml, checked against fields.toml."""
    raw = tomllib.loads(files("sarcokit").joinpath("reference/fhir.toml").read_text("utf-8"))
    systems = dict(raw["systems"])
    project = raw["project"]
    base = str(project["base"]).rstrip("/")
    codesystem_url = f"{base}/{project['codesystem']}"
    concepts = {code: dict(entry) for code, entry in raw["concepts"].items()}
    specs = field_specs()
    columns = input_columns()
    inputs: list[InputMap] = []
    for name, entry in raw["inputs"].items():
        item = InputMap(
            name=name,
            field=entry["field"],
            codes=tuple(_coding(c, systems, codesystem_url) for c in entry["codes"]),
            units=dict(entry["units"]),
            emit=entry["emit"],
            lookback_days=int(entry["lookback_days"]),
            combine=entry["combine"],
            category=entry["category"],
            implies=dict(entry.get("implies", {})),
            yields_to=entry.get("yields_to"),
        )
        if item.field not in specs:
            raise MappingError(f"inputs.{name}: {item.field} is not a subject-record field")
        for unit, column in item.units.items():
            if column not in columns or columns[column][0].name != item.field:
                raise MappingError(
                    f"inputs.{name}: unit {unit} names {column}, not {item.field} or one of "
                    "its alternatives in fields.toml"
                )
        if item.emit not in item.units:
            raise MappingError(f"inputs.{name}: emitted unit {item.emit} is not accepted")
        for coding in item.codes:
            if coding.system == codesystem_url and coding.code not in concepts:
                raise MappingError(f"inputs.{name}: {coding.code} is not a project concept")
        inputs.append(item)
    seen: dict[tuple[str, str], str] = {}
    for item in inputs:
        for coding in item.codes:
            key = (coding.system, coding.code)
            if key in seen:
                raise MappingError(f"{coding.code} maps to both {seen[key]} and {item.name}")
            seen[key] = item.name
    outputs = {
        name: OutputMap(name, _coding(entry["code"], systems, codesystem_url), entry["unit"])
        for name, entry in raw["outputs"].items()
    }
    return FhirMapping(
        systems=systems,
        base=base,
        codesystem_url=codesystem_url,
        questionnaire_url=f"{base}/{project['questionnaire']}",
        identifier_base=f"{base}/{project['identifier']}",
        codesystem_meta={k: str(project[k]) for k in ("name", "title", "publisher")},
        concepts=concepts,
        inputs=tuple(inputs),
        outputs=outputs,
        sarc_f_lookback_days=int(raw["sarc_f"]["lookback_days"]),
        sarc_f_total_unit=str(raw["sarc_f"]["total_unit"]),
        condition=_coding(raw["condition"]["code"], systems, codesystem_url),
    )


def ucum_codes() -> set[str]:
    """Every UCUM code the mapping accepts or emits."""
    mapping = fhir_mapping()
    codes = {unit for item in mapping.inputs for unit in item.units}
    codes |= {out.unit for out in mapping.outputs.values()}
    codes.add(mapping.sarc_f_total_unit)
    return codes
