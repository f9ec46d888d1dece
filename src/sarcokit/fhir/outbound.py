"""Subject records and results → FHIR R4: measurement Observations, one Observation per
definition grouped in a DiagnosticReport, the SARC-F response and total, a confirmed Condition,
and an idempotent transaction (conditional create on identifiers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sarcokit.fhir.mapping import FhirMapping, InputMap, fhir_mapping
from sarcokit.fields import GAIT_SPEED, WALK_DISTANCE, WALK_TIME, input_columns
from sarcokit.i18n import catalogue
from sarcokit.result import Result
from sarcokit.screening import sarc_f_items

# Fields that go into the Patient resource, not into Observations.
PATIENT_FIELDS = frozenset({"id", "sex", "age"})
# Fields only written as part of another (asm_method qualifies asm_kg, the walk is one trial).
QUALIFIERS = frozenset({"asm_method", WALK_DISTANCE})


@dataclass
class Written:
    """Resources made from a record, and the fields that have no FHIR mapping."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    not_written: dict[str, str] = field(default_factory=dict)


def identifier(kind: str, value: str) -> dict[str, str]:
    """A project identifier: system under the canonical base, value the visit-scoped key."""
    return {"system": f"{fhir_mapping().identifier_base}/{kind}", "value": value}


def stable_id(ident: Mapping[str, str]) -> str:
    """A resource id derived from its identifier (same visit → same id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, ident["system"] + "|" + ident["value"]))


def full_url(ident: Mapping[str, str]) -> str:
    """A stable urn:uuid for a resource, from its identifier."""
    return f"urn:uuid:{stable_id(ident)}"


def _with_id(resource: dict[str, Any]) -> dict[str, Any]:
    ident = _ident(resource)
    return (
        {"resourceType": resource["resourceType"], "id": stable_id(ident), **resource}
        if ident
        else resource
    )


def _category(mapping: FhirMapping, code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": mapping.systems["observation_category"], "code": code}]}]


def _canonical(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    columns = input_columns()
    for name, value in record.items():
        if value is None or name not in columns:
            continue
        spec, alt_name = columns[name]
        alternative = spec.alternative(alt_name)
        out[spec.name] = value if alternative is None else alternative.to_canonical(float(value))
    return out


def _birth_date(age: float, when: date) -> str:
    years = int(age)
    try:
        return when.replace(year=when.year - years).isoformat()
    except ValueError:  # 29 February in a year without one
        return when.replace(year=when.year - years, day=28).isoformat()


def patient_resource(patient_id: str, record: Mapping[str, Any], when: date) -> dict[str, Any]:
    """A Patient with the record's sex and a birth date that gives its age on `when`."""
    canonical = _canonical(record)
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id}
    if canonical.get("sex") in ("male", "female"):
        patient["gender"] = canonical["sex"]
    if canonical.get("age") is not None:
        patient["birthDate"] = _birth_date(canonical["age"], when)
    return patient


def _primary_inputs(mapping: FhirMapping) -> dict[str, InputMap]:
    found: dict[str, InputMap] = {}
    for item in mapping.inputs:
        found.setdefault(item.field, item)
    return found


def measurement(
    item: InputMap, canonical_value: float, subject: str, when: str, key: str
) -> dict[str, Any]:
    """One Observation of a mapped field, in the field's emitted unit."""
    mapping = fhir_mapping()
    value = item.from_canonical(canonical_value)
    ident = identifier("observation", f"{key}/{item.name}")
    return _with_id(
        {
            "resourceType": "Observation",
            "identifier": [ident],
            "status": "final",
            "category": _category(mapping, item.category),
            "code": {"coding": [item.codes[0].to_fhir()]},
            "subject": {"reference": subject},
            "effectiveDateTime": when,
            "valueQuantity": {
                "value": round(value, 10),
                "unit": item.emit,
                "system": mapping.ucum,
                "code": item.emit,
            },
        }
    )


def record_resources(
    record: Mapping[str, Any], patient_id: str, when: date, key: str | None = None
) -> Written:
    """A subject record as a Patient, measurement Observations and a SARC-F response."""
    mapping = fhir_mapping()
    canonical = _canonical(record)
    key = key or f"{patient_id}/{when.isoformat()}"
    subject = f"Patient/{patient_id}"
    stamp = when.isoformat()
    out = Written([patient_resource(patient_id, record, when)])
    primary = _primary_inputs(mapping)
    items = set(sarc_f_items())
    for name, value in canonical.items():
        if name in PATIENT_FIELDS or name in QUALIFIERS or name in items:
            continue
        if name == WALK_TIME:
            if canonical.get(WALK_DISTANCE) != 4:
                out.not_written[name] = "only a 4 m walk has a LOINC trial-time code"
                continue
            if GAIT_SPEED in canonical:
                out.not_written[name] = "gait speed is written instead"
                continue
        if name == "asm_kg" and canonical.get("asm_method") != "dxa":
            method = canonical.get("asm_method")
            out.not_written[name] = f"only ASM by DXA has a code (asm_method = {method})"
            continue
        item = primary.get(name)
        if item is None:
            out.not_written[name] = "no FHIR mapping in reference/fhir.toml"
            continue
        out.resources.append(measurement(item, float(value), subject, stamp, key))
    answers = {name: canonical[name] for name in sarc_f_items() if name in canonical}
    if answers:
        out.resources.append(sarc_f_response(answers, subject, stamp, key))
    return out


