"""The HTTP API's request and response shapes (documented in the OpenAPI schema)."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sarcokit.fields import CONDITIONS, GRIP, field_specs, input_columns, trial_inputs
from sarcokit.web.assessment import MAX_CONDITIONS
from sarcokit.web.identity import (
    NAME_LENGTH,
    PASSWORD_LENGTH,
    REASON_LENGTH,
    RECORD_NUMBER_LENGTH,
    TOKEN_NAME_LENGTH,
    USERNAME_LENGTH,
)

_MEASUREMENTS = (
    "Subject-record fields except id, sex and age (see POST /api/v1/assess). At least one"
    " measurement or answer; grip as trials (`grip_kg_trials` or `grip_lb_trials`, at most"
    f" {field_specs()[GRIP].trials}; the best counts); `conditions`"
    f" at most {MAX_CONDITIONS} recognised ICD-10 codes or condition names."
)

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
    for name, (spec, unit_input) in trial_inputs().items():
        unit = spec.plausible(unit_input)[2]
        properties[name] = {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 1,
            "maxItems": spec.trials,
            "description": (
                f"{spec.name} trials in {unit} (at most {spec.trials}); the best is used"
            ),
        }
    properties[CONDITIONS] = {
        "type": ["array", "string"],
        "items": {"type": "string"},
        "maxItems": MAX_CONDITIONS,
        "description": (
            f"ICD-10 codes or condition names the engine recognises (at most {MAX_CONDITIONS};"
            " secondary sarcopenia); any other text is refused"
        ),
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
    record_number: str = Field(
        max_length=RECORD_NUMBER_LENGTH,
        description=(
            "Unicode NFKC, trimmed, zero-width characters removed, control and bidirectional"
            " characters refused; compared case-insensitively (409 when in use)"
        ),
    )
    name: str = Field(max_length=NAME_LENGTH)
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
        description=_MEASUREMENTS,
        json_schema_extra={"additionalProperties": True, "examples": [{"grip_kg": 17.5}]},
    )


class VisitCorrection(VisitIn):
    """A corrected visit and why it was corrected."""

    reason: str = Field(max_length=REASON_LENGTH)


class VoidIn(BaseModel):
    """Why a visit is voided (it was entered by mistake)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=REASON_LENGTH)


class VoidOut(BaseModel):
    """When, by whom and why a visit was voided."""

    model_config = ConfigDict(from_attributes=True)
    voided_at: Any
    voided_by: int
    reason: str


class RevisionOut(BaseModel):
    """A superseded version of a visit."""

    model_config = ConfigDict(from_attributes=True)
    visit_date: date
    measurements: dict[str, Any]
    replaced_at: Any
    replaced_by: int
    reason: str


# -- the result contract (README, "Contract version 2") ---------------------------------------


class CutoffOut(BaseModel):
    """A cut-off that applied to a reason: value, inequality for low as printed, stratum."""

    value: float
    op: str = Field(description="the inequality that means low, as the source prints it")
    sex: str | None
    age_from: float | None = Field(description="age band, completed years, inclusive")
    age_below: float | None = Field(description="age band, completed years, exclusive")
    methods: list[str] | None = Field(description="mass methods the cut-off belongs to")


class ReasonOut(BaseModel):
    """One reason as data; `reasons` holds the same, in the same order, as sentences."""

    code: str = Field(description="which sentence: test, unable, partial, category, …")
    definition: str | None
    component: str | None
    test: str | None = Field(description="the test's id in the criteria file")
    input: str | None = Field(description="the subject-record field or derived value tested")
    value: Any = Field(description="the value as compared (unrounded)")
    unit: str | None
    op: str | None
    cutoffs: list[CutoffOut]
    low: bool | None = Field(description="whether the value met the inequality for low")
    state: str | None
    category: str | None
    source: str | None = Field(description="key into the criteria file, e.g. ewgsop2/tests/grip")
    source_text: str | None = Field(description="the citation as the criteria file prints it")
    detail: dict[str, Any]


