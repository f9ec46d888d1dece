"""The clinic's server-rendered pages. Every form carries a CSRF token; all writes are POSTs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from sarcokit.definitions import DEFINITION_IDS, resolve
from sarcokit.fields import InputError, Problem
from sarcokit.web import audit, export, store
from sarcokit.web.api import forget_definitions, local_definitions_out, uploaded_file
from sarcokit.web.assessment import age_at, visit_definitions
from sarcokit.web.charts import chart
from sarcokit.web.config import secret_file
from sarcokit.web.deps import (
    PRE_SESSION_CSRF_COOKIE,
    SESSION_COOKIE,
    Db,
    Principal,
    Throttled,
    confirm_password,
    optional_page_user,
    page_role,
    page_user,
    patient_or_404,
    research_table,
    settings,
    sign_in,
    visit_or_404,
)
from sarcokit.web.export import ExportKind
from sarcokit.web.forms import form_values, questionnaires, read_measurements, sections
from sarcokit.web.history import history
from sarcokit.web.i18n import CORE_LANG, LANGUAGES, translator
from sarcokit.web.identity import REASON_LENGTH, TOKEN_NAME_LENGTH, free_text
from sarcokit.web.models import AuditEvent, Patient, User, Visit
from sarcokit.web.report import report_context, report_filename, visit_pdf
from sarcokit.web.security import (
    ROLES,
    close_session,
    issue_token,
    new_token,
    open_session,
    same,
    tokens_of,
)
from sarcokit.web.smart_store import correction_written, launch_of_visit
from sarcokit.web.templating import LANGUAGE_COOKIE, render

router = APIRouter(include_in_schema=False)

Signed = Annotated[Principal, Depends(page_user)]
Maybe = Annotated[Principal | None, Depends(optional_page_user)]
Clinician = Annotated[Principal, Depends(page_role("clinician"))]
Researcher = Annotated[Principal, Depends(page_role("researcher"))]
Admin = Annotated[Principal, Depends(page_role("admin"))]


class FormIn(dict[str, str]):
    """A posted form's fields, and why some of them could not be read."""

    problems: list[Problem]


async def _form(request: Request) -> FormIn:
    data = await request.form()
    form = FormIn()
    form.problems = []
    for key, value in data.multi_items():
        if not isinstance(value, str):
            continue
        if key in form:
            # Which of two values was meant cannot be known; neither is taken.
            form.problems.append(
                Problem(key, None, "the field once", f"{key} is given more than once")
            )
        elif "\ufffd" in value:
            # The form decoder puts U+FFFD where the bytes were not UTF-8 (a lone surrogate).
            form.problems.append(
                Problem(key, None, "text in UTF-8", f"{key} holds bytes that are not UTF-8")
            )
        form[key] = value
    return form


Form = Annotated[FormIn, Depends(_form)]


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


# Where to go after signing in, when a page sent the visitor to sign in first (a SMART launch).
NEXT_COOKIE = "sarcokit_next"


def local_path(text: str) -> str | None:
    """The text when it is a path on this site; None for anything a browser could follow off-site
    (`//host`, `/\\host`) or that is not a plain printable path."""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return None
    return text if text.isprintable() and " " not in text else None


def _check_csrf(expected: str | None, form: FormIn, shows_problems: bool = False) -> None:
    """Refuse a forged form (403); a form that could not be read is refused (422) unless the
    route shows its problems beside the fields (`shows_problems`)."""
    given = form.get("csrf_token", "")
    if not expected or not given or not same(expected, given):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or stale")
    if form.problems and not shows_problems:
        raise HTTPException(422, form.problems[0].message)


def _set_session_cookie(response: Response, request: Request, token: str) -> None:
    config = settings(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=config.session_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=config.cookie_secure,
        path="/",
    )


def _pre_session_page(
    request: Request, name: str, status_code: int = 200, **context: Any
) -> Response:
    # Before a session exists, CSRF uses a double-submit cookie.
    token = request.cookies.get(PRE_SESSION_CSRF_COOKIE) or new_token()
    response = render(request, name, None, status_code=status_code, csrf=token, **context)
    response.set_cookie(
        PRE_SESSION_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings(request).cookie_secure,
    )
    return response


