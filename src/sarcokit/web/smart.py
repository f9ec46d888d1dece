"""SMART on FHIR EHR launch of the clinic: the EHR opens a new visit pre-filled from its
observations, and the signed visit's result is written back to it.

GET /smart/launch?iss&launch → discovery, state and PKCE (S256) kept server-side, redirect to the
EHR's authorisation endpoint. GET /smart/callback?code&state → the state checked (unknown,
replayed, expired or from another browser is refused) and spent, the code exchanged with the
verifier, a page that continues inside the clinic. GET /smart/launches/{handle} → the clinic's
own sign-in (a launch never bypasses it), the EHR's Patient, Observations and SARC-F read with
the token, the visit form pre-filled, each value with its source and date. POST …/visit → the
visit committed first, then written back; a failed write-back is shown and can be retried.

The EHR's redirects arrive as cross-site navigations, which carry no SameSite=Strict cookie: the
clinic session is checked only once the callback page has moved the browser inside the clinic.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sarcokit.fhir.inbound import FhirRecord, read_resources
from sarcokit.fhir.smart import (
    SmartError,
    authorize_url,
    code_challenge,
    discover,
    exchange_code,
    granted,
    new_verifier,
    smart_settings,
)
from sarcokit.fields import InputError
from sarcokit.web import audit, smart_store, store
from sarcokit.web.assessment import FROM_PATIENT
from sarcokit.web.deps import Db, Principal, optional_page_user, page_role, settings
from sarcokit.web.forms import form_inputs, form_values, questionnaires
from sarcokit.web.models import Patient, SmartLaunch
from sarcokit.web.pages.common import NEXT_COOKIE, Form, ShownForm, problems_of, status_of
from sarcokit.web.pages.visits import unit_switched, visit_form_page, visit_from_form
from sarcokit.web.security import aware, digest, now, same
from sarcokit.web.templating import render

router = APIRouter(include_in_schema=False)
Maybe = Annotated[Principal | None, Depends(optional_page_user)]
Clinician = Annotated[Principal, Depends(page_role("clinician"))]
# A launch's own cookie (per launch, so launches in two tabs do not meet): it binds the state to
# the browser that started the launch. Lax, so the EHR's redirect back to the callback sends it.
BROWSER_COOKIE = "sarcokit_smart_{id}"
MAX_PARAMETER = 500


def _refuse(
    request: Request,
    db: Session,
    error: SmartError,
    launch: SmartLaunch | None = None,
    principal: Principal | None = None,
) -> Response:
    """The error page naming what was refused; the refusal is audited in the request's
    transaction, which commits (the response is not an exception)."""
    user = principal.user if principal else None
    audit.record(
        db,
        user,
        "smart.refused",
        "smart_launch",
        launch.id if launch else None,
        detail=f"{error.field}: {error}"[:500],
    )
    return render(request, "error.html", principal, status_code=error.status, detail=str(error))


def _parameter(name: str, value: str) -> SmartError | None:
    if not value:
        return SmartError(400, name, None, "a value", f"the launch request has no {name}")
    if len(value) > MAX_PARAMETER:
        return SmartError(
            400, name, f"{len(value)} characters", f"at most {MAX_PARAMETER}", f"{name} is too long"
        )
    return None


@router.get("/smart/launch")
def launch(request: Request, db: Db, iss: str = "", launch: str = "") -> Response:
    """The EHR launches the clinic: discover its endpoints, then ask it for authorisation."""
    config = smart_store.smart_config(request)
    if config is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"SMART launch is not set up in this clinic ({smart_store.CONFIG_ENV})",
        )
    missing = _parameter("iss", iss) or _parameter("launch", launch)
    if missing is not None:
        return _refuse(request, db, missing)
    issuer = config.issuer(iss)
    if issuer is None:
        refused = SmartError(
            403,
            "iss",
            iss,
            f"one of the allow-listed EHRs ({', '.join(config.issuers) or 'none'})",
            f"iss {iss!r} is not an EHR allow-listed to launch this clinic",
        )
        return _refuse(request, db, refused)
    try:
        found = discover(iss)
    except SmartError as error:
        return _refuse(request, db, error)
    state, verifier, browser = secrets.token_urlsafe(32), new_verifier(), secrets.token_urlsafe(32)
    minutes = int(smart_settings()["state_minutes"])
    row = SmartLaunch(
        state_hash=digest(state),
        browser_hash=digest(browser),
        verifier=verifier,
        iss=iss.rstrip("/"),
        launch=launch,
        token_endpoint=found.token_endpoint,
        created_at=now(),
        state_expires_at=now() + timedelta(minutes=minutes),
        scope=found.scopes,
        write_back="",
        write_back_detail="",
    )
    db.add(row)
    # Tokens of launches that have expired are not kept (the rows stay, for the audit trail).
    db.execute(
        update(SmartLaunch)
        .where(SmartLaunch.token_expires_at < now(), SmartLaunch.access_token.is_not(None))
        .values(access_token=None)
        .execution_options(synchronize_session=False)
    )
    db.flush()
    audit.record(db, None, "smart.launch", "smart_launch", row.id, detail=f"iss {row.iss}")
    target = authorize_url(
        found,
        client_id=issuer.client_id,
        redirect_uri=config.redirect_uri,
        launch=launch,
        state=state,
        iss=iss,
        challenge=code_challenge(verifier),
    )
    response = RedirectResponse(target, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        BROWSER_COOKIE.format(id=row.id),
        browser,
        max_age=int(smart_settings()["token_minutes"]) * 60,
        httponly=True,
        samesite="lax",
        secure=settings(request).cookie_secure,
        path="/smart",
    )
    return response


def _spend_state(request: Request, db: Session, state: str) -> SmartLaunch | SmartError:
    """The launch the state belongs to, its state spent (single use); or why it is refused."""
    if not state or len(state) > MAX_PARAMETER:
        return SmartError(
            400, "state", None, "the state the clinic sent", "the callback has no state"
        )
    row = db.scalar(select(SmartLaunch).where(SmartLaunch.state_hash == digest(state)))
    if row is None:
        return SmartError(
            400, "state", "unknown", "a state this clinic issued", "the callback's state is unknown"
        )
    if row.used_at is not None:
        return SmartError(
            400, "state", "used", "a state not used before", "the callback's state was already used"
        )
    if aware(row.state_expires_at) < now():
        return SmartError(
            400,
            "state",
            "expired",
            f"a callback within {smart_settings()['state_minutes']} minutes of the launch",
            "the callback's state has expired; launch again from the EHR",
        )
    cookie = request.cookies.get(BROWSER_COOKIE.format(id=row.id), "")
    if not cookie or not same(digest(cookie), row.browser_hash):
        return SmartError(
            400,
            "state",
            "another browser",
            "the browser that started the launch",
            "the callback did not come back to the browser that started the launch",
        )
    # Spent by a conditional update, so two callbacks racing with one state cannot both pass.
    spent = db.execute(
        update(SmartLaunch)
        .where(SmartLaunch.id == row.id, SmartLaunch.used_at.is_(None))
        .values(used_at=now())
        .execution_options(synchronize_session=False)
    )
    if getattr(spent, "rowcount", 0) != 1:
        return SmartError(
            400, "state", "used", "a state not used before", "the callback's state was already used"
        )
    db.commit()
    db.refresh(row)
    return row


@router.get("/smart/callback")
def callback(
    request: Request,
    db: Db,
    code: str = "",
    state: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    """The EHR's answer: the state checked and spent, the code exchanged for an access token."""
    row = _spend_state(request, db, state)
    if isinstance(row, SmartError):
        return _refuse(request, db, row)
    if error:
        said = f"{error} ({error_description})" if error_description else error
        refused = SmartError(
            403, "error", error[:100], "an authorisation code", f"the EHR refused: {said[:300]}"
        )
        return _refuse(request, db, refused, row)
    missing = _parameter("code", code)
    config = smart_store.smart_config(request)
    issuer = config.issuer(row.iss) if config else None
    if missing is None and issuer is None:
        missing = SmartError(
            403, "iss", row.iss, "an allow-listed EHR", "the EHR is no longer allowed"
        )
    if missing is not None:
        return _refuse(request, db, missing, row)
    assert config is not None and issuer is not None
    try:
        token = exchange_code(
            row.token_endpoint,
            code=code,
            verifier=row.verifier,
            redirect_uri=config.redirect_uri,
            client_id=issuer.client_id,
            client_secret=issuer.client_secret,
        )
    except SmartError as refused:
        return _refuse(request, db, refused, row)
    handle = secrets.token_urlsafe(32)
    row.verifier = ""
    row.handle_hash = digest(handle)
    row.access_token = smart_store.seal(settings(request), token.access_token)
    row.token_expires_at = smart_store.token_expiry(
        token.expires_in, int(smart_settings()["token_minutes"])
    )
    row.scope = token.scope or row.scope
    row.fhir_patient = token.patient
    audit.record(db, None, "smart.authorised", "smart_launch", row.id)
    # A page, not a redirect: the browser then moves inside the clinic by itself, and the
    # clinic's SameSite=Strict session cookie is sent with it.
    return render(request, "smart_continue.html", None, url=f"/smart/launches/{handle}")


