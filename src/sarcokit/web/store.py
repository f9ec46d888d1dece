"""Reading and writing clinic records; every access to patient data is audited here."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from sarcokit import __version__
from sarcokit.definitions import (
    DEFINITION_IDS,
    Definition,
    DefinitionError,
    DefinitionRef,
    local_from_text,
    resolve,
    use_local,
)
from sarcokit.fields import InputError, Problem
from sarcokit.i18n import Lang, text
from sarcokit.result import Result
from sarcokit.web import audit, export
from sarcokit.web.assessment import (
    age_at,
    assess_visit,
    check_measurements,
    invalid,
    version_of,
)
from sarcokit.web.i18n import LANGUAGES
from sarcokit.web.identity import (
    NAME_LENGTH,
    PASSWORD_LENGTH,
    REASON_LENGTH,
    RECORD_NUMBER_LENGTH,
    USERNAME_LENGTH,
    ZERO_WIDTH,
    free_text,
    identifier,
    identity_key,
)
from sarcokit.web.models import (
    ApiToken,
    AuditEvent,
    LocalDefinition,
    LoginSession,
    Patient,
    Setting,
    User,
    Visit,
    VisitRevision,
    VisitVoid,
)
from sarcokit.web.security import ROLES, digest, hash_password, now, password_problem, token_of

DEFAULT_DEFINITIONS = ("awgs2019", "ewgsop2")
SEARCH_LIMIT = 50
# Record ids are 32-bit integers; a larger id names no record (and overflows the SQLite driver).
MAX_ID = 2**31 - 1


class Conflict(ValueError):
    """The change clashes with a stored record (a duplicate record number or username).

    `field` names the input at fault; the message is safe to show (and to log).
    """

    def __init__(self, field: str, message: str, value: Any = None, expected: str = "") -> None:
        super().__init__(message)
        self.field, self.value = field, value
        self.expected = expected or "a value not already in use"


def _flush_unique(db: Session, field: str, message: str, value: Any) -> None:
    """Flush, turning a unique-index violation (a concurrent duplicate) into a Conflict.

    The database's own message names the clashing value; it is dropped, not chained, so it
    reaches neither the response nor a traceback in the server log. The transaction is rolled
    back (its audit events with it) and the session is usable again.
    """
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict(field, message, value) from None


# -- settings -------------------------------------------------------------------------------


def clinic_definitions(db: Session) -> list[str]:
    """The definitions the clinic reports, in order (the first one leads)."""
    stored = db.get(Setting, "definitions")
    return (
        list(stored.value) if stored and isinstance(stored.value, list) else [*DEFAULT_DEFINITIONS]
    )


def set_clinic_definitions(db: Session, user: User, ids: Sequence[str]) -> None:
    """Choose the definitions the clinic reports (built-in ids and uploaded local ones)."""
    known = (*DEFINITION_IDS, *current_local(db))
    unknown = [i for i in ids if i not in known]
    if not ids or unknown:
        raise invalid("definitions", list(ids), f"one or more of {', '.join(known)}")
    chosen = list(dict.fromkeys(ids))
    stored = db.get(Setting, "definitions")
    if stored is None:
        db.add(Setting(key="definitions", value=chosen))
    else:
        stored.value = chosen
    audit.record(db, user, "settings.update", "settings", detail=",".join(chosen))


CLINIC_NAME = "clinic_name"
CLINIC_NAME_LENGTH = 200


def clinic_name(db: Session) -> str:
    """The clinic's name as the report heads it ('' until an administrator sets it)."""
    stored = db.get(Setting, CLINIC_NAME)
    return stored.value if stored and isinstance(stored.value, str) else ""


def check_clinic_name(raw: str) -> str:
    """The clinic's name trimmed; raises InputError for one too long or with control characters."""
    return free_text("clinic_name", raw, CLINIC_NAME_LENGTH, required=False)


