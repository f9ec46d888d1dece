"""Reading and writing clinic records; every access to patient data is audited here."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload

from sarcokit import __version__
from sarcokit.definitions import DEFINITION_IDS
from sarcokit.i18n import Lang
from sarcokit.result import Result
from sarcokit.web import audit
from sarcokit.web.assessment import age_at, assess_visit, check_measurements, invalid
from sarcokit.web.i18n import LANGUAGES
from sarcokit.web.models import Patient, Setting, User, Visit, VisitRevision
from sarcokit.web.security import ROLES, hash_password, now, password_problem

DEFAULT_DEFINITIONS = ("awgs2019", "ewgsop2")
SEARCH_LIMIT = 50
# Record ids are 32-bit integers; a larger id names no record (and overflows the SQLite driver).
MAX_ID = 2**31 - 1


class Conflict(ValueError):
    """The change clashes with a stored record (a duplicate record number or username)."""


# -- settings -------------------------------------------------------------------------------


def clinic_definitions(db: Session) -> list[str]:
    """The definitions the clinic reports, in order (the first one leads)."""
    stored = db.get(Setting, "definitions")
    return (
        list(stored.value) if stored and isinstance(stored.value, list) else [*DEFAULT_DEFINITIONS]
    )


def set_clinic_definitions(db: Session, user: User, ids: Sequence[str]) -> None:
    """Choose the definitions the clinic reports."""
    unknown = [i for i in ids if i not in DEFINITION_IDS]
    if not ids or unknown:
        raise invalid("definitions", list(ids), f"one or more of {', '.join(DEFINITION_IDS)}")
    chosen = list(dict.fromkeys(ids))
    stored = db.get(Setting, "definitions")
    if stored is None:
        db.add(Setting(key="definitions", value=chosen))
    else:
        stored.value = chosen
    audit.record(db, user, "settings.update", "settings", detail=",".join(chosen))


# -- users ----------------------------------------------------------------------------------


def count_users(db: Session) -> int:
    """How many accounts exist (none before the first-run step)."""
    return db.scalar(select(func.count()).select_from(User)) or 0


def _roles(roles: Sequence[str]) -> str:
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise invalid("roles", list(roles), f"one or more of {', '.join(ROLES)}")
    if "researcher" in roles and "clinician" in roles:
        # Researchers see de-identified data only; one account cannot be both.
        raise invalid("roles", list(roles), "researcher without clinician")
    return ",".join(r for r in ROLES if r in roles)


def create_user(
    db: Session,
    actor: User | None,
    username: str,
    display_name: str,
    password: str,
    roles: Sequence[str],
    language: str = "en",
) -> User:
    """A new account."""
    name = username.strip()
    if not name or len(name) > 64 or not name.replace(".", "").replace("_", "").isalnum():
        raise invalid("username", username, "1 to 64 letters, digits, '.' or '_'")
    problem = password_problem(password)
    if problem:
        raise invalid("password", "(hidden)", problem.split("; expected ")[-1])
    if db.scalar(select(User).where(User.username == name)) is not None:
        raise Conflict(f"username {name!r} is taken")
    user = User(
        username=name,
        display_name=display_name.strip() or name,
        password_hash=hash_password(password),
        roles=_roles(roles),
        language=check_language(language),
        active=True,
        created_at=now(),
    )
    db.add(user)
    db.flush()
    audit.record(db, actor or user, "user.create", "user", user.id, detail=user.roles)
    return user


def update_user(
    db: Session,
    actor: User,
    user: User,
    *,
    roles: Sequence[str] | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> None:
    """Change an account's roles, status or password."""
    if roles is not None:
        user.roles = _roles(roles)
    if active is not None:
        if not active and user.id == actor.id:
            raise invalid("active", active, "an administrator cannot deactivate themselves")
        user.active = active
    if password is not None:
        problem = password_problem(password)
        if problem:
            raise invalid("password", "(hidden)", problem.split("; expected ")[-1])
        user.password_hash = hash_password(password)
    audit.record(db, actor, "user.update", "user", user.id, detail=user.roles)


