"""The visit report: what it shows, as a printable page and as a PDF (WeasyPrint)."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from sqlalchemy.orm import object_session
from starlette.exceptions import HTTPException

from sarcokit.definitions import resolve
from sarcokit.fields import trials_name
from sarcokit.result import Result
from sarcokit.screening import instruments
from sarcokit.web.assessment import age_at, stored_result, visit_definitions
from sarcokit.web.forms import derived_labels, questionnaires, secondary_results, sections
from sarcokit.web.i18n import CORE_LANG
from sarcokit.web.models import Visit
from sarcokit.web.store import clinic_name
from sarcokit.web.templating import render_text


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Row:
    """One recorded measurement as the visit page and report show it."""

    label: str
    value: str
    unit: str = ""
    # The value is itself a message to translate (a choice such as "DXA" or "yes").
    translate: bool = False
    best: str | None = None


def measurement_rows(measurements: dict[str, Any]) -> list[Row]:
    """Every recorded measurement, in the order of the visit form."""
    rows: list[Row] = []
    for section in sections():
        for form_field in section.fields:
            for unit in form_field.units:
                listed = trials_name(unit.field)
                trials = measurements.get(listed) if listed else None
                if form_field.trials > 1 and trials:
                    shown = " / ".join(_number(t) for t in trials)
                    rows.append(
                        Row(form_field.label, shown, unit.symbol, best=_number(max(trials)))
                    )
                elif unit.field in measurements:
                    value = measurements[unit.field]
                    choices = dict(form_field.choices)
                    if isinstance(value, list):
                        rows.append(Row(form_field.label, "; ".join(map(str, value))))
                    elif isinstance(value, bool):
                        rows.append(Row(form_field.label, "yes" if value else "no", translate=True))
                    elif isinstance(value, str) and value in choices:
                        rows.append(Row(form_field.label, choices[value], translate=True))
                    else:
                        rows.append(Row(form_field.label, _number(value), unit.symbol))
    return rows


def secondary_rows(result: Result) -> list[Row]:
    """The known secondary-sarcopenia values of a result, as configured in visit_form.toml."""
    rows: list[Row] = []
    for shown in secondary_results():
        value: Any = result.secondary
        for key in shown.path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None:
            continue
        if isinstance(value, bool):
            rows.append(Row(shown.label, "yes" if value else "no", translate=True))
        elif isinstance(value, str):
            rows.append(Row(shown.label, shown.values.get(value, value), translate=True))
        else:
            rows.append(Row(shown.label, _number(value), shown.unit))
    return rows


def answer_rows(measurements: dict[str, Any], language: str) -> list[tuple[str, str, str]]:
    """(questionnaire, item, answer) for every answered questionnaire item."""
    key = "zh" if language == "zh-CN" else "en"
    rows = []
    for questionnaire in questionnaires():
        for item in questionnaire.items:
            if item.field in measurements:
                answer = next(
                    (a for a in item.answers if a.value == measurements[item.field]), None
                )
                text = answer.text[key] if answer else _number(measurements[item.field])
                rows.append((questionnaire.title[key], item.component[key], text))
    return rows


def report_filename(visit: Visit) -> str:
    """The PDF's file name: record number and visit date, so a download files itself."""
    record = re.sub(r"[^A-Za-z0-9._-]+", "_", visit.patient.record_number).strip("._")[:64]
    return f"sarcokit-{record or visit.patient_id}-{visit.visit_date.isoformat()}.pdf"


def report_context(visit: Visit, language: str) -> dict[str, Any]:
    """Everything the visit page and the report show, with the result in the reader's language."""
    # Imported here: the corrections are read with this module's rows (an import cycle else).
    from sarcokit.web.corrections import corrections

    patient = visit.patient
    db = object_session(visit)
    # The result as saved, never re-derived: reading a visit does not run the engine.
    result = stored_result(visit, CORE_LANG[language])
    # Each definition as the visit used it: a local one in the exact uploaded version.
    used = {chosen.id: chosen for chosen in map(resolve, visit_definitions(visit))}
    return {
        "visit": visit,
        "patient": patient,
        "age": age_at(patient.date_of_birth, visit.visit_date),
        "result": result,
        # A correction may name a definition the visit no longer uses: looked up by its id.
        "definition_of": lambda name: used[name] if name in used else resolve(name),
        "instruments": instruments(),
        "measurements": measurement_rows(visit.measurements),
        "derived_labels": derived_labels(),
        "answers": answer_rows(visit.measurements, language),
        "secondary": secondary_rows(result),
        "corrections": corrections(visit, language),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        # Read from the visit's own session, so every caller (page, PDF, API) shows it.
        "clinic_name": clinic_name(db) if db is not None else "",
    }


# Bounded work: a report renders in one of PDF_WORKERS threads; a request waits at most
# PDF_QUEUE_S for one and PDF_TIMEOUT_S for its PDF, and neither the page nor the PDF may
# exceed its size. A request past a bound gets a named 503 or 413 instead of holding its worker.
PDF_WORKERS = 2
PDF_QUEUE_S = 5.0
PDF_TIMEOUT_S = 30.0
PDF_MAX_HTML_BYTES = 2 * 2**20
PDF_MAX_BYTES = 10 * 2**20
_pdf_pool = ThreadPoolExecutor(max_workers=PDF_WORKERS, thread_name_prefix="sarcokit-pdf")
_pdf_slots = threading.BoundedSemaphore(PDF_WORKERS)


class ReportRefused(HTTPException):
    """The report could not be rendered within its bounds (503 busy or slow, 413 too large)."""

    field = "report"

    def __init__(self, status_code: int, expected: str, message: str) -> None:
        super().__init__(status_code, message)
        self.expected = expected


def _write_pdf(html: str, base_url: str) -> bytes:
    from weasyprint import HTML

    pdf: bytes = HTML(string=html, base_url=base_url).write_pdf()
    return pdf


def visit_pdf(visit: Visit, language: str) -> bytes:
    """The report as PDF bytes, rendered within the bounds above (else ReportRefused)."""
    static = Path(str(files("sarcokit.web").joinpath("static")))
    # The page is rendered here, where the visit's session is; only the layout runs elsewhere.
    html = render_text(
        "report.html",
        language,
        printable=True,
        static=static.as_uri() + "/",
        **report_context(visit, language),
    )
    if len(html.encode()) > PDF_MAX_HTML_BYTES:
        raise ReportRefused(
            413,
            f"a report page of at most {PDF_MAX_HTML_BYTES} bytes",
            "the report is too large to render as PDF",
        )
    if not _pdf_slots.acquire(timeout=PDF_QUEUE_S):
        raise ReportRefused(
            503, "a free report renderer", "every report renderer is busy; try again shortly"
        )
    try:
        future = _pdf_pool.submit(_write_pdf, html, static.as_uri())
    except BaseException:
        _pdf_slots.release()
        raise
    # The slot is freed when the rendering ends, even after this request stopped waiting.
    future.add_done_callback(lambda _: _pdf_slots.release())
    try:
        pdf = future.result(timeout=PDF_TIMEOUT_S)
    except TimeoutError:
        raise ReportRefused(
            503,
            f"a report rendered within {PDF_TIMEOUT_S:g} s",
            f"the report took longer than {PDF_TIMEOUT_S:g} s to render",
        ) from None
    if len(pdf) > PDF_MAX_BYTES:
        raise ReportRefused(
            413, f"a PDF of at most {PDF_MAX_BYTES} bytes", "the report PDF is too large"
        )
    return pdf
