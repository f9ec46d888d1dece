"""The HTTP API under /api/v1: stateless assessment, and the clinic's records for token holders."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from sarcokit.definitions import DEFINITION_IDS, DefinitionRef
from sarcokit.fields import InputError
from sarcokit.result import Result
from sarcokit.web import audit, export, store
from sarcokit.web.assessment import bounded_record, invalid, stored_result, version_of
from sarcokit.web.batching import engine_queue
from sarcokit.web.deps import (
    Db,
    Principal,
    Throttled,
    api_role,
    api_user,
    patient_or_404,
    research_table,
    settings,
    sign_in,
    visit_or_404,
)
from sarcokit.web.export import ExportKind
from sarcokit.web.i18n import CORE_LANG, best_language
from sarcokit.web.identity import TOKEN_NAME_LENGTH, free_text
from sarcokit.web.models import LocalDefinition, Visit
from sarcokit.web.report import PDF_MAX_BYTES, PDF_TIMEOUT_S, report_filename, visit_pdf
from sarcokit.web.schemas import (
    AuditOut,
    DefinitionUpload,
    ErrorOut,
    LocalDefinitionOut,
    PatientIn,
    PatientOut,
    ResultOut,
    RevisionOut,
    SettingsIO,
    TokenInfo,
    TokenOut,
    TokenRequest,
    UserChange,
    UserIn,
    UserOut,
    VisitCorrection,
    VisitIn,
    VisitOut,
    VoidedVisitOut,
    VoidIn,
    VoidOut,
    subject_record_schema,
)
from sarcokit.web.security import issue_token, tokens_of
from sarcokit.web.smart_store import correction_written

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no valid bearer token"},
    403: {"model": ErrorOut, "description": "the token's user lacks the role"},
    404: {"model": ErrorOut, "description": "no such record"},
    409: {"model": ErrorOut, "description": "the change clashes with a stored record"},
    422: {"model": ErrorOut, "description": "a field was refused; `error.field` names it"},
}
router = APIRouter(prefix="/api/v1", responses=ERRORS)

Anyone = Annotated[Principal, Depends(api_user)]
Clinician = Annotated[Principal, Depends(api_role("clinician"))]
Researcher = Annotated[Principal, Depends(api_role("researcher"))]
Admin = Annotated[Principal, Depends(api_role("admin"))]


def _requested_language(
    request: Request,
    lang: Annotated[
        str | None,
        Query(description="en or zh-CN; else the Accept-Language header; else the user's language"),
    ] = None,
) -> str | None:
    """The language asked for: `?lang=`, else a supported one in Accept-Language, else None."""
    if lang is not None:
        return lang
    header = request.headers.get("accept-language", "")
    tags = [part.split(";")[0].strip().lower() for part in header.split(",")]
    if any(tag.startswith(("zh", "en")) for tag in tags):
        return best_language(header)
    return None


Language = Annotated[str | None, Depends(_requested_language)]


def _language(principal: Principal, requested: str | None) -> str:
    if requested is None:
        return principal.user.language
    return store.check_language(requested)


def _not_found(what: str, ident: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} with id {ident}")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise invalid("body", None, f"a JSON object ({error})") from None


@router.post(
    "/assess",
    summary="Assess one subject record (stateless; nothing is stored)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": subject_record_schema()}},
        }
    },
)
async def assess_record(
    request: Request,
    principal: Anyone,
    definitions: Annotated[
        str | None, Query(description="comma-separated definition ids; the clinic's by default")
    ] = None,
    lang: Language = None,
) -> ResultOut:
    """The DESIGN.md result contract for the record; a refused record is a 422 naming the field."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise invalid("body", None, "a JSON object with the fields of the subject record")
    bounded_record(body)
    language = _language(principal, lang)
    if definitions:
        chosen = await run_in_threadpool(_requested_definitions, request, definitions)
    else:
        chosen = await run_in_threadpool(_clinic_definitions, request)
    # Concurrent requests share one engine call (see batching); the event loop stays free.
    result = await asyncio.wrap_future(engine_queue.submit(body, chosen, CORE_LANG[language]))
    if not result.ok:
        raise InputError(result.problems)
    return ResultOut.model_validate(result.to_dict())