def set_clinic_name(db: Session, user: User, raw: str) -> None:
    """Name the clinic on its reports; an empty name takes it off."""
    name = check_clinic_name(raw)
    stored = db.get(Setting, CLINIC_NAME)
    if stored is not None and stored.value == name:
        return
    if stored is None:
        db.add(Setting(key=CLINIC_NAME, value=name))
    else:
        stored.value = name
    audit.record(db, user, "settings.update", "settings", detail=f"{CLINIC_NAME}={name}")


def clinic_chosen(db: Session) -> list[DefinitionRef]:
    """The clinic's definitions as the engine takes them: built-in ids, and each local one as
    its newest version not retired (made current in this process too)."""
    ids = clinic_definitions(db)
    local = current_local(db) if set(ids) - set(DEFINITION_IDS) else {}
    chosen: list[DefinitionRef] = []
    for definition_id in ids:
        if definition_id in DEFINITION_IDS:
            chosen.append(definition_id)
            continue
        row = local.get(definition_id)
        if row is None:  # retire_definition refuses this; a hand-edited database may not
            raise Conflict(
                "definitions",
                f"the clinic reports {definition_id!r}, which has no version in use; "
                "choose the clinic's definitions again",
                definition_id,
            )
        version = version_of(row)
        use_local(version)
        chosen.append(version)
    return chosen


# -- local definitions (administrators) -----------------------------------------------------

# An uploaded definition file: at most this many bytes, UTF-8 text. The largest built-in
# criteria file is ~9 KiB; the limit stays under the clinic's request-body limit (256 KiB by
# default) so a file too large is refused by name, not as an oversized request.
MAX_DEFINITION_BYTES = 128 * 1024
DEFINITION_ID_LENGTH = 64


def local_versions(db: Session) -> list[LocalDefinition]:
    """Every uploaded version, retired ones too, by definition id and newest first."""
    statement = select(LocalDefinition).order_by(
        LocalDefinition.definition_id, LocalDefinition.id.desc()
    )
    return list(db.scalars(statement))


def current_local(db: Session) -> dict[str, LocalDefinition]:
    """The version in use of each uploaded definition id: its newest one not retired."""
    current: dict[str, LocalDefinition] = {}
    for row in db.scalars(
        select(LocalDefinition)
        .where(LocalDefinition.retired_at.is_(None))
        .order_by(LocalDefinition.id)
    ):
        current[row.definition_id] = row
    return current


def definition_lookup(db: Session) -> dict[str, Definition]:
    """Every definition a page may name, by id: the built-in ones and the newest version of
    each uploaded id (retired ones too, for old visits)."""
    found: dict[str, Definition] = {i: resolve(i) for i in DEFINITION_IDS}
    for row in reversed(local_versions(db)):
        found[row.definition_id] = version_of(row)
    current = current_local(db)
    for definition_id, row in current.items():
        found[definition_id] = version_of(row)
    return found


def _loader_problems(error: DefinitionError, lang: Lang) -> InputError:
    # Every problem the loader found, each with its line, as the CLI lists them, in `lang`.
    return InputError(
        [
            Problem(
                "file",
                line,
                "a definition file the loader accepts",
                text(lang, "loader.at_line", line=line or "?", message=message),
            )
            for line, message in error.in_language(lang)
        ]
    )


def check_definition_file(raw: bytes, filename: str, lang: Lang = "en") -> tuple[str, Definition]:
    """A definition file's text and definition, checked as `sarcokit criteria check` does;
    raises InputError (field `file`) listing every problem with its line, in `lang`."""
    if len(raw) > MAX_DEFINITION_BYTES:
        raise invalid(
            "file", f"{len(raw)} bytes", f"a file of at most {MAX_DEFINITION_BYTES} bytes"
        )
    if not raw.strip():
        raise invalid("file", "an empty file", "a definition file (TOML, schema = 1)")
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise invalid("file", f"byte {error.start} is not UTF-8", "text in UTF-8") from None
    try:
        parsed = local_from_text(content, filename)
    except DefinitionError as error:
        raise _loader_problems(error, lang) from None
    if len(parsed.id) > DEFINITION_ID_LENGTH:
        raise invalid(
            "file", parsed.id, f"a definition id of at most {DEFINITION_ID_LENGTH} characters"
        )
    return content, parsed


