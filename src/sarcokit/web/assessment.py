"""A visit's measurements, with the patient's sex and age, through the core engine."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sarcokit.fields import (
    CONDITIONS,
    GRIP_TRIALS,
    InputError,
    Problem,
    input_columns,
    parse_record,
)
from sarcokit.i18n import Lang
from sarcokit.result import Result
from sarcokit.secondary.conditions import known_conditions, recognise
from sarcokit.web.batching import engine_queue
from sarcokit.web.identity import shown
from sarcokit.web.models import Patient, Visit

# Taken from the patient record, so a visit cannot contradict it.
FROM_PATIENT = ("id", "sex", "age")


def invalid(field: str, value: Any, expected: str) -> InputError:
    """An input error for one field, in the core's shape."""
    return InputError(
        [Problem(field, value, expected, f"{field} = {value!r}; expected {expected}")]
    )


# Bounded work per request: the best of at most this many grip trials is used (the form asks
# three), and a record names each subject-record field at most once.
MAX_GRIP_TRIALS = 10
MAX_CONDITIONS = 20


def bounded_record(record: Mapping[str, Any]) -> None:
    """Refuse a record that would make the engine do unbounded work, or holds free text.

    At most one entry per subject-record field, at most MAX_GRIP_TRIALS grip trials, and
    `conditions` only as codes or names the engine recognises (at most MAX_CONDITIONS).
    """
    limit = len(input_columns()) + 2
    if len(record) > limit:
        raise invalid("measurements", f"{len(record)} fields", f"at most {limit} fields")
    trials = record.get(GRIP_TRIALS)
    if isinstance(trials, list | tuple) and len(trials) > MAX_GRIP_TRIALS:
        raise invalid(GRIP_TRIALS, f"{len(trials)} trials", f"at most {MAX_GRIP_TRIALS} trials")
    given = record.get(CONDITIONS)
    if given is None or given == "":
        return
    items = (
        [part.strip() for part in re.split(r"[;,]", given)]
        if isinstance(given, str)
        else list(given)
        if isinstance(given, list | tuple)
        else None
    )
    expected = (
        f"at most {MAX_CONDITIONS} ICD-10 codes or condition names the clinic recognises"
        f" ({', '.join(sorted(known_conditions()))})"
    )
    if items is None or not all(isinstance(i, str) for i in items):
        raise invalid(CONDITIONS, None, expected)
    items = [i for i in items if i.strip()]
    if len(items) > MAX_CONDITIONS:
        raise invalid(CONDITIONS, f"{len(items)} conditions", expected)
    _, unrecognised = recognise(items)
    if unrecognised:
        # The unrecognised text is echoed to whoever typed it, never stored or logged.
        raise invalid(CONDITIONS, [shown(u[:80]) for u in unrecognised], expected)


def check_measurements(measurements: Mapping[str, Any]) -> dict[str, Any]:
    """The measurements as a plain record; fields owned by the patient record are refused.

    A visit must record something: one measurement or questionnaire answer at least.
    """
    if not isinstance(measurements, Mapping):
        raise invalid("measurements", measurements, "an object of subject-record fields")
    bounded_record(measurements)
    problems = [
        Problem(name, measurements[name], "no value here", f"{name} comes from the patient record")
        for name in FROM_PATIENT
        if name in measurements
    ]
    if problems:
        raise InputError(problems)
    given = {k: v for k, v in measurements.items() if v is not None and v != "" and v != []}
    if not given:
        raise invalid(
            "measurements", {}, "at least one measurement or questionnaire answer; none was given"
        )
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


def stored_result(visit: Visit, lang: Lang) -> Result:
    """The result saved with the visit, rendered in the reader's language; the engine is not
    run (only saving or correcting a visit assesses it). A result saved before reasons were
    data (contract version 1) keeps its reasons as recorded."""
    return Result.from_dict(visit.result, lang)
