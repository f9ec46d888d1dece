"""Visits: the visit form, saving and correcting a visit, its result, voiding, the report."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sarcokit.fields import InputError, Problem
from sarcokit.web import store
from sarcokit.web.deps import Db, Principal, patient_or_404, settings, visit_or_404
from sarcokit.web.forms import form_values, questionnaires, read_measurements, sections
from sarcokit.web.identity import REASON_LENGTH
from sarcokit.web.models import Patient, Visit
from sarcokit.web.pages.common import (
    Clinician,
    FormIn,
    ShownForm,
    problems_of,
    readable,
    redirect,
    status_of,
)
from sarcokit.web.report import report_context, report_filename, visit_pdf
from sarcokit.web.smart_store import correction_written, launch_of_visit
from sarcokit.web.templating import render

router = APIRouter(include_in_schema=False)


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
    request: Request, db: Db, principal: Clinician, patient_id: int, form: ShownForm
) -> Response:
    """Save the visit and show its result; a refused value is shown beside its input."""
    return _save_visit(request, db, principal, form, patient_or_404(db, principal, patient_id))


@router.get("/visits/{visit_id}/edit")
def edit_visit_page(request: Request, db: Db, principal: Clinician, visit_id: int) -> HTMLResponse:
    """The visit form filled with the visit as saved, to correct it."""
    visit = visit_or_404(db, principal, visit_id)
    values = {**form_values(visit.measurements), "visit_date": visit.visit_date.isoformat()}
    return visit_form_page(request, principal, visit.patient, values, visit=visit)


@router.post("/visits/{visit_id}/edit")
def edit_visit(
    request: Request, db: Db, principal: Clinician, visit_id: int, form: ShownForm
) -> Response:
    """Save the correction (the previous version is kept) and show the result."""
    visit = visit_or_404(db, principal, visit_id)
    return _save_visit(request, db, principal, form, visit.patient, visit)


def visit_from_form(form: FormIn, patient: Patient | None = None) -> tuple[date, dict[str, Any]]:
    """A posted visit form's date and measurements; raises InputError naming every problem in
    one round (with the patient known, the values that could be read are range-checked too)."""
    readable(form)
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
            request, principal, patient, form, problems_of(error), status_of(error), visit
        )
    return redirect(f"/visits/{visit.id}")


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
    request: Request, db: Db, principal: Clinician, visit_id: int, form: ShownForm
) -> Response:
    """Void the visit (kept, never deleted) and go back to the patient."""
    visit = visit_or_404(db, principal, visit_id)
    try:
        readable(form)
        store.void_visit(db, principal.user, visit, form.get("reason", ""))
    except (InputError, store.Conflict) as error:
        return render(
            request,
            "void.html",
            principal,
            status_of(error),
            visit=visit,
            patient=visit.patient,
            values=form,
            problems=problems_of(error),
            reason_length=REASON_LENGTH,
        )
    return redirect(f"/patients/{visit.patient_id}")


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