def upload_definition(
    db: Session, user: User, raw: bytes, filename: str, lang: Lang = "en"
) -> LocalDefinition:
    """Store a new version of a local definition (the first of its id, or a changed text);
    the clinic uses it at once wherever it reports that id. Nothing is stored if the file has
    any problem; the same text as the version in use is a Conflict."""
    content, parsed = check_definition_file(raw, filename, lang)
    current = current_local(db).get(parsed.id)
    if current is not None and current.sha256 == parsed.sha256:
        raise Conflict(
            "file",
            f"this text is already the version of {parsed.id!r} in use (upload {current.id})",
            parsed.id,
            "a file that differs from the version in use",
        )
    row = LocalDefinition(
        definition_id=parsed.id,
        text=content,
        sha256=parsed.sha256,
        uploaded_by=user.id,
        uploaded_at=now(),
    )
    db.add(row)
    db.flush()
    audit.record(
        db, user, "definition.upload", "local_definition", row.id, f"{parsed.id} {parsed.sha256}"
    )
    return row


def retire_definition(db: Session, user: User, row_id: int) -> LocalDefinition | None:
    """Withdraw one uploaded version (kept, never deleted); the previous version of its id, if
    any, is in use again. None when there is no such upload."""
    row = db.get(LocalDefinition, row_id) if 0 < row_id <= MAX_ID else None
    if row is None:
        return None
    if row.retired:
        raise Conflict("definition", f"upload {row.id} is already retired", row.id)
    others = [
        r for r in local_versions(db) if r.definition_id == row.definition_id and not r.retired
    ]
    if row.definition_id in clinic_definitions(db) and len(others) == 1:
        raise Conflict(
            "definition",
            f"the clinic reports {row.definition_id!r} and this is its only version in use; "
            "choose the clinic's definitions without it first",
            row.id,
            "a version the clinic can do without",
        )
    row.retired_at, row.retired_by = now(), user.id
    audit.record(
        db,
        user,
        "definition.retire",
        "local_definition",
        row.id,
        f"{row.definition_id} {row.sha256}",
    )
    return row


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


def username(raw: str) -> str:
    """A username as stored: an identifier of letters, digits, '.' or '_'."""
    name = identifier("username", raw, USERNAME_LENGTH)
    if not name.replace(".", "").replace("_", "").isalnum():
        raise invalid("username", name, "1 to 64 letters, digits, '.' or '_'")
    return name


def users(db: Session) -> list[User]:
    """Every account, oldest first."""
    return list(db.scalars(select(User).order_by(User.id)))


def user_by_id(db: Session, user_id: int) -> User | None:
    """The account with this id (an id out of range is not found)."""
    return db.get(User, user_id) if 0 < user_id <= MAX_ID else None


def usernames(db: Session) -> dict[int, str]:
    """Each account's username by id (to name who did what on a page)."""
    return {u.id: u.username for u in db.scalars(select(User))}


def audit_events(db: Session, user: User, limit: int) -> list[AuditEvent]:
    """The newest audit events, newest first; the read itself is audited."""
    events = list(db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)))
    audit.record(db, user, "audit.read", "audit_log", detail=f"{len(events)} shown")
    return events


def user_by_name(db: Session, raw: str) -> User | None:
    """The account a typed username names (compared by its key), if any."""
    try:
        name = identifier("username", raw, USERNAME_LENGTH)
    except InputError:
        return None
    return db.scalar(select(User).where(User.username_key == identity_key(name)))


def _password(password: str) -> str:
    problem = password_problem(password)
    if problem is None and len(password) > PASSWORD_LENGTH:
        problem = f"expected at most {PASSWORD_LENGTH} characters"
    if problem:
        raise invalid("password", "(hidden)", problem.split("; expected ")[-1])
    return hash_password(password)


