"""The project CodeSystem and the SARC-F Questionnaire, generated from the reference data."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from typing import Any

from sarcokit import __version__
from sarcokit.definitions import definitions
from sarcokit.fhir.mapping import fhir_mapping
from sarcokit.i18n import catalogue


def _display(section: str, code: str) -> str:
    return catalogue("en").get(f"{section}.{code}", code.replace("_", " "))


def concepts() -> dict[str, dict[str, str]]:
    """Every project code: the measurements of fhir.toml, then definitions, categories,
    components and component states from the criteria files."""
    found: dict[str, dict[str, str]] = {
        code: {"display": entry["display"], "definition": entry["definition"]}
        for code, entry in fhir_mapping().concepts.items()
    }

    def add(code: str, display: str, definition: str) -> None:
        if code in found and found[code]["display"] != display:
            raise ValueError(f"project code {code} has two meanings")
        found.setdefault(code, {"display": display, "definition": definition})

    for definition in definitions():
        add(definition.id, definition.name, f"Consensus definition: {definition.citation}")
        for category in definition.category_ids:
            add(category, _display("category", category), "A sarcopenia category.")
        for component in definition.components:
            add(component.id, _display("component", component.id), "A definition's component.")
            for state in component.states:
                add(state, _display("state", state), "A component's state.")
    return found


def codesystem() -> dict[str, Any]:
    """The project CodeSystem as a FHIR R4 resource (complete content)."""
    mapping = fhir_mapping()
    meta = mapping.codesystem_meta
    listed = concepts()
    return {
        "resourceType": "CodeSystem",
        "id": "sarcokit",
        "url": mapping.codesystem_url,
        "version": __version__,
        "name": meta["name"],
        "title": meta["title"],
        "status": "active",
        "publisher": meta["publisher"],
        "caseSensitive": True,
        "content": "complete",
        "count": len(listed),
        "concept": [{"code": code, **entry} for code, entry in listed.items()],
    }


def _sarc_f_wording() -> dict[str, Any]:
    text = files("sarcokit").joinpath("reference/questionnaires.toml").read_text("utf-8")
    return dict(tomllib.loads(text)["sarc_f"])


def sarc_f_questionnaire() -> dict[str, Any]:
    """The SARC-F as a FHIR Questionnaire; answer scores carried by the itemWeight extension
    (and its R4 name, ordinalValue). Wording from reference/questionnaires.toml."""
    mapping = fhir_mapping()
    wording = _sarc_f_wording()
    items = []
    for item in wording["items"]:
        options = []
        for answer in item["answers"]:
            weight = [
                {"url": mapping.systems["item_weight"], "valueDecimal": answer["value"]},
                {"url": mapping.systems["ordinal_value"], "valueDecimal": answer["value"]},
            ]
            coding = {
                "system": f"{mapping.questionnaire_url}/answers",
                "code": str(answer["value"]),
                "display": answer["en"],
                "extension": weight,
            }
            options.append({"valueCoding": coding})
        items.append(
            {
                "linkId": item["field"],
                "text": item["question"]["en"],
                "prefix": item["component"]["en"],
                "type": "choice",
                "required": True,
                "answerOption": options,
            }
        )
    return {
        "resourceType": "Questionnaire",
        "id": "sarc-f",
        "url": mapping.questionnaire_url,
        "version": __version__,
        "name": "SARCF",
        "title": wording["title"]["en"],
        "status": "active",
        "publisher": mapping.codesystem_meta["publisher"],
        "description": wording["citation"],
        "code": [mapping.project_coding("sarc-f-total")],
        "item": items,
    }