# -- the launch inside the clinic -------------------------------------------------------------


def _open(
    request: Request, db: Session, principal: Principal, handle: str, claim: bool = False
) -> SmartLaunch:
    """The launch the handle names, for this clinician (the first one to open it claims it)."""
    row = smart_store.launch_by_handle(db, handle)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such SMART launch")
    if row.user_id is None and claim:
        cookie = request.cookies.get(BROWSER_COOKIE.format(id=row.id), "")
        if not cookie or not same(digest(cookie), row.browser_hash):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "this launch was started in another browser"
            )
        row.user_id = principal.user.id
    elif row.user_id != principal.user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this launch belongs to another clinician")
    return row


def _owners() -> dict[str, str]:
    """Record column → the visit-form input that holds it."""
    owner = {name: form_field.field for name, form_field in form_inputs().items()}
    for questionnaire in questionnaires():
        owner.update((item.field, item.field) for item in questionnaire.items)
    return owner


def prefill(read: FhirRecord) -> dict[str, Any]:
    """The visit form's values from the EHR record, each input's sources (observation, code,
    date), what was ignored and why, and what the form has no input for."""
    from sarcokit.fhir.mapping import fhir_mapping

    record = {k: v for k, v in read.record.items() if k not in FROM_PATIENT}
    owner = _owners()
    sources: dict[str, list[dict[str, Any]]] = {}
    for used in read.used:
        if used.field in FROM_PATIENT:
            continue
        target = owner.get(used.field)
        if target is not None:
            sources.setdefault(target, []).append(asdict(used))
        # A field implied by the observation's code (ASM by DXA → asm_method) has its source.
        for item in fhir_mapping().inputs:
            if item.field == used.field and any(c.code == used.code for c in item.codes):
                for implied in item.implies:
                    if implied in owner:
                        sources.setdefault(owner[implied], []).append(asdict(used))
    return {
        "values": form_values(record),
        "sources": sources,
        "ignored": [asdict(i) for i in read.ignored],
        "not_in_form": sorted(k for k in record if k not in owner),
    }