def sarc_f_response(
    answers: Mapping[str, Any], subject: str, when: str, key: str
) -> dict[str, Any]:
    """A completed SARC-F QuestionnaireResponse with each item's score as its answer code."""
    mapping = fhir_mapping()
    from sarcokit.fhir.codes import sarc_f_questionnaire

    options = {
        item["linkId"]: {o["valueCoding"]["code"]: o["valueCoding"] for o in item["answerOption"]}
        for item in sarc_f_questionnaire()["item"]
    }
    items = []
    for link, score in answers.items():
        coding = {k: v for k, v in options[link][str(int(score))].items() if k != "extension"}
        items.append({"linkId": link, "answer": [{"valueCoding": coding}]})
    return _with_id(
        {
            "resourceType": "QuestionnaireResponse",
            "identifier": identifier("questionnaire-response", f"{key}/sarc-f"),
            "questionnaire": mapping.questionnaire_url,
            "status": "completed",
            "subject": {"reference": subject},
            "authored": when,
            "item": items,
        }
    )


def _state(mapping: FhirMapping, state: str) -> dict[str, Any]:
    if state == "unknown":
        # Three-valued logic: not measured is neither low nor normal.
        absent = {"system": mapping.systems["data_absent_reason"], "code": "unknown"}
        return {"dataAbsentReason": {"coding": [absent]}}
    return {"valueCodeableConcept": {"coding": [mapping.project_coding(state)]}}


def result_resources(
    result: Result,
    subject: str,
    when: str,
    key: str,
    sources: Sequence[str] = (),
    sarc_f_response_url: str | None = None,
    corrected: bool = False,
) -> list[dict[str, Any]]:
    """One Observation per definition, derived values, the SARC-F total, and the
    DiagnosticReport grouping them. `sources` are references to the observations read;
    `corrected` marks them as replacing what was written before for the same visit."""
    if not result.ok:
        raise ValueError("a rejected record has no result to write")
    # FHIR R4: "corrected" is a final result changed after it was released, to fix an error.
    status = "corrected" if corrected else "final"
    mapping = fhir_mapping()
    words = catalogue("en")
    derived_from = [{"reference": ref} for ref in sources]
    resources: list[dict[str, Any]] = []
    for definition_id, answer in result.definitions.items():
        ident = identifier("observation", f"{key}/{definition_id}")
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "identifier": [ident],
            "status": status,
            "category": _category(mapping, "exam"),
            "code": {"coding": [mapping.project_coding("sarcopenia-category")]},
            "method": {"coding": [mapping.project_coding(definition_id)]},
            "subject": {"reference": subject},
            "effectiveDateTime": when,
            "component": [
                {"code": {"coding": [mapping.project_coding(component)]}, **_state(mapping, s)}
                for component, s in answer.components.items()
            ],
        }
        if answer.category is None:
            absent = {"system": mapping.systems["data_absent_reason"], "code": "unknown"}
            observation["dataAbsentReason"] = {"coding": [absent]}
        else:
            coding = mapping.project_coding(answer.category)
            observation["valueCodeableConcept"] = {"coding": [coding]}
        notes = [*answer.reasons]
        notes += [words.get(f"next.{step}", step) for step in answer.next_steps]
        if notes:
            observation["note"] = [{"text": text} for text in notes]
        if derived_from:
            observation["derivedFrom"] = derived_from
        resources.append(observation)
    for name, out in mapping.outputs.items():
        value = result.derived.get(name, result.secondary.get(name))
        if not isinstance(value, int | float):
            continue
        resources.append(
            {
                "resourceType": "Observation",
                "identifier": [identifier("observation", f"{key}/{name}")],
                "status": status,
                "category": _category(mapping, "exam"),
                "code": {"coding": [out.code.to_fhir()]},
                "subject": {"reference": subject},
                "effectiveDateTime": when,
                "valueQuantity": {
                    "value": value,
                    "unit": out.unit,
                    "system": mapping.ucum,
                    "code": out.unit,
                },
            }
        )
    total = result.screening.get("sarc_f", {}).get("total")
    if total is not None:
        score: dict[str, Any] = {
            "resourceType": "Observation",
            "identifier": [identifier("observation", f"{key}/sarc-f-total")],
            "status": status,
            "category": _category(mapping, "survey"),
            "code": {"coding": [mapping.project_coding("sarc-f-total")]},
            "subject": {"reference": subject},
            "effectiveDateTime": when,
            "valueInteger": int(total),
        }
        if sarc_f_response_url:
            score["derivedFrom"] = [{"reference": sarc_f_response_url}]
        resources.append(score)
    report_ident = identifier("diagnostic-report", key)
    resources.append(
        {
            "resourceType": "DiagnosticReport",
            "identifier": [report_ident],
            "status": status,
            "code": {"coding": [mapping.project_coding("sarcopenia-report")]},
            "subject": {"reference": subject},
            "effectiveDateTime": when,
            "result": [{"reference": full_url(r["identifier"][0])} for r in resources],
            "conclusion": "; ".join(
                f"{d}: {words.get(f'category.{a.category}', a.category)}"
                for d, a in result.definitions.items()
            ),
        }
    )
    return [_with_id(r) for r in resources]