# -- first run, login, language ---------------------------------------------------------------


@router.get("/setup")
def setup_page(request: Request, db: Db) -> Response:
    """First run: create the administrator with the setup code printed at start-up."""
    if store.count_users(db):
        return _redirect("/login")
    return _pre_session_page(request, "setup.html", path=str(settings(request).setup_code_path))


@router.post("/setup")
def setup(request: Request, db: Db, form: Form) -> Response:
    """Create the first administrator (who is also a clinician) and sign them in."""
    if store.count_users(db):
        return _redirect("/login")
    _check_csrf(request.cookies.get(PRE_SESSION_CSRF_COOKIE), form, shows_problems=True)
    config = settings(request)
    code = secret_file(config.setup_code_path, 12)
    gettext = translator(form.get("language", "en"))
    if not same(code, form.get("setup_code", "").strip()):
        return _pre_session_page(
            request,
            "setup.html",
            400,
            path=str(config.setup_code_path),
            error=gettext("The setup code is wrong."),
            values=form,
        )
    try:
        _readable(form)
        user = store.create_user(
            db,
            None,
            form.get("username", ""),
            form.get("display_name", ""),
            form.get("password", ""),
            ["admin", "clinician"],
            form.get("language", "en"),
        )
    except (InputError, store.Conflict) as error:
        return _pre_session_page(
            request,
            "setup.html",
            _status(error),
            path=str(config.setup_code_path),
            problems=_problems(error),
            values=form,
        )
    config.setup_code_path.unlink(missing_ok=True)
    token, _ = open_session(db, user, config.session_hours)
    response = _redirect("/")
    _set_session_cookie(response, request, token)
    return response


@router.get("/login")
def login_page(request: Request, db: Db, principal: Maybe) -> Response:
    """The sign-in form (or the first-run page when no account exists)."""
    if principal is not None:
        return _redirect("/")
    if not store.count_users(db):
        return _redirect("/setup")
    return _pre_session_page(request, "login.html")


@router.post("/login")
def login(request: Request, db: Db, form: Form) -> Response:
    """Sign in; repeated failures from one address or for one username are throttled."""
    _check_csrf(request.cookies.get(PRE_SESSION_CSRF_COOKIE), form)
    config = settings(request)
    username = form.get("username", "").strip()
    gettext = translator(request.cookies.get(LANGUAGE_COOKIE, "en"))
    try:
        user = sign_in(request, db, username, form.get("password", ""))
    except Throttled:
        message = gettext(
            "Too many failed sign-ins. Wait %(minutes)s minutes and try again.",
            minutes=config.login_window_minutes,
        )
        return _pre_session_page(request, "login.html", 429, error=message, username=username)
    if user is None:
        return _pre_session_page(
            request,
            "login.html",
            401,
            error=gettext("Unknown username or wrong password."),
            username=username,
        )
    token, _ = open_session(db, user, config.session_hours)
    response = _redirect(local_path(request.cookies.get(NEXT_COOKIE, "")) or "/")
    response.delete_cookie(NEXT_COOKIE, path="/")
    _set_session_cookie(response, request, token)
    return response


@router.post("/logout")
def logout(request: Request, db: Db, principal: Signed, form: Form) -> Response:
    """Sign out."""
    _check_csrf(principal.csrf, form)
    close_session(db, request.cookies.get(SESSION_COOKIE, ""))
    audit.record(db, principal.user, "auth.sign_out", "user", principal.user.id)
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/language/{language}")
def anonymous_language(language: str) -> Response:
    """Choose the language of the sign-in pages (signed-in users set it in their account)."""
    response = _redirect("/login")
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, samesite="strict", httponly=True)
    return response


@router.post("/account/language")
def change_language(request: Request, db: Db, principal: Signed, form: Form) -> Response:
    """Switch the signed-in user's language; the page they came from is shown again."""
    _check_csrf(principal.csrf, form)
    principal.user.language = store.check_language(form.get("language", ""))
    return _redirect(local_path(form.get("next", "/")) or "/")