def _read_ehr(request: Request, db: Session, row: SmartLaunch) -> dict[str, Any] | SmartError:
    """The EHR's Patient, Observations and SARC-F responses, read with the launch's token."""
    from sarcokit.fhir.client import FhirClient, FhirClientError, entries
    from sarcokit.web.cds_hooks import prefetch_templates

    if not smart_store.token_live(row) or row.access_token is None:
        return SmartError(
            410, "access_token", "expired", "a live token", "the launch has expired; launch again"
        )
    config = smart_store.smart_config(request)
    issuer = config.issuer(row.iss) if config else None
    if issuer is None:
        return SmartError(
            403, "iss", row.iss, "an allow-listed EHR", "the EHR is no longer allowed"
        )
    pid = str(row.fhir_patient)
    client = FhirClient(row.iss, smart_store.unseal(settings(request), row.access_token))
    queries = {k: v.replace("{{context.patientId}}", pid) for k, v in prefetch_templates().items()}
    try:
        patient = client.read(queries["patient"])
        found = [
            *entries(client.read(queries["observations"])),
            *entries(client.read(queries["sarcf"])),
        ]
    except FhirClientError as error:
        return SmartError(
            502, "fhirServer", error.url, "an answer", f"the EHR's FHIR server: {error}"
        )
    if patient.get("resourceType") != "Patient" or str(patient.get("id")) != pid:
        return SmartError(
            502,
            "Patient",
            patient.get("id"),
            f"Patient/{pid}",
            "the EHR did not return the Patient",
        )
    try:
        # The clinic's today, as the visit form's date: the look-back windows end on the visit.
        read = read_resources([patient, *found], date.today())
    except InputError as error:
        return SmartError(502, error.problems[0].field, None, "", str(error))
    context = prefill(read)
    context["patient"] = smart_store.ehr_patient(patient, issuer.identifier_system)
    context["as_of"] = read.as_of.isoformat()
    return context


def _new_patient_view(match: smart_store.Match) -> Any:
    """A not-yet-registered patient, shaped for the visit form's header."""
    assert match.new is not None
    return Patient(
        record_number=match.new.record_number,
        name=match.new.name,
        sex=match.new.sex,
        date_of_birth=match.new.date_of_birth,
    )