# The clinic's definitions change rarely: the stateless assessment reads them at most once a
# second per process (a change made in this process applies at once, see forget_definitions).
DEFINITIONS_TTL_S = 1.0


def _requested_definitions(request: Request, given: str) -> list[DefinitionRef]:
    # Built-in ids, or uploaded ids in the version the clinic uses now.
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as db:
        local = store.current_local(db) if set(given.split(",")) - set(DEFINITION_IDS) else {}
        known = (*DEFINITION_IDS, *local)
        chosen = given.split(",")
        if any(d not in known for d in chosen):
            raise invalid("definitions", given, f"ids among {', '.join(known)}")
        return [d if d in DEFINITION_IDS else version_of(local[d]) for d in chosen]


def _clinic_definitions(request: Request) -> list[DefinitionRef]:
    cached: tuple[float, list[DefinitionRef]] | None = request.app.state.definitions_cache
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as db:
        chosen = store.clinic_chosen(db)
    request.app.state.definitions_cache = (time.monotonic() + DEFINITIONS_TTL_S, chosen)
    return chosen


def forget_definitions(request: Request) -> None:
    """Drop this process's cached clinic definitions (after an administrator changed them)."""
    request.app.state.definitions_cache = None


# -- patients and visits (clinicians) --------------------------------------------------------


def _patient_in(body: PatientIn) -> store.PatientIn:
    return store.PatientIn(body.record_number, body.name, body.sex, body.date_of_birth)


@router.get("/patients", summary="Search patients by record number or name")
def list_patients(db: Db, principal: Clinician, q: str = "") -> list[PatientOut]:
    """Up to 50 patients whose record number or name contains `q`."""
    return [PatientOut.model_validate(p) for p in store.search_patients(db, principal.user, q)]


@router.post("/patients", status_code=201, summary="Register a patient")
def create_patient(db: Db, principal: Clinician, body: PatientIn) -> PatientOut:
    """A new patient; 409 when the record number is taken."""
    patient = store.create_patient(db, principal.user, _patient_in(body))
    return PatientOut.model_validate(patient)


@router.get("/patients/{patient_id}", summary="One patient")
def read_patient(db: Db, principal: Clinician, patient_id: int) -> PatientOut:
    """The patient's identifying details."""
    return PatientOut.model_validate(patient_or_404(db, principal, patient_id))


@router.put("/patients/{patient_id}", summary="Correct a patient's details")
def update_patient(db: Db, principal: Clinician, patient_id: int, body: PatientIn) -> PatientOut:
    """The corrected patient."""
    patient = patient_or_404(db, principal, patient_id)
    store.update_patient(db, principal.user, patient, _patient_in(body))
    return PatientOut.model_validate(patient)


def _read(db: Db, principal: Principal, visit_id: int, lang: str | None) -> VisitOut:
    visit = visit_or_404(db, principal, visit_id)
    return _visit_out(visit, stored_result(visit, CORE_LANG[_language(principal, lang)]))


def _visit_out(visit: Visit, result: Result) -> VisitOut:
    return VisitOut(
        id=visit.id,
        patient_id=visit.patient_id,
        visit_date=visit.visit_date,
        measurements=visit.measurements,
        definitions=visit.definitions,
        engine_version=visit.engine_version,
        result=ResultOut.model_validate(result.to_dict()),
        revisions=[RevisionOut.model_validate(r) for r in visit.revisions],
        voided=VoidOut.model_validate(visit.void) if visit.void else None,
    )