@router.get("/")
def home(principal: Signed) -> Response:
    """Each role's starting page."""
    if principal.has("clinician"):
        return _redirect("/patients")
    if principal.has("researcher"):
        return _redirect("/research")
    return _redirect("/admin")


# -- patients ---------------------------------------------------------------------------------


def _problems(error: Exception) -> list[Problem]:
    if isinstance(error, InputError):
        return error.problems
    if isinstance(error, store.Conflict):
        return [Problem(error.field, error.value, error.expected, str(error))]
    return [Problem("form", None, "", str(error))]


def _status(error: Exception) -> int:
    """409 for a clash with a stored record, 422 for a refused value."""
    return status.HTTP_409_CONFLICT if isinstance(error, store.Conflict) else 422


def _readable(form: FormIn) -> None:
    """Raise the problems met reading the form, to show them beside their fields."""
    if form.problems:
        raise InputError(form.problems)


def _patient_from_form(form: FormIn) -> store.PatientIn:
    born = form.get("date_of_birth", "")
    try:
        parsed = date.fromisoformat(born)
    except ValueError:
        raise InputError(
            [Problem("date_of_birth", born, "a date (YYYY-MM-DD)", f"date_of_birth = {born!r}")]
        ) from None
    return store.PatientIn(
        form.get("record_number", ""), form.get("name", ""), form.get("sex", ""), parsed
    )


@router.get("/patients")
def patients(request: Request, db: Db, principal: Clinician, q: str = "") -> HTMLResponse:
    """Find a patient by record number or name."""
    found = store.search_patients(db, principal.user, q)
    return render(request, "patients.html", principal, patients=found, q=q, today=date.today())


@router.get("/patients/new")
def new_patient_page(request: Request, principal: Clinician) -> HTMLResponse:
    """The registration form."""
    return render(request, "patient_form.html", principal, values={}, patient=None)


@router.post("/patients/new")
def new_patient(request: Request, db: Db, principal: Clinician, form: Form) -> Response:
    """Register a patient, then go to their page."""
    return _save_patient(request, db, principal, form, None)


def _save_patient(
    request: Request, db: Db, principal: Principal, form: FormIn, patient: Patient | None
) -> Response:
    _check_csrf(principal.csrf, form, shows_problems=True)
    try:
        _readable(form)
        details = _patient_from_form(form)
        if patient is None:
            patient = store.create_patient(db, principal.user, details)
        else:
            store.update_patient(db, principal.user, patient, details)
    except (InputError, store.Conflict) as error:
        return render(
            request,
            "patient_form.html",
            principal,
            _status(error),
            values=form,
            patient=patient,
            problems=_problems(error),
        )
    return _redirect(f"/patients/{patient.id}")


@router.get("/patients/{patient_id}")
def patient_page(request: Request, db: Db, principal: Clinician, patient_id: int) -> HTMLResponse:
    """A patient: details, visits and history charts."""
    patient = patient_or_404(db, principal, patient_id)
    visits = store.patient_visits(db, principal.user, patient)
    # The lead definition in the version the newest visit used (a local one may have changed).
    lead = visit_definitions(visits[-1])[0] if visits else store.clinic_chosen(db)[0]
    gettext = translator(principal.user.language)
    series = history(patient, visits, lead)
    voided = store.voided_visits(db, principal.user, patient) if principal.has("admin") else []
    return render(
        request,
        "patient.html",
        principal,
        patient=patient,
        visits=visits,
        voided=voided,
        age=age_at(patient.date_of_birth, date.today()),
        charts=[(s, chart(s, gettext)) for s in series],
        lead=resolve(lead),
        definition_of=store.definition_lookup(db).__getitem__,
    )


@router.get("/patients/{patient_id}/edit")
def edit_patient_page(
    request: Request, db: Db, principal: Clinician, patient_id: int
) -> HTMLResponse:
    """The form to correct a patient's details."""
    patient = patient_or_404(db, principal, patient_id)
    values = {
        "record_number": patient.record_number,
        "name": patient.name,
        "sex": patient.sex,
        "date_of_birth": patient.date_of_birth.isoformat(),
    }
    return render(request, "patient_form.html", principal, values=values, patient=patient)