def check_language(language: str) -> str:
    """A supported interface language."""
    if language not in LANGUAGES:
        raise invalid("language", language, f"one of {', '.join(LANGUAGES)}")
    return language


# -- patients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientIn:
    """The identifying details of a patient."""

    record_number: str
    name: str
    sex: str
    date_of_birth: date


def _check_patient(data: PatientIn) -> None:
    if not data.record_number.strip() or len(data.record_number) > 64:
        raise invalid("record_number", data.record_number, "1 to 64 characters")
    if not data.name.strip() or len(data.name) > 200:
        raise invalid("name", data.name, "1 to 200 characters")
    if data.sex not in ("male", "female"):
        raise invalid("sex", data.sex, "male or female")
    today = date.today()
    if not date(today.year - 120, 1, 1) <= data.date_of_birth <= today:
        raise invalid(
            "date_of_birth", data.date_of_birth.isoformat(), "a date in the last 120 years"
        )


def create_patient(db: Session, user: User, data: PatientIn) -> Patient:
    """Register a patient."""
    _check_patient(data)
    number = data.record_number.strip()
    if db.scalar(select(Patient).where(Patient.record_number == number)) is not None:
        raise Conflict(f"record number {number!r} is already registered")
    patient = Patient(
        record_number=number,
        name=data.name.strip(),
        sex=data.sex,
        date_of_birth=data.date_of_birth,
        created_at=now(),
        created_by=user.id,
    )
    db.add(patient)
    db.flush()
    audit.record(db, user, "patient.create", "patient", patient.id)
    return patient


def update_patient(db: Session, user: User, patient: Patient, data: PatientIn) -> None:
    """Correct a patient's identifying details."""
    _check_patient(data)
    number = data.record_number.strip()
    clash = db.scalar(
        select(Patient).where(Patient.record_number == number, Patient.id != patient.id)
    )
    if clash is not None:
        raise Conflict(f"record number {number!r} is already registered")
    patient.record_number, patient.name = number, data.name.strip()
    patient.sex, patient.date_of_birth = data.sex, data.date_of_birth
    audit.record(db, user, "patient.update", "patient", patient.id)


def search_patients(db: Session, user: User, query: str = "") -> list[Patient]:
    """Patients whose record number or name contains the query (newest first)."""
    statement = select(Patient).order_by(Patient.id.desc()).limit(SEARCH_LIMIT)
    text = query.strip()
    if text:
        pattern = f"%{text.lower()}%"
        statement = statement.where(
            or_(
                func.lower(Patient.record_number).like(pattern),
                func.lower(Patient.name).like(pattern),
            )
        )
    found = list(db.scalars(statement))
    # The search term may be a name, so the audit keeps which records were shown, not the term.
    shown = ",".join(str(p.id) for p in found)
    audit.record(db, user, "patient.search", "patient", detail=f"{len(found)} shown: {shown}")
    return found


def get_patient(db: Session, user: User, patient_id: int) -> Patient | None:
    """One patient, with the read audited."""
    patient = db.get(Patient, patient_id) if 0 < patient_id <= MAX_ID else None
    if patient is not None:
        audit.record(db, user, "patient.read", "patient", patient.id)
    return patient


# -- visits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Assessed:
    record: dict[str, Any]
    definitions: list[str]
    stored: Result
    shown: Result


def _assess_for_saving(
    db: Session, patient: Patient, visit_date: date, measurements: Mapping[str, Any], lang: Lang
) -> _Assessed:
    # The engine runs before anything is written, so a transaction's writes come last.
    if visit_date < patient.date_of_birth or visit_date > date.today():
        raise invalid("visit_date", visit_date.isoformat(), "a date between birth and today")
    record = check_measurements(measurements)
    chosen = clinic_definitions(db)
    stored = assess_visit(patient, visit_date, record, chosen, "en")
    shown = stored if lang == "en" else assess_visit(patient, visit_date, record, chosen, lang)
    return _Assessed(record, chosen, stored, shown)