class StepSourceOut(BaseModel):
    """The guideline behind a next step."""

    source: str
    source_text: str


def _absent(value: Any) -> bool:
    return value is None


class DefinitionOut(BaseModel):
    """One definition's answer: category, components, reasons (text and data), next steps."""

    category: str | None
    components: dict[str, str]
    reasons: list[str] = Field(description="sentences in the result's `lang`")
    explanations: list[ReasonOut] = Field(description="the reasons as data (empty in version 1)")
    next_steps: list[str] = Field(description="codes; their text is in the message catalogues")
    next_step_sources: dict[str, StepSourceOut] = Field(default_factory=dict)
    # The optional blocks appear only where a definition has them, as in the contract.
    outcomes: dict[str, str] | None = Field(
        None, description="AWGS 2025 outcome measures", exclude_if=_absent
    )
    case_finding: dict[str, str] | None = Field(
        None, description="AWGS 2025 case finding", exclude_if=_absent
    )
    local: bool | None = Field(
        None, description="true for a clinic's own definition file", exclude_if=_absent
    )
    sha256: str | None = Field(
        None, description="SHA-256 of a local definition file's text", exclude_if=_absent
    )


class ResultOut(BaseModel):
    """One subject's result: the DESIGN.md contract, version 2."""

    id: Any
    contract_version: int = Field(description="2: reasons as data; 1: reasons as text only")
    lang: str = Field(description="the language of the sentences (en or zh)")
    derived: dict[str, float | None]
    screening: dict[str, dict[str, Any]]
    definitions: dict[str, DefinitionOut]
    secondary: dict[str, Any]
    definitions_sha256: str | None


class VisitOut(BaseModel):
    """A stored visit with its result (in the reader's language) and its corrections."""

    id: int
    patient_id: int
    visit_date: date
    measurements: dict[str, Any]
    definitions: list[str]
    engine_version: str
    result: ResultOut
    revisions: list[RevisionOut]
    voided: VoidOut | None = None


class VoidedVisitOut(BaseModel):
    """A voided visit as administrators see it: what it recorded, and the void."""

    id: int
    patient_id: int
    visit_date: date
    measurements: dict[str, Any]
    voided: VoidOut


class UserIn(BaseModel):
    """A new account."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=USERNAME_LENGTH)
    display_name: str = Field("", max_length=NAME_LENGTH)
    password: str = Field(max_length=PASSWORD_LENGTH)
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
    password: str | None = Field(None, max_length=PASSWORD_LENGTH)


class SettingsIO(BaseModel):
    """The clinic's settings."""

    model_config = ConfigDict(extra="forbid")
    definitions: list[str]


class TokenRequest(BaseModel):
    """Credentials exchanged for a bearer token."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=4 * USERNAME_LENGTH)
    password: str = Field(max_length=PASSWORD_LENGTH)
    name: str = Field("api", max_length=TOKEN_NAME_LENGTH)


class TokenOut(BaseModel):
    """A new bearer token, shown once."""

    id: int
    token: str
    token_type: Literal["bearer"] = "bearer"


class TokenInfo(BaseModel):
    """One of the user's tokens, never its secret."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    created_at: Any
    revoked: bool


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


class DefinitionUpload(BaseModel):
    """A local definition file's text (or send it as multipart form field `file`)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="the TOML text of a criteria file (schema = 1), UTF-8")
    filename: str = Field("upload.toml", max_length=200, description="named in the problems")


class LocalDefinitionOut(BaseModel):
    """One uploaded version of a local definition; `in_use` marks the version the clinic uses
    for its id (the newest one not retired)."""

    upload_id: int
    definition_id: str
    name: str
    sha256: str
    local: Literal[True] = True
    uploaded_by: str
    uploaded_at: Any
    retired_at: Any
    in_use: bool