@router.post("/patients/{patient_id}/edit")
def edit_patient(
    request: Request, db: Db, principal: Clinician, patient_id: int, form: Form
) -> Response:
    """Save corrected details."""
    return _save_patient(request, db, principal, form, patient_or_404(db, principal, patient_id))


# -- visits -----------------------------------------------------------------------------------


def visit_form_page(
    request: Request,
    principal: Principal,
    patient: Patient,
    values: dict[str, str],
    problems: list[Problem] | None = None,
    status_code: int = 200,
    visit: Visit | None = None,
    **extra: Any,
) -> HTMLResponse:
    """The visit form; `extra` goes to the template (a SMART launch's action and sources)."""
    flagged = {p.field for p in problems or []}
    # A folded section opens again when it holds an answer or a refused value.
    opened = {
        section.id
        for section in sections()
        for f in section.fields
        if values.get(f.field, "").strip() or {f.field, *(u.field for u in f.units)} & flagged
    }
    return render(
        request,
        "visit_form.html",
        principal,
        status_code,
        patient=patient,
        sections=sections(),
        questionnaires=questionnaires(),
        values=values,
        problems=problems or [],
        today=date.today().isoformat(),
        problem_fields=flagged,
        opened=opened,
        visit=visit,
        **extra,
    )


@router.get("/patients/{patient_id}/visits/new")
def new_visit_page(request: Request, db: Db, principal: Clinician, patient_id: int) -> HTMLResponse:
    """The visit form: questionnaires and measurements."""
    return visit_form_page(request, principal, patient_or_404(db, principal, patient_id), {})


@router.post("/patients/{patient_id}/visits/new")
def new_visit(
    request: Request, db: Db, principal: Clinician, patient_id: int, form: Form
) -> Response:
    """Save the visit and show its result; a refused value is shown beside its input."""
    _check_csrf(principal.csrf, form, shows_problems=True)
    return _save_visit(request, db, principal, form, patient_or_404(db, principal, patient_id))


@router.get("/visits/{visit_id}/edit")
def edit_visit_page(request: Request, db: Db, principal: Clinician, visit_id: int) -> HTMLResponse:
    """The visit form filled with the visit as saved, to correct it."""
    visit = visit_or_404(db, principal, visit_id)
    values = {**form_values(visit.measurements), "visit_date": visit.visit_date.isoformat()}
    return visit_form_page(request, principal, visit.patient, values, visit=visit)


@router.post("/visits/{visit_id}/edit")
def edit_visit(
    request: Request, db: Db, principal: Clinician, visit_id: int, form: Form
) -> Response:
    """Save the correction (the previous version is kept) and show the result."""
    _check_csrf(principal.csrf, form, shows_problems=True)
    visit = visit_or_404(db, principal, visit_id)
    return _save_visit(request, db, principal, form, visit.patient, visit)


def visit_from_form(form: FormIn, patient: Patient | None = None) -> tuple[date, dict[str, Any]]:
    """A posted visit form's date and measurements; raises InputError naming every problem in
    one round (with the patient known, the values that could be read are range-checked too)."""
    _readable(form)
    problems: list[Problem] = []
    given = form.get("visit_date", "")
    try:
        when: date | None = date.fromisoformat(given)
    except ValueError:
        when = None
        problems.append(
            Problem("visit_date", given, "a date (YYYY-MM-DD)", f"visit_date = {given!r}")
        )
    measurements, unread = read_measurements(form)
    if problems or unread or when is None:
        problems += unread
        if patient is not None:
            problems += store.value_problems(patient, when or date.today(), measurements)
        raise InputError(problems)
    return when, measurements