def create_user(
    db: Session,
    actor: User | None,
    username_given: str,
    display_name: str,
    password: str,
    roles: Sequence[str],
    language: str = "en",
) -> User:
    """A new account; a username already in use (compared by its key) is a Conflict."""
    name = username(username_given)
    shown = free_text("display_name", display_name, NAME_LENGTH, required=False) or name
    key = identity_key(name)
    message = f"the username {name!r} is taken"
    if _username_in_use(db, key):
        raise Conflict("username", message, name)
    user = User(
        username=name,
        username_key=key,
        display_name=shown,
        password_hash=_password(password),
        roles=_roles(roles),
        language=check_language(language),
        active=True,
        created_at=now(),
    )
    db.add(user)
    _flush_unique(db, "username", message, name)
    audit.record(db, actor or user, "user.create", "user", user.id, detail=user.roles)
    return user


def _username_in_use(db: Session, key: str) -> bool:
    # The unique index decides in the end (a concurrent duplicate passes this check).
    return db.scalar(select(User.id).where(User.username_key == key)) is not None


def _active_admins(db: Session, other_than: int) -> int:
    return len(
        [
            u
            for u in db.scalars(select(User).where(User.active, User.id != other_than))
            if "admin" in u.role_set
        ]
    )


def end_sessions(db: Session, user: User, keep_session: str | None = None) -> None:
    """End the user's browser sessions (but `keep_session`, a cookie token) and API tokens."""
    statement = delete(LoginSession).where(LoginSession.user_id == user.id)
    if keep_session:
        statement = statement.where(LoginSession.token_hash != digest(keep_session))
    db.execute(statement)
    db.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ~ApiToken.revoked).values(revoked=True)
    )


def update_user(
    db: Session,
    actor: User,
    user: User,
    *,
    roles: Sequence[str] | None = None,
    active: bool | None = None,
    password: str | None = None,
    keep_session: str | None = None,
) -> None:
    """Change an account's roles, status or password.

    A new password or a deactivation ends the user's other sessions and every API token, so
    whoever held them must sign in again; reactivating does not bring them back. The last
    active administrator cannot lose the role or be deactivated (409).
    """
    new_roles = _roles(roles) if roles is not None else user.roles
    if active is False and user.id == actor.id:
        raise invalid("active", active, "an administrator cannot deactivate themselves")
    ends_admin = (
        "admin" in user.role_set
        and user.active
        and ("admin" not in new_roles.split(",") or active is False)
    )
    if ends_admin and _active_admins(db, user.id) == 0:
        field = "active" if active is False and "admin" in new_roles.split(",") else "roles"
        raise Conflict(
            field,
            "the clinic's last active administrator must keep the role; make another first",
            expected="another active administrator first",
        )
    ended = False
    user.roles = new_roles
    if active is not None:
        ended = user.active and not active
        user.active = active
    if password is not None:
        user.password_hash = _password(password)
        ended = True
    if ended:
        end_sessions(db, user, keep_session)
    audit.record(db, actor, "user.update", "user", user.id, detail=user.roles)


def revoke_token(db: Session, user: User, token_id: int) -> bool:
    """Revoke one of the user's API tokens (audited); False when the user has no such token."""
    token = token_of(db, user, token_id)
    if token is None:
        return False
    if not token.revoked:
        token.revoked = True
        audit.record(db, user, "token.revoke", "api_token", token.id)
    return True


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


def _check_patient(data: PatientIn) -> tuple[str, str]:
    number = identifier("record_number", data.record_number, RECORD_NUMBER_LENGTH)
    name = free_text("name", data.name, NAME_LENGTH)
    if data.sex not in ("male", "female"):
        raise invalid("sex", data.sex, "male or female")
    today = date.today()
    if not date(today.year - 120, 1, 1) <= data.date_of_birth <= today:
        raise invalid(
            "date_of_birth", data.date_of_birth.isoformat(), "a date in the last 120 years"
        )
    return number, name


