"""What sarcokit reads of each FHIR resource type (as Polars types: the bulk reader parses with
them) and the check that a resource's elements have those JSON types, shared by the Bundle and
the bulk reader so that both refuse the same resources with the same words."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

PATIENT, OBSERVATION, RESPONSE = "Patient", "Observation", "QuestionnaireResponse"

CODING = pl.List(pl.Struct({"system": pl.String, "code": pl.String}))
CONCEPT = pl.Struct({"coding": CODING})
QUANTITY = pl.Struct(
    {
        "value": pl.Float64,
        "unit": pl.String,
        "code": pl.String,
        "system": pl.String,
        "comparator": pl.String,
    }
)
ELEMENT: dict[str, Any] = {
    "code": CONCEPT,
    "valueQuantity": QUANTITY,
    "valueInteger": pl.Int64(),
    "dataAbsentReason": CONCEPT,
}
OBSERVATION_SCHEMA: dict[str, Any] = {
    "id": pl.String,
    "status": pl.String,
    "subject": pl.Struct({"reference": pl.String}),
    "effectiveDateTime": pl.String,
    "effectiveInstant": pl.String,
    "effectivePeriod": pl.Struct({"start": pl.String, "end": pl.String}),
    "issued": pl.String,
    **ELEMENT,
    "component": pl.List(pl.Struct(ELEMENT)),
}
PATIENT_SCHEMA: dict[str, Any] = {"id": pl.String, "gender": pl.String, "birthDate": pl.String}
ANSWER = pl.Struct({"valueCoding": pl.Struct({"code": pl.String}), "valueInteger": pl.Int64})
RESPONSE_SCHEMA: dict[str, Any] = {
    "id": pl.String,
    "questionnaire": pl.String,
    "status": pl.String,
    "subject": pl.Struct({"reference": pl.String}),
    "authored": pl.String,
    "item": pl.List(pl.Struct({"linkId": pl.String, "answer": pl.List(ANSWER)})),
}
# The resource types sarcokit reads, and the elements it reads of each.
SCHEMAS: dict[str, dict[str, Any]] = {
    PATIENT: PATIENT_SCHEMA,
    OBSERVATION: OBSERVATION_SCHEMA,
    RESPONSE: RESPONSE_SCHEMA,
}


JSON_KIND = {dict: "an object", list: "an array", str: "a string", bool: "true or false",
              int: "a number", float: "a number"}  # fmt: skip


def element_problem(value: Any, dtype: Any, where: str) -> str | None:
    """Why `value` cannot be read as `dtype` (naming the element, the value and what was
    expected), or None. JSON null is always allowed."""
    if value is None:
        return None
    if isinstance(dtype, pl.Struct):
        if not isinstance(value, dict):
            expected = "an object"
        else:
            for field in dtype.fields:
                inner = value.get(field.name)
                problem = element_problem(inner, field.dtype, f"{where}.{field.name}")
                if problem:
                    return problem
            return None
    elif isinstance(dtype, pl.List):
        if not isinstance(value, list):
            expected = "an array"
        else:
            for index, item in enumerate(value):
                problem = element_problem(item, dtype.inner, f"{where}[{index}]")
                if problem:
                    return problem
            return None
    elif dtype == pl.String:
        if isinstance(value, str):
            return None
        expected = "a string"
    elif dtype == pl.Int64:
        if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
            return None
        expected = "a whole number of at most 64 bits"
    else:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return None
        expected = "a number"
    shown = json.dumps(value, ensure_ascii=False)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{where.lstrip('.')} is {shown} ({JSON_KIND[type(value)]}); expected {expected}"


# Each type's elements as one Struct, built once: a Bundle's every resource is checked.
_STRUCTS = {kind: pl.Struct(schema) for kind, schema in SCHEMAS.items()}


def resource_problem(resource: Any, kind: Any) -> str | None:
    """Why `resource` is not a `kind` resource (one of SCHEMAS) whose elements sarcokit can
    read, or None; a `kind` that is not text is a resourceType missing or of the wrong type."""
    if not isinstance(resource, dict):
        return f"not a JSON object but {JSON_KIND.get(type(resource), 'null')}"
    if not isinstance(kind, str):
        return "resourceType is missing or not a string"
    return element_problem(resource, _STRUCTS[kind], "")