def _save_visit(
    request: Request,
    db: Db,
    principal: Principal,
    form: FormIn,
    patient: Patient,
    visit: Visit | None = None,
) -> Response:
    if "switch_unit" in form:
        # The clinician took the offered unit: the form again with it chosen, nothing saved.
        return visit_form_page(request, principal, patient, unit_switched(form), None, 200, visit)
    try:
        when, measurements = visit_from_form(form, patient)
        if visit is None:
            visit, _ = store.create_visit(db, principal.user, patient, when, measurements)
        else:
            reason = form.get("reason", "")
            before = dict(visit.measurements or {})
            store.correct_visit(db, principal.user, visit, when, measurements, reason)
            # A visit saved from an EHR launch: what was written back is replaced.
            correction_written(db, settings(request), principal.user, visit, before)
    except (InputError, store.Conflict) as error:
        return visit_form_page(
            request, principal, patient, form, _problems(error), _status(error), visit
        )
    return _redirect(f"/visits/{visit.id}")


def unit_switched(form: FormIn) -> dict[str, str]:
    """The form's values with one input's unit changed, as `field=unit` names it."""
    field, _, unit = form.get("switch_unit", "").partition("=")
    values = {k: v for k, v in form.items() if k != "switch_unit"}
    allowed = {u.field for s in sections() for f in s.fields if f.field == field for u in f.units}
    if unit in allowed:
        values[f"{field}__unit"] = unit
    return values


@router.get("/visits/{visit_id}")
def visit_page(request: Request, db: Db, principal: Clinician, visit_id: int) -> HTMLResponse:
    """A visit's result under the clinic's definitions, with reasons, citations, next steps."""
    visit = visit_or_404(db, principal, visit_id)
    context = report_context(visit, principal.user.language)
    launch = launch_of_visit(db, visit)
    return render(request, "visit.html", principal, launch=launch, **context)


@router.get("/visits/{visit_id}/void")
def void_visit_page(request: Request, db: Db, principal: Clinician, visit_id: int) -> HTMLResponse:
    """The form to void a visit entered by mistake: a reason is required."""
    visit = visit_or_404(db, principal, visit_id)
    return render(
        request,
        "void.html",
        principal,
        visit=visit,
        patient=visit.patient,
        values={},
        reason_length=REASON_LENGTH,
    )


@router.post("/visits/{visit_id}/void")
def void_visit(
    request: Request, db: Db, principal: Clinician, visit_id: int, form: Form
) -> Response:
    """Void the visit (kept, never deleted) and go back to the patient."""
    _check_csrf(principal.csrf, form, shows_problems=True)
    visit = visit_or_404(db, principal, visit_id)
    try:
        _readable(form)
        store.void_visit(db, principal.user, visit, form.get("reason", ""))
    except (InputError, store.Conflict) as error:
        return render(
            request,
            "void.html",
            principal,
            _status(error),
            visit=visit,
            patient=visit.patient,
            values=form,
            problems=_problems(error),
            reason_length=REASON_LENGTH,
        )
    return _redirect(f"/patients/{visit.patient_id}")


@router.get("/visits/{visit_id}/report")
def report_page(request: Request, db: Db, principal: Clinician, visit_id: int) -> HTMLResponse:
    """The printable visit report."""
    visit = visit_or_404(db, principal, visit_id, "visit.report")
    context = report_context(visit, principal.user.language)
    return render(request, "report.html", principal, printable=True, **context)


