"""Patients: finding, registering and correcting them, and a patient's page with history."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sarcokit.definitions import resolve
from sarcokit.fields import InputError, Problem
from sarcokit.web import store
from sarcokit.web.assessment import age_at, visit_definitions
from sarcokit.web.charts import chart
from sarcokit.web.deps import Db, Principal, patient_or_404
from sarcokit.web.history import history
from sarcokit.web.i18n import translator
from sarcokit.web.models import Patient
from sarcokit.web.pages.common import (
    Clinician,
    FormIn,
    ShownForm,
    problems_of,
    readable,
    redirect,
    status_of,
)
from sarcokit.web.templating import render

router = APIRouter(include_in_schema=False)


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
def new_patient(request: Request, db: Db, principal: Clinician, form: ShownForm) -> Response:
    """Register a patient, then go to their page."""
    return _save_patient(request, db, principal, form, None)


def _save_patient(
    request: Request, db: Db, principal: Principal, form: FormIn, patient: Patient | None
) -> Response:
    try:
        readable(form)
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
            status_of(error),
            values=form,
            patient=patient,
            problems=problems_of(error),
        )
    return redirect(f"/patients/{patient.id}")


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
    request: Request, db: Db, principal: Clinician, patient_id: int, form: ShownForm
) -> Response:
    """Save corrected details."""
    return _save_patient(request, db, principal, form, patient_or_404(db, principal, patient_id))