@router.get("/patients/{patient_id}/visits", summary="A patient's visits, oldest first")
def list_visits(
    db: Db, principal: Clinician, patient_id: int, lang: Language = None
) -> list[VisitOut]:
    """Every visit with its result."""
    patient = patient_or_404(db, principal, patient_id)
    language = _language(principal, lang)
    visits = store.patient_visits(db, principal.user, patient)
    return [_visit_out(v, stored_result(v, CORE_LANG[language])) for v in visits]


@router.post("/patients/{patient_id}/visits", status_code=201, summary="Record a visit")
def create_visit(
    db: Db, principal: Clinician, patient_id: int, body: VisitIn, lang: Language = None
) -> VisitOut:
    """The stored visit and its result under the clinic's definitions."""
    patient = patient_or_404(db, principal, patient_id)
    language = _language(principal, lang)
    visit, result = store.create_visit(
        db, principal.user, patient, body.visit_date, body.measurements, CORE_LANG[language]
    )
    return _visit_out(visit, result)


@router.get("/visits/{visit_id}", summary="One visit with its result")
def read_visit(db: Db, principal: Clinician, visit_id: int, lang: Language = None) -> VisitOut:
    """The visit, its measurements and its result in the reader's language."""
    return _read(db, principal, visit_id, lang)


@router.put("/visits/{visit_id}", summary="Correct a visit (the superseded version is kept)")
def correct_visit(
    request: Request,
    db: Db,
    principal: Clinician,
    visit_id: int,
    body: VisitCorrection,
    lang: Language = None,
) -> VisitOut:
    """The corrected visit; `reason` says why, and the previous version stays in `revisions`.
    A visit saved from an EHR launch has what was written back replaced."""
    visit = visit_or_404(db, principal, visit_id)
    language = _language(principal, lang)
    before = dict(visit.measurements or {})
    result = store.correct_visit(
        db,
        principal.user,
        visit,
        body.visit_date,
        body.measurements,
        body.reason,
        CORE_LANG[language],
    )
    correction_written(db, settings(request), principal.user, visit, before)
    db.flush()
    db.refresh(visit, ["revisions"])
    return _visit_out(visit, result)


@router.post(
    "/visits/{visit_id}/void", summary="Void a visit entered by mistake (kept, not deleted)"
)
def void_visit(
    db: Db, principal: Clinician, visit_id: int, body: VoidIn, lang: Language = None
) -> VisitOut:
    """The voided visit. It leaves the patient's visit list, history and the research export;
    administrators still see it (GET /api/v1/voided-visits). `reason` is required."""
    visit = visit_or_404(db, principal, visit_id)
    language = _language(principal, lang)
    store.void_visit(db, principal.user, visit, body.reason)
    return _visit_out(visit, stored_result(visit, CORE_LANG[language]))


@router.get("/voided-visits", summary="Voided visits, newest first (administrators)")
def voided_visits(db: Db, principal: Admin) -> list[VoidedVisitOut]:
    """Every voided visit: what it recorded and who voided it, when and why."""
    return [
        VoidedVisitOut(
            id=v.id,
            patient_id=v.patient_id,
            visit_date=v.visit_date,
            measurements=v.measurements,
            voided=VoidOut.model_validate(v.void),
        )
        for v in store.all_voided_visits(db, principal.user)
    ]


@router.get("/visits/{visit_id}/result", summary="A visit's result (the DESIGN.md contract)")
def read_result(db: Db, principal: Clinician, visit_id: int, lang: Language = None) -> ResultOut:
    """The result contract for the visit under the definitions it was recorded with."""
    return _read(db, principal, visit_id, lang).result


@router.get(
    "/visits/{visit_id}/report.pdf",
    summary="The visit report as PDF",
    description=(
        "The printable report for the chart, in the reader's language. Rendering is bounded:"
        f" at most {PDF_TIMEOUT_S:g} s (else 503) and {PDF_MAX_BYTES // 2**20} MiB (else 413),"
        " with `error.field` = `report`."
    ),
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def read_report(db: Db, principal: Clinician, visit_id: int, lang: Language = None) -> Response:
    """The printable report for the chart, in the reader's language."""
    visit = visit_or_404(db, principal, visit_id, "visit.report")
    pdf = visit_pdf(visit, _language(principal, lang))
    disposition = f'attachment; filename="{report_filename(visit)}"'
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})