@router.get("/visits/{visit_id}/report.pdf")
def report_pdf(db: Db, principal: Clinician, visit_id: int) -> Response:
    """The visit report as a PDF, in the user's language."""
    visit = visit_or_404(db, principal, visit_id, "visit.report")
    filename = report_filename(visit)
    return Response(
        visit_pdf(visit, principal.user.language),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- research ---------------------------------------------------------------------------------


@router.get("/research")
def research(request: Request, principal: Researcher) -> HTMLResponse:
    """The researcher's page: what the de-identified export holds."""
    return render(request, "research.html", principal)


@router.get("/research/export.{kind}")
def research_export(request: Request, db: Db, principal: Researcher, kind: ExportKind) -> Response:
    """Every visit, de-identified, as a typed CSV or Parquet file."""
    frame, _ = research_table(request, db, principal)
    return export.file_response(frame, kind)


@router.get("/research/dictionary.csv")
def research_dictionary(request: Request, db: Db, principal: Researcher) -> Response:
    """The export's data dictionary as CSV."""
    _, columns = research_table(request, db, principal)
    return Response(
        export.dictionary_csv(columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sarcokit-dictionary.csv"'},
    )


# -- administration ---------------------------------------------------------------------------


def _admin_page(
    request: Request, db: Db, principal: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    users = list(db.scalars(select(User).order_by(User.id)))
    return render(
        request,
        "admin.html",
        principal,
        status_code,
        users=users,
        roles=ROLES,
        definition_ids=_offered(db),
        definitions=store.definition_lookup(db),
        chosen=store.clinic_definitions(db),
        uploads=local_definitions_out(db),
        max_definition_kib=store.MAX_DEFINITION_BYTES // 1024,
        **context,
    )


def _offered(db: Db) -> list[str]:
    # Built-in definitions, then the uploaded ones with a version in use.
    return [*DEFINITION_IDS, *sorted(store.current_local(db))]


@router.get("/admin")
def admin(request: Request, db: Db, principal: Admin) -> HTMLResponse:
    """Accounts and clinic settings."""
    return _admin_page(request, db, principal)


@router.post("/admin/users")
def admin_create_user(request: Request, db: Db, principal: Admin, form: Form) -> Response:
    """Create an account."""
    _check_csrf(principal.csrf, form, shows_problems=True)
    roles = [r for r in ROLES if form.get(f"role_{r}")]
    try:
        _readable(form)
        store.create_user(
            db,
            principal.user,
            form.get("username", ""),
            form.get("display_name", ""),
            form.get("password", ""),
            roles,
            form.get("language", "en"),
        )
    except (InputError, store.Conflict) as error:
        return _admin_page(
            request, db, principal, _status(error), problems=_problems(error), values=form
        )
    return _redirect("/admin")


@router.post("/admin/users/{user_id}")
def admin_change_user(
    request: Request, db: Db, principal: Admin, user_id: int, form: Form
) -> Response:
    """Change an account's roles or status, or set a new password."""
    _check_csrf(principal.csrf, form, shows_problems=True)
    user = db.get(User, user_id) if 0 < user_id <= store.MAX_ID else None
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user with id {user_id}")
    try:
        _readable(form)
        store.update_user(
            db,
            principal.user,
            user,
            roles=[r for r in ROLES if form.get(f"role_{r}")],
            active=form.get("active") == "on",
            password=form.get("password") or None,
        )
    except (InputError, store.Conflict) as error:
        return _admin_page(request, db, principal, _status(error), problems=_problems(error))
    return _redirect("/admin")


@router.post("/admin/settings")
def admin_settings(request: Request, db: Db, principal: Admin, form: Form) -> Response:
    """Choose the clinic's definitions; the lead one comes first."""
    _check_csrf(principal.csrf, form)
    lead = form.get("lead", "")
    others = [d for d in _offered(db) if form.get(f"definition_{d}") and d != lead]
    try:
        store.set_clinic_definitions(db, principal.user, [lead, *others] if lead else others)
        forget_definitions(request)
    except InputError as error:
        return _admin_page(request, db, principal, 422, problems=error.problems)
    return _redirect("/admin")


@router.post("/admin/definitions")
async def admin_upload_definition(
    request: Request, db: Db, principal: Admin, form: Form
) -> Response:
    """Upload a local definition file; a file with problems is shown back with every one."""
    _check_csrf(principal.csrf, form)
    refused: InputError | None = None
    try:
        raw, filename = await uploaded_file(request)
    except InputError as missing:
        raw, filename, refused = b"", "", missing

    def stored() -> Response:
        try:
            if refused is not None:
                raise refused
            language = CORE_LANG[principal.user.language]
            store.upload_definition(db, principal.user, raw, filename, language)
        except (InputError, store.Conflict) as error:
            return _admin_page(
                request,
                db,
                principal,
                _status(error),
                problems=_problems(error),
                refused=filename or None,
            )
        forget_definitions(request)
        return _redirect("/admin#definitions")

    return await run_in_threadpool(stored)


@router.post("/admin/definitions/{upload_id}/retire")
def admin_retire_definition(
    request: Request, db: Db, principal: Admin, upload_id: int, form: Form
) -> Response:
    """Retire one uploaded version (it stays stored; old visits still show it)."""
    _check_csrf(principal.csrf, form)
    try:
        retired = store.retire_definition(db, principal.user, upload_id)
    except store.Conflict as error:
        return _admin_page(request, db, principal, 409, problems=_problems(error))
    if retired is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no uploaded definition {upload_id}")
    forget_definitions(request)
    return _redirect("/admin#definitions")


@router.get("/admin/voided")
def admin_voided(request: Request, db: Db, principal: Admin) -> HTMLResponse:
    """Voided visits: what they recorded, who voided them, when and why."""
    visits = store.all_voided_visits(db, principal.user)
    names = {u.id: u.username for u in db.scalars(select(User))}
    return render(request, "voided.html", principal, visits=visits, names=names)


@router.get("/admin/audit")
def admin_audit(request: Request, db: Db, principal: Admin) -> HTMLResponse:
    """The newest audit events."""
    events = list(db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)))
    audit.record(db, principal.user, "audit.read", "audit_log", detail=f"{len(events)} shown")
    names = {u.id: u.username for u in db.scalars(select(User))}
    return render(request, "audit.html", principal, events=events, names=names)


# -- account ----------------------------------------------------------------------------------


def _account(
    request: Request, db: Db, principal: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    tokens = tokens_of(db, principal.user)
    return render(request, "account.html", principal, status_code, tokens=tokens, **context)


@router.get("/account")
def account(request: Request, db: Db, principal: Signed) -> HTMLResponse:
    """The user's language, password and API tokens."""
    return _account(request, db, principal)


@router.post("/account/password")
def change_password(request: Request, db: Db, principal: Signed, form: Form) -> Response:
    """Set a new password after confirming the current one; every other session and every
    API token of the user end. Wrong current passwords are throttled apart from sign-ins."""
    _check_csrf(principal.csrf, form)
    gettext = translator(principal.user.language)
    try:
        confirmed = confirm_password(request, db, principal.user, form.get("current", ""))
    except Throttled:
        message = gettext(
            "Too many wrong passwords. Wait %(minutes)s minutes and try again.",
            minutes=settings(request).login_window_minutes,
        )
        return _account(request, db, principal, 429, error=message)
    if not confirmed:
        return _account(
            request, db, principal, 400, error=gettext("The current password is wrong.")
        )
    try:
        store.update_user(
            db,
            principal.user,
            principal.user,
            password=form.get("password", ""),
            keep_session=request.cookies.get(SESSION_COOKIE),
        )
    except InputError as error:
        return _account(request, db, principal, 422, problems=error.problems)
    message = gettext("Password changed. Your other sessions and your API tokens have ended.")
    return _account(request, db, principal, message=message)


@router.post("/account/tokens")
def create_token(request: Request, db: Db, principal: Signed, form: Form) -> HTMLResponse:
    """A new API token, shown once."""
    _check_csrf(principal.csrf, form)
    try:
        name = free_text("name", form.get("name", "") or "api", TOKEN_NAME_LENGTH)
    except InputError as error:
        return _account(request, db, principal, 422, problems=error.problems)
    row, token = issue_token(db, principal.user, name)
    audit.record(db, principal.user, "token.issue", "api_token", row.id)
    return _account(request, db, principal, token=token)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, db: Db, principal: Signed, token_id: int, form: Form
) -> Response:
    """Revoke one of the user's API tokens; it stops working at once."""
    _check_csrf(principal.csrf, form)
    if not store.revoke_token(db, principal.user, token_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token with id {token_id}")
    return _redirect("/account")


# -- for the other page modules (web/smart.py) --------------------------------------------------

check_csrf = _check_csrf
problems_of = _problems
status_of = _status