def create_visit(
    db: Session,
    user: User,
    patient: Patient,
    visit_date: date,
    measurements: Mapping[str, Any],
    lang: Lang = "en",
) -> tuple[Visit, Result]:
    """Record a visit; returns it with its result in `lang` (kept in English with the visit)."""
    assessed = _assess_for_saving(db, patient, visit_date, measurements, lang)
    visit = Visit(
        patient_id=patient.id,
        visit_date=visit_date,
        measurements=assessed.record,
        result=assessed.stored.to_dict(),
        definitions=assessed.definitions,
        engine_version=__version__,
        created_at=now(),
        created_by=user.id,
    )
    db.add(visit)
    db.flush()
    audit.record(db, user, "visit.create", "visit", visit.id, detail=f"patient {patient.id}")
    return visit, assessed.shown


def correct_visit(
    db: Session,
    user: User,
    visit: Visit,
    visit_date: date,
    measurements: Mapping[str, Any],
    reason: str,
    lang: Lang = "en",
) -> Result:
    """Correct a visit: the superseded version is kept with who replaced it and why."""
    why = reason.strip()
    if not why or len(why) > 500:
        raise invalid("reason", reason, "why the visit is corrected, 1 to 500 characters")
    assessed = _assess_for_saving(db, visit.patient, visit_date, measurements, lang)
    db.add(
        VisitRevision(
            visit_id=visit.id,
            visit_date=visit.visit_date,
            measurements=visit.measurements,
            result=visit.result,
            definitions=visit.definitions,
            engine_version=visit.engine_version,
            replaced_at=now(),
            replaced_by=user.id,
            reason=why,
        )
    )
    visit.visit_date, visit.measurements = visit_date, assessed.record
    visit.result, visit.definitions = assessed.stored.to_dict(), assessed.definitions
    visit.engine_version = __version__
    # The reason may name clinical facts, so the audit keeps only that a correction happened.
    audit.record(db, user, "visit.correct", "visit", visit.id, detail=f"patient {visit.patient_id}")
    return assessed.shown


def get_visit(db: Session, user: User, visit_id: int, action: str = "visit.read") -> Visit | None:
    """One visit, with the read audited."""
    visit = db.get(Visit, visit_id) if 0 < visit_id <= MAX_ID else None
    if visit is not None:
        audit.record(db, user, action, "visit", visit.id, detail=f"patient {visit.patient_id}")
    return visit


def patient_visits(db: Session, user: User, patient: Patient) -> list[Visit]:
    """A patient's visits in date order, with the read audited."""
    audit.record(db, user, "visit.list", "patient", patient.id)
    return list(patient.visits)


# -- de-identified export -------------------------------------------------------------------


def pseudonym(key: str, patient_id: int) -> str:
    """A stable pseudonym for a patient that cannot be reversed without the clinic's key."""
    return hmac.new(key.encode(), str(patient_id).encode(), hashlib.sha256).hexdigest()[:16]


def export_rows(db: Session, user: User, key: str) -> list[dict[str, Any]]:
    """Every visit, de-identified: pseudonym, sex, age, days since first visit, results.

    Names, record numbers and dates are left out; age in whole years and intervals in days
    keep the data useful for analysis (HIPAA Safe Harbor keeps ages under 90 only, so ages of
    90 and above are reported as 90).
    """
    rows: list[dict[str, Any]] = []
    first: dict[int, date] = {}
    # The patients come in the same query: one round trip, not one per visit.
    visits = db.scalars(
        select(Visit).options(joinedload(Visit.patient)).order_by(Visit.visit_date, Visit.id)
    )
    for visit in visits:
        patient = visit.patient
        start = first.setdefault(patient.id, visit.visit_date)
        definitions = visit.result.get("definitions", {})
        rows.append(
            {
                "subject": pseudonym(key, patient.id),
                "sex": patient.sex,
                "age": min(age_at(patient.date_of_birth, visit.visit_date), 90),
                "days_since_first_visit": (visit.visit_date - start).days,
                **{k: v for k, v in visit.measurements.items() if k != "id"},
                **{
                    f"{name}_category": answer.get("category")
                    for name, answer in definitions.items()
                    if isinstance(answer, dict)
                },
            }
        )
    audit.record(db, user, "export.deidentified", "visit", detail=f"{len(rows)} rows")
    return rows
