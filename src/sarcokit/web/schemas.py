"""The HTTP API's request and response shapes (documented in the OpenAPI schema)."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sarcokit.fields import CONDITIONS, GRIP_TRIALS, input_columns

_JSON_TYPES = {
    "text": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "category": "string",
}


@cache
def subject_record_schema() -> dict[str, Any]:
    """JSON Schema of the subject record, generated from the field catalogue (fields.toml)."""
    properties: dict[str, Any] = {}
    for name, (spec, unit_name) in input_columns().items():
        kind = _JSON_TYPES[spec.kind]
        entry: dict[str, Any] = {"description": spec.expected(unit_name)}
        if spec.kind == "category":
            entry["type"] = "string"
            entry["examples"] = list(spec.values)
        elif spec.labels:
            # Questionnaire items take their points or the answer as worded.
            entry["type"] = [kind, "string"]
        else:
            entry["type"] = kind
        properties[name] = entry
    properties[GRIP_TRIALS] = {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 1,
        "description": "grip trials in kg; the best is used",
    }
    properties[CONDITIONS] = {
        "type": ["array", "string"],
        "items": {"type": "string"},
        "description": "ICD-10 codes or condition names (secondary sarcopenia)",
    }
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "description": "The subject record of DESIGN.md: CSV columns = JSON keys = API fields.",
    }


class ProblemOut(BaseModel):
    """Why a value was refused."""

    field: str
    value: Any = None
    expected: str
    message: str


class ErrorOut(BaseModel):
    """A refused request: the first problem, and all of them."""

    error: dict[str, Any]


class PatientIn(BaseModel):
    """A patient's identifying details."""

    model_config = ConfigDict(extra="forbid")
    record_number: str
    name: str
    sex: Literal["male", "female"]
    date_of_birth: date


class PatientOut(PatientIn):
    """A stored patient."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)
    id: int


class VisitIn(BaseModel):
    """A visit: its date and the measurements (subject-record fields except id, sex, age)."""

    model_config = ConfigDict(extra="forbid")
    visit_date: date
    measurements: dict[str, Any] = Field(
        json_schema_extra={"additionalProperties": True, "examples": [{"grip_kg": 17.5}]}
    )


class VisitCorrection(VisitIn):
    """A corrected visit and why it was corrected."""

    reason: str


class RevisionOut(BaseModel):
    """A superseded version of a visit."""

    model_config = ConfigDict(from_attributes=True)
    visit_date: date
    measurements: dict[str, Any]
    replaced_at: Any
    replaced_by: int
    reason: str


class VisitOut(BaseModel):
    """A stored visit with its result (in the reader's language) and its corrections."""

    id: int
    patient_id: int
    visit_date: date
    measurements: dict[str, Any]
    definitions: list[str]
    engine_version: str
    result: dict[str, Any]
    revisions: list[RevisionOut]


class UserIn(BaseModel):
    """A new account."""

    model_config = ConfigDict(extra="forbid")
    username: str
    display_name: str = ""
    password: str
    roles: list[Literal["admin", "clinician", "researcher"]]
    language: Literal["en", "zh-CN"] = "en"


class UserOut(BaseModel):
    """An account (never its password)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    display_name: str
    roles: str
    language: str
    active: bool


class UserChange(BaseModel):
    """A change to an account."""

    model_config = ConfigDict(extra="forbid")
    roles: list[Literal["admin", "clinician", "researcher"]] | None = None
    active: bool | None = None
    password: str | None = None


class SettingsIO(BaseModel):
    """The clinic's settings."""

    model_config = ConfigDict(extra="forbid")
    definitions: list[str]


class TokenRequest(BaseModel):
    """Credentials exchanged for a bearer token."""

    model_config = ConfigDict(extra="forbid")
    username: str
    password: str
    name: str = "api"


class TokenOut(BaseModel):
    """A new bearer token, shown once."""

    token: str
    token_type: Literal["bearer"] = "bearer"


class AuditOut(BaseModel):
    """One audit event."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    at: Any
    user_id: int | None
    action: str
    entity: str
    entity_id: int | None
    detail: str