# -- research ------------------------------------------------------------------------------


@router.get("/export", summary="De-identified export of every visit (researchers)")
def export_rows(request: Request, db: Db, principal: Researcher) -> list[dict[str, Any]]:
    """One typed row per visit: pseudonym, sex, age (capped at 90), days since first visit,
    measurements in canonical units with every grip trial, and the stored results."""
    frame, _ = research_table(request, db, principal)
    return frame.to_dicts()


@router.get("/export/dictionary", summary="The export's data dictionary (researchers)")
def export_dictionary(request: Request, db: Db, principal: Researcher) -> list[dict[str, str]]:
    """Each column of the export: name, type, unit, description and origin."""
    _, columns = research_table(request, db, principal)
    return [column.as_row() for column in columns]


@router.get(
    "/export.{kind}",
    summary="The export as a CSV or Parquet file (researchers)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
)
def export_file(request: Request, db: Db, principal: Researcher, kind: ExportKind) -> Response:
    """The typed export as a file: CSV (booleans true/false) or Parquet (column types kept)."""
    frame, _ = research_table(request, db, principal)
    return export.file_response(frame, kind)


# -- accounts and settings (administrators) -------------------------------------------------


@router.post("/auth/token", status_code=201, summary="Exchange credentials for a bearer token")
def token(request: Request, db: Db, body: TokenRequest) -> TokenOut:
    """A new bearer token; repeated failures are throttled (429)."""
    try:
        user = sign_in(request, db, body.username, body.password)
    except Throttled:
        db.commit()  # the refusal is audited although the request fails
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; wait"
        ) from None
    if user is None:
        # The failure was counted in a transaction of its own (see deps.sign_in); its audit
        # row is kept although the request fails.
        db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown username or wrong password")
    name = free_text("name", body.name, TOKEN_NAME_LENGTH)
    row, secret = issue_token(db, user, name)
    audit.record(db, user, "token.issue", "api_token", row.id)
    return TokenOut(id=row.id, token=secret)


@router.get("/auth/tokens", summary="The caller's API tokens (never their secrets)")
def list_tokens(db: Db, principal: Anyone) -> list[TokenInfo]:
    """Every token of the bearer's user, newest first, with whether it was revoked."""
    return [TokenInfo.model_validate(t) for t in tokens_of(db, principal.user)]


@router.delete(
    "/auth/tokens/{token_id}", status_code=204, summary="Revoke one of the caller's tokens"
)
def revoke_token(db: Db, principal: Anyone, token_id: int) -> Response:
    """The token stops working at once; another user's token is not found (404)."""
    if not store.revoke_token(db, principal.user, token_id):
        raise _not_found("token", token_id)
    return Response(status_code=204)


@router.get("/users", summary="Accounts")
def list_users(db: Db, principal: Admin) -> list[UserOut]:
    """Every account."""
    return [UserOut.model_validate(u) for u in store.users(db)]


@router.post("/users", status_code=201, summary="Create an account")
def create_user(db: Db, principal: Admin, body: UserIn) -> UserOut:
    """The new account."""
    user = store.create_user(
        db,
        principal.user,
        body.username,
        body.display_name,
        body.password,
        body.roles,
        body.language,
    )
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}", summary="Change an account")
def change_user(db: Db, principal: Admin, user_id: int, body: UserChange) -> UserOut:
    """The changed account."""
    user = store.user_by_id(db, user_id)
    if user is None:
        raise _not_found("user", user_id)
    store.update_user(
        db, principal.user, user, roles=body.roles, active=body.active, password=body.password
    )
    return UserOut.model_validate(user)


@router.get("/settings", summary="Clinic settings")
def read_settings(db: Db, principal: Admin) -> SettingsIO:
    """The definitions the clinic reports."""
    return SettingsIO(definitions=store.clinic_definitions(db))