def _record_number_in_use(db: Session, key: str, other_than: int | None = None) -> bool:
    # The unique index decides in the end (a concurrent duplicate passes this check).
    statement = select(Patient.id).where(Patient.record_key == key)
    if other_than is not None:
        statement = statement.where(Patient.id != other_than)
    return db.scalar(statement) is not None


def _record_number_taken(number: str) -> Conflict:
    return Conflict("record_number", f"the record number {number!r} is already registered", number)


def create_patient(db: Session, user: User, data: PatientIn) -> Patient:
    """Register a patient; a record number in use (compared by its key) is a Conflict."""
    number, name = _check_patient(data)
    key = identity_key(number)
    if _record_number_in_use(db, key):
        raise _record_number_taken(number)
    patient = Patient(
        record_number=number,
        record_key=key,
        name=name,
        sex=data.sex,
        date_of_birth=data.date_of_birth,
        created_at=now(),
        created_by=user.id,
    )
    db.add(patient)
    taken = _record_number_taken(number)
    _flush_unique(db, taken.field, str(taken), number)
    audit.record(db, user, "patient.create", "patient", patient.id)
    return patient


def update_patient(db: Session, user: User, patient: Patient, data: PatientIn) -> None:
    """Correct a patient's identifying details."""
    number, name = _check_patient(data)
    key = identity_key(number)
    if _record_number_in_use(db, key, patient.id):
        raise _record_number_taken(number)
    patient.record_number, patient.record_key, patient.name = number, key, name
    patient.sex, patient.date_of_birth = data.sex, data.date_of_birth
    taken = _record_number_taken(number)
    _flush_unique(db, taken.field, str(taken), number)
    audit.record(db, user, "patient.update", "patient", patient.id)


def searched_key(text: str) -> str:
    """A search text in the form record numbers are stored in (not refused: it is a search)."""
    normal = unicodedata.normalize("NFKC", text)
    return "".join(c for c in normal if c not in ZERO_WIDTH).strip()