def sarcopenia_condition(
    subject: str, key: str, when: str, confirmed_by: str | None
) -> dict[str, Any]:
    """Sarcopenia (ICD-10-CM M62.84) as a confirmed Condition; only with a clinician's
    confirmation, never from the engine's category alone."""
    if not confirmed_by:
        raise ValueError("a sarcopenia Condition needs the confirming clinician")
    mapping = fhir_mapping()
    systems = mapping.systems
    return {
        "resourceType": "Condition",
        "identifier": [identifier("condition", f"{key}/sarcopenia")],
        "clinicalStatus": {"coding": [{"system": systems["condition_clinical"], "code": "active"}]},
        "verificationStatus": {
            "coding": [{"system": systems["condition_verification"], "code": "confirmed"}]
        },
        "category": [
            {"coding": [{"system": systems["condition_category"], "code": "encounter-diagnosis"}]}
        ],
        "code": {"coding": [mapping.condition.to_fhir()]},
        "subject": {"reference": subject},
        "recordedDate": when,
        "asserter": {"display": confirmed_by},
    }


def _ident(resource: Mapping[str, Any]) -> Mapping[str, str] | None:
    found = resource.get("identifier")
    if isinstance(found, list):
        return found[0] if found else None
    return found if isinstance(found, Mapping) else None


def written_keys(resources: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What identifies each written resource (type, identifier, code): kept with a write-back
    so that a correction can withdraw what it no longer writes."""
    return [
        {"resourceType": r["resourceType"], "identifier": dict(ident), "code": r.get("code")}
        for r in resources
        if (ident := _ident(r)) is not None
    ]


def withdrawn(
    before: Iterable[Mapping[str, Any]], now: Iterable[Mapping[str, Any]], subject: str
) -> list[dict[str, Any]]:
    """Resources written before (`written_keys`) that the corrected result no longer has
    (a value or a definition gone): the same identifier, status entered-in-error."""
    kept = {(k["resourceType"], k["identifier"]["value"]) for k in written_keys(now)}
    out = []
    for key in before:
        if (key["resourceType"], key["identifier"]["value"]) in kept:
            continue
        resource: dict[str, Any] = {
            "resourceType": key["resourceType"],
            "identifier": [dict(key["identifier"])],
            "status": "entered-in-error",
            "subject": {"reference": subject},
        }
        if key.get("code") is not None:
            resource["code"] = key["code"]
        out.append(resource)
    return out


def transaction(resources: Iterable[Mapping[str, Any]], replace: bool = False) -> dict[str, Any]:
    """A transaction Bundle: Patients and questionnaire responses by PUT on their (stable) id,
    everything else created only if no resource with its identifier exists (conditional
    create), so writing twice adds nothing. With `replace` (a corrected visit) everything else
    is a conditional update on its identifier instead: the resource written before is
    replaced, never duplicated, and created only if it is not there yet."""
    entries = []
    for resource in resources:
        kind = resource["resourceType"]
        ident = _ident(resource)
        # Patients by their id; a QuestionnaireResponse by its stable id too (R4 has an
        # `identifier` search on it, but not every server implements it).
        if kind in ("Patient", "QuestionnaireResponse") and resource.get("id"):
            url = f"{kind}/{resource['id']}"
            entries.append(
                {"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}}
            )
            continue
        if ident is None:
            raise ValueError(f"{kind} without an identifier cannot be written idempotently")
        search = f"identifier={ident['system']}|{ident['value']}"
        if replace:
            # The server keeps the id it gave the resource when it was created.
            body = {k: v for k, v in resource.items() if k != "id"}
            entries.append(
                {
                    "fullUrl": full_url(ident),
                    "resource": body,
                    "request": {"method": "PUT", "url": f"{kind}?{search}"},
                }
            )
            continue
        entries.append(
            {
                "fullUrl": full_url(ident),
                "resource": resource,
                "request": {
                    "method": "POST",
                    "url": kind,
                    "ifNoneExist": search,
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def collection(resources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A collection Bundle (as `read_bundle` reads), entries under their stable URLs."""
    entries = []
    for resource in resources:
        ident = _ident(resource)
        url = full_url(ident) if ident else f"{resource['resourceType']}/{resource.get('id')}"
        entries.append({"fullUrl": url, "resource": dict(resource)})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