def _form_page(
    request: Request,
    principal: Principal,
    row: SmartLaunch,
    handle: str,
    match: smart_store.Match,
    values: dict[str, str],
    problems: list[Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = row.context or {}
    patient = match.patient or _new_patient_view(match)
    can_write = all(
        granted(row.scope, "", kind, "c") for kind in ("Observation", "DiagnosticReport")
    )
    return visit_form_page(
        request,
        principal,
        patient,
        values,
        problems,
        status_code,
        action=f"/smart/launches/{handle}/visit",
        sources=context.get("sources", {}),
        smart=context,
        smart_iss=row.iss,
        smart_match=match,
        smart_can_write=can_write,
    )


@router.get("/smart/launches/{handle}")
def launch_page(request: Request, db: Db, principal: Maybe, handle: str) -> Response:
    """The new visit, pre-filled from the EHR; signing in to the clinic first if needed."""
    if principal is None:
        response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
        response.set_cookie(
            NEXT_COOKIE,
            f"/smart/launches/{handle}",
            max_age=15 * 60,
            httponly=True,
            samesite="strict",
            secure=settings(request).cookie_secure,
            path="/",
        )
        return response
    principal = page_role("clinician")(request, principal)
    row = _open(request, db, principal, handle, claim=True)
    if row.visit_id is not None:
        return RedirectResponse(f"/visits/{row.visit_id}", status_code=status.HTTP_303_SEE_OTHER)
    if row.context is None:
        read = _read_ehr(request, db, row)
        if isinstance(read, SmartError):
            return _refuse(request, db, read, row, principal)
        row.context = read
        audit.record(
            db,
            principal.user,
            "smart.read",
            "smart_launch",
            row.id,
            detail=f"{len(read['sources'])} inputs pre-filled, {len(read['ignored'])} ignored",
        )
    try:
        match = smart_store.match_patient(db, row.context["patient"])
    except SmartError as error:
        return _refuse(request, db, error, row, principal)
    if match.patient is not None:
        audit.record(db, principal.user, "patient.read", "patient", match.patient.id)
    values = {**row.context["values"], "visit_date": date.today().isoformat()}
    return _form_page(request, principal, row, handle, match, values)


@router.post("/smart/launches/{handle}/visit")
def save_launch_visit(
    request: Request, db: Db, principal: Clinician, handle: str, form: ShownForm
) -> Response:
    """Save the visit (committed first), then write its result back to the EHR."""
    row = _open(request, db, principal, handle)
    if row.visit_id is not None:
        # Sent twice: the visit exists once, and so does its write-back.
        return RedirectResponse(f"/visits/{row.visit_id}", status_code=status.HTTP_303_SEE_OTHER)
    if row.context is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "open the launch page before saving")
    try:
        match = smart_store.match_patient(db, row.context["patient"])
    except SmartError as error:
        return _refuse(request, db, error, row, principal)
    if "switch_unit" in form:
        # The offered unit taken: the form again with it chosen, nothing saved.
        return _form_page(request, principal, row, handle, match, unit_switched(form))
    try:
        when, measurements = visit_from_form(form)
        patient = smart_store.register(db, principal.user, match)
        visit, _ = store.create_visit(db, principal.user, patient, when, measurements)
    except (InputError, store.Conflict) as error:
        db.rollback()
        return _form_page(
            request, principal, row, handle, match, form, problems_of(error), status_of(error)
        )
    row.visit_id = visit.id
    row.write_back = "pending"
    row.context = {
        **row.context,
        "derived_from": smart_store.measurements_unchanged(
            form, row.context["values"], row.context["sources"]
        ),
    }
    # The visit is stored before the EHR is asked anything: a failed write-back keeps it.
    db.commit()
    smart_store.write_back(db, settings(request), principal.user, row)
    return RedirectResponse(f"/visits/{visit.id}", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/visits/{visit_id}/write-back")
def retry_write_back(
    request: Request, db: Db, principal: Clinician, visit_id: int, form: Form
) -> Response:
    """Write a launched visit's result back to the EHR again, after a failure."""
    row = db.scalar(select(SmartLaunch).where(SmartLaunch.visit_id == visit_id))
    if row is None or not 0 < visit_id <= store.MAX_ID:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"visit {visit_id} was not launched by an EHR"
        )
    if row.user_id != principal.user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this launch belongs to another clinician")
    if row.write_back != "written":
        smart_store.write_back(db, settings(request), principal.user, row)
    return RedirectResponse(f"/visits/{visit_id}", status_code=status.HTTP_303_SEE_OTHER)