def search_patients(db: Session, user: User, query: str = "") -> list[Patient]:
    """Patients whose record number or name contains the query (newest first)."""
    statement = select(Patient).order_by(Patient.id.desc()).limit(SEARCH_LIMIT)
    text = query.strip()
    if text:
        pattern = f"%{text.lower()}%"
        # Record numbers are compared by their key, so `mrn-0001` finds `MRN-0001`.
        key = f"%{identity_key(searched_key(text))}%"
        statement = statement.where(
            or_(
                Patient.record_key.like(key),
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
    definitions: list[DefinitionRef]
    stored: Result
    shown: Result


def _assess_for_saving(
    db: Session, patient: Patient, visit_date: date, measurements: Mapping[str, Any], lang: Lang
) -> _Assessed:
    # The engine runs before anything is written, so a transaction's writes come last.
    if visit_date < patient.date_of_birth or visit_date > date.today():
        raise invalid("visit_date", visit_date.isoformat(), "a date between birth and today")
    record = check_measurements(measurements)
    chosen = clinic_chosen(db)
    stored = assess_visit(patient, visit_date, record, chosen, "en")
    # One engine call: the reasons are data, rendered in the reader's language at the edge.
    return _Assessed(record, chosen, stored, stored.in_language(lang))


def value_problems(
    patient: Patient, visit_date: date, measurements: Mapping[str, Any]
) -> list[Problem]:
    """The problems the engine finds with values that could be read (nothing is saved)."""
    if not measurements:
        return []
    try:
        record = check_measurements(measurements)
        assess_visit(patient, visit_date, record, DEFINITION_IDS[:1], "en")
    except InputError as error:
        return error.problems
    return []


def _ids(chosen: Sequence[DefinitionRef]) -> list[str]:
    # A visit stores ids; its result names each local definition's SHA-256 (the version).
    return [ref if isinstance(ref, str) else ref.id for ref in chosen]


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
        definitions=_ids(assessed.definitions),
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
    if visit.voided:
        raise Conflict("visit", f"visit {visit.id} was voided; it cannot be corrected", visit.id)
    why = free_text("reason", reason, REASON_LENGTH, multiline=True)
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
    visit.result, visit.definitions = assessed.stored.to_dict(), _ids(assessed.definitions)
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
    """A patient's visits in date order (voided ones left out), with the read audited."""
    audit.record(db, user, "visit.list", "patient", patient.id)
    return [visit for visit in patient.visits if not visit.voided]


def voided_visits(db: Session, user: User, patient: Patient) -> list[Visit]:
    """A patient's voided visits in date order, for administrators."""
    found = [visit for visit in patient.visits if visit.voided]
    if found:
        audit.record(db, user, "visit.list_voided", "patient", patient.id)
    return found


def all_voided_visits(db: Session, user: User) -> list[Visit]:
    """Every voided visit, newest void first (administrators), with the read audited."""
    found = list(
        db.scalars(select(Visit).join(VisitVoid).order_by(VisitVoid.voided_at.desc(), Visit.id))
    )
    audit.record(db, user, "visit.list_voided", "visit", detail=f"{len(found)} shown")
    return found


def void_visit(db: Session, user: User, visit: Visit, reason: str) -> None:
    """Void a visit entered by mistake: it is kept, with who voided it, when and why."""
    why = free_text("reason", reason, REASON_LENGTH, multiline=True)
    if visit.voided:
        raise Conflict("visit", f"visit {visit.id} is already voided", visit.id)
    visit.void = VisitVoid(visit_id=visit.id, voided_at=now(), voided_by=user.id, reason=why)
    db.add(visit.void)
    # The reason may name clinical facts, so the audit keeps only that the visit was voided.
    audit.record(db, user, "visit.void", "visit", visit.id, detail=f"patient {visit.patient_id}")


# -- de-identified export -------------------------------------------------------------------


def pseudonym(key: str, patient_id: int) -> str:
    """A stable pseudonym for a patient that cannot be reversed without the clinic's key."""
    return hmac.new(key.encode(), str(patient_id).encode(), hashlib.sha256).hexdigest()[:16]


def export_visits(db: Session, user: User, key: str) -> list[dict[str, Any]]:
    """Every visit, de-identified: pseudonym, sex, age, days since first visit, visit number,
    and the measurements and result as stored (web.export makes the table of them).

    Names, record numbers and dates are left out; age in whole years and intervals in days
    keep the data useful for analysis (HIPAA Safe Harbor keeps ages under 90 only, so ages of
    90 and above are reported as 90).
    """
    rows: list[dict[str, Any]] = []
    first: dict[int, date] = {}
    number: Counter[int] = Counter()
    # The patients come in the same query: one round trip, not one per visit.
    # Voided visits were entered by mistake: they are not data.
    visits = db.scalars(
        select(Visit)
        .options(joinedload(Visit.patient))
        .where(~select(VisitVoid.visit_id).where(VisitVoid.visit_id == Visit.id).exists())
        .order_by(Visit.visit_date, Visit.id)
    )
    for visit in visits:
        patient = visit.patient
        start = first.setdefault(patient.id, visit.visit_date)
        number[patient.id] += 1
        rows.append(
            {
                "subject": pseudonym(key, patient.id),
                "sex": patient.sex,
                "age": min(age_at(patient.date_of_birth, visit.visit_date), 90),
                "days_since_first_visit": (visit.visit_date - start).days,
                "visit": number[patient.id],
                "measurements": visit.measurements,
                "result": visit.result,
            }
        )
    audit.record(db, user, "export.deidentified", "visit", detail=f"{len(rows)} rows")
    return rows


def export_table(db: Session, user: User, key: str) -> tuple[pl.DataFrame, list[export.Column]]:
    """The de-identified export as a typed table, with its data dictionary."""
    return export.table(export_visits(db, user, key))
