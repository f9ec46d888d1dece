"""A visit's measurements, with the patient's sex and age, through the core engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sarcokit.fields import GRIP_TRIALS, InputError, Problem, parse_record
from sarcokit.i18n import Lang
from sarcokit.result import Result
from sarcokit.web.batching import engine_queue
from sarcokit.web.models import Patient, Visit

# Taken from the patient record, so a visit cannot contradict it.
FROM_PATIENT = ("id", "sex", "age")


def invalid(field: str, value: Any, expected: str) -> InputError:
    """An input error for one field, in the core's shape."""
    return InputError(
        [Problem(field, value, expected, f"{field} = {value!r}; expected {expected}")]
    )


def check_measurements(measurements: Mapping[str, Any]) -> dict[str, Any]:
    """The measurements as a plain record; fields owned by the patient record are refused."""
    if not isinstance(measurements, Mapping):
        raise invalid("measurements", measurements, "an object of subject-record fields")
    problems = [
        Problem(name, measurements[name], "no value here", f"{name} comes from the patient record")
        for name in FROM_PATIENT
        if name in measurements
    ]
    if problems:
        raise InputError(problems)
    given = {k: v for k, v in measurements.items() if v is not None and v != ""}
    typed = parse_record(given)
    # Stored typed, under the names (and so the units) they were entered in; grip trials stay
    # a list, so the chart shows every trial while the engine uses the best.
    return {
        name: [float(t) for t in value] if name == GRIP_TRIALS else typed[name]
        for name, value in given.items()
    }


def age_at(born: date, on: date) -> int:
    """Age in completed years on a date."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def visit_record(
    patient: Patient, visit_date: date, measurements: Mapping[str, Any]
) -> dict[str, Any]:
    """A visit's measurements as a subject record, with the patient's sex and age that day."""
    return {
        **measurements,
        "id": str(patient.id),
        "sex": patient.sex,
        "age": age_at(patient.date_of_birth, visit_date),
    }


def _accepted(result: Result) -> Result:
    if not result.ok:
        raise InputError(result.problems)
    return result


def assess_visit(
    patient: Patient,
    visit_date: date,
    measurements: Mapping[str, Any],
    definitions: Sequence[str],
    lang: Lang,
) -> Result:
    """The core engine's result for a visit; a record it rejects raises InputError."""
    record = visit_record(patient, visit_date, measurements)
    return _accepted(engine_queue.assess(record, definitions, lang))


def assess_visits(visits: Sequence[Visit], lang: Lang) -> list[Result]:
    """Saved visits' results under the definitions each was saved with, in one engine call."""
    # All are queued before any is awaited, so the engine thread answers them together.
    futures = [
        engine_queue.submit(
            visit_record(v.patient, v.visit_date, v.measurements), v.definitions, lang
        )
        for v in visits
    ]
    return [_accepted(future.result()) for future in futures]
