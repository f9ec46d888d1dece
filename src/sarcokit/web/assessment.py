"""A visit's measurements, with the patient's sex and age, through the core engine."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from sarcokit.definitions import (
    DEFINITION_IDS,
    Definition,
    DefinitionError,
    DefinitionRef,
    definition_version,
    local_from_text,
)
from sarcokit.fields import (
    CONDITIONS,
    InputError,
    Problem,
    input_columns,
    parse_record,
    trial_inputs,
)
from sarcokit.i18n import Lang
from sarcokit.result import Result
from sarcokit.secondary.conditions import known_conditions, recognise
from sarcokit.web.batching import engine_queue
from sarcokit.web.identity import shown
from sarcokit.web.models import LocalDefinition, Patient, Visit

# Taken from the patient record, so a visit cannot contradict it.
FROM_PATIENT = ("id", "sex", "age")


def invalid(field: str, value: Any, expected: str) -> InputError:
    """An input error for one field, in the core's shape."""
    return InputError(
        [Problem(field, value, expected, f"{field} = {value!r}; expected {expected}")]
    )


# Bounded work per request: a record names each subject-record field at most once, and gives at
# most as many trials of a repeated test as fields.toml allows (checked when it is read).
MAX_CONDITIONS = 20


def bounded_record(record: Mapping[str, Any]) -> None:
    """Refuse a record that would make the engine do unbounded work, or holds free text.

    At most one entry per subject-record field (trial lists included), and `conditions` only
    as codes or names the engine recognises (at most MAX_CONDITIONS).
    """
    limit = len(input_columns()) + len(trial_inputs()) + 1
    if len(record) > limit:
        raise invalid("measurements", f"{len(record)} fields", f"at most {limit} fields")
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
    # Stored typed, under the names (and so the units) they were entered in; trials stay a list
    # in their own unit, so every trial is kept while the engine uses the best.
    return {
        name: [float(t) for t in value] if name in trial_inputs() else typed[name]
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
    definitions: Sequence[DefinitionRef],
    lang: Lang,
) -> Result:
    """The core engine's result for a visit; a record it rejects raises InputError."""
    record = visit_record(patient, visit_date, measurements)
    return _accepted(engine_queue.assess(record, definitions, lang))


def version_of(row: LocalDefinition) -> Definition:
    """The definition an uploaded version holds (read once per process)."""
    try:
        return definition_version((row.definition_id, row.sha256))
    except KeyError:
        pass
    try:
        return local_from_text(row.text, f"local definition {row.definition_id} (upload {row.id})")
    except DefinitionError as error:
        # Accepted on upload; a newer sarcokit whose schema it no longer meets cannot use it.
        raise RuntimeError(
            f"uploaded definition {row.id} ({row.definition_id}) no longer loads: {error}"
        ) from None


def visit_definitions(visit: Visit) -> list[DefinitionRef]:
    """The definitions a saved visit was assessed under: built-in ids, and each local one as
    the exact uploaded version whose SHA-256 the visit's stored result names."""
    stored = visit.result.get("definitions", {}) if isinstance(visit.result, dict) else {}
    chosen: list[DefinitionRef] = []
    for definition_id in visit.definitions:
        if definition_id in DEFINITION_IDS:
            chosen.append(definition_id)
            continue
        answer = stored.get(definition_id)
        sha256 = answer.get("sha256") if isinstance(answer, dict) else None
        db = object_session(visit)
        row = (
            db.scalar(
                select(LocalDefinition)
                .where(
                    LocalDefinition.definition_id == definition_id,
                    LocalDefinition.sha256 == sha256,
                )
                .limit(1)
            )
            if isinstance(db, Session) and sha256
            else None
        )
        if row is None:
            raise RuntimeError(
                f"visit {visit.id} was assessed under local definition {definition_id!r} "
                f"(SHA-256 {sha256}), which is not stored"
            )
        chosen.append(version_of(row))
    return chosen


def stored_result(visit: Visit, lang: Lang) -> Result:
    """The result saved with the visit, rendered in the reader's language; the engine is not
    run (only saving or correcting a visit assesses it). A result saved before reasons were
    data (contract version 1) keeps its reasons as recorded."""
    return Result.from_dict(visit.result, lang)