@router.put("/settings", summary="Change clinic settings")
def write_settings(request: Request, db: Db, principal: Admin, body: SettingsIO) -> SettingsIO:
    """The new settings."""
    store.set_clinic_definitions(db, principal.user, body.definitions)
    forget_definitions(request)
    return SettingsIO(definitions=store.clinic_definitions(db))


def local_definition_out(row: LocalDefinition, in_use: bool) -> LocalDefinitionOut:
    """An uploaded version as the API and the settings page show it."""
    return LocalDefinitionOut(
        upload_id=row.id,
        definition_id=row.definition_id,
        name=version_of(row).name,
        sha256=row.sha256,
        uploaded_by=row.uploader.username,
        uploaded_at=row.uploaded_at,
        retired_at=row.retired_at,
        in_use=in_use,
    )


def local_definitions_out(db: Session) -> list[LocalDefinitionOut]:
    """Every uploaded version, newest first within each definition id."""
    current = {row.id for row in store.current_local(db).values()}
    return [local_definition_out(r, r.id in current) for r in store.local_versions(db)]


@router.get("/definitions", summary="Uploaded local definitions, every version (administrators)")
def list_definitions(db: Db, principal: Admin) -> list[LocalDefinitionOut]:
    """Every uploaded version, retired ones too; `in_use` marks the one the clinic uses."""
    return local_definitions_out(db)


@router.post(
    "/definitions",
    status_code=201,
    summary="Upload a local definition file (administrators)",
    description=(
        'JSON `{"text": ..., "filename": ...}` or a multipart form with the file in field'
        f" `file`: UTF-8, at most {store.MAX_DEFINITION_BYTES} bytes. The file is checked as"
        " `sarcokit criteria check` does; a file with problems is refused (422) with every"
        " problem and its line in `error.problems`, and nothing is stored. An id of a built-in"
        " definition is refused; a changed text of an uploaded id is its new version."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": DefinitionUpload.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
        }
    },
)
async def upload_definition(
    request: Request, db: Db, principal: Admin, lang: Language = None
) -> LocalDefinitionOut:
    """The stored version; the clinic uses it wherever its settings name the id. The problems
    of a refused file are in `lang` (the user's language by default)."""
    language = CORE_LANG[_language(principal, lang)]
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        raw, filename = await uploaded_file(request)
    else:
        try:
            body = DefinitionUpload.model_validate(await _json_body(request))
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
        raw, filename = body.text.encode("utf-8", "surrogatepass"), body.filename

    def stored() -> LocalDefinitionOut:
        row = store.upload_definition(db, principal.user, raw, filename, language)
        return local_definition_out(row, True)

    out = await run_in_threadpool(stored)
    forget_definitions(request)
    return out


async def uploaded_file(request: Request) -> tuple[bytes, str]:
    """The bytes and name of a multipart form's `file` field, read no further than the limit."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise invalid("file", None, "a multipart form field `file` holding the definition file")
    raw = await upload.read(store.MAX_DEFINITION_BYTES + 1)
    return raw, upload.filename or "upload.toml"


@router.post(
    "/definitions/{upload_id}/retire",
    summary="Retire one uploaded version (kept, never deleted; administrators)",
)
def retire_definition(
    request: Request, db: Db, principal: Admin, upload_id: int
) -> LocalDefinitionOut:
    """The retired version; the previous version of its id, if any, is in use again."""
    row = store.retire_definition(db, principal.user, upload_id)
    if row is None:
        raise _not_found("uploaded definition", upload_id)
    forget_definitions(request)
    return local_definition_out(row, False)


@router.get("/audit", summary="The audit log, newest first")
def read_audit(
    db: Db, principal: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[AuditOut]:
    """The newest audit events."""
    events = store.audit_events(db, principal.user, limit)
    return [AuditOut.model_validate(e) for e in events]
