"""What a SMART on FHIR launch keeps in the clinic: its settings, the access token (encrypted),
the EHR patient linked to a clinic patient by identifier, and the write-back of a saved visit."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from sarcokit.fhir.smart import SmartError, granted, same_url
from sarcokit.web import audit, store
from sarcokit.web.config import Settings, secret_file
from sarcokit.web.identity import identity_key
from sarcokit.web.models import Patient, PatientIdentifier, Setting, SmartLaunch, User, Visit
from sarcokit.web.security import aware, digest, now
from sarcokit.web.startup import CLINIC_ID_KEY

CONFIG_ENV = "SARCOKIT_SMART_CONFIG"

# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmartIssuer:
    """An EHR allowed to launch the clinic: its client registration and patient identifier."""

    client_id: str
    identifier_system: str
    client_secret: str | None = None


@dataclass(frozen=True)
class SmartConfig:
    """The allow-listed EHRs (by `iss`, their FHIR base URL) and the clinic's redirect URI."""

    redirect_uri: str
    issuers: Mapping[str, SmartIssuer]

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "SMART configuration") -> SmartConfig:
        """Read `{"redirect_uri": ..., "issuers": {iss: {client_id, identifier_system,
        client_secret?}}}`; a missing or wrong entry is named."""

        def wrong(field: str, expected: str) -> ValueError:
            return ValueError(f"{where}: {field} is missing or wrong; expected {expected}")

        if not isinstance(raw, Mapping):
            raise wrong("the document", "a JSON object")
        redirect = raw.get("redirect_uri")
        if not isinstance(redirect, str) or not redirect.endswith("/smart/callback"):
            raise wrong("redirect_uri", "the clinic's URL ending in /smart/callback")
        issuers: dict[str, SmartIssuer] = {}
        listed = raw.get("issuers")
        if not isinstance(listed, Mapping):
            raise wrong("issuers", "an object of FHIR base URLs")
        for iss, entry in listed.items():
            if not isinstance(entry, Mapping):
                raise wrong(f"issuers[{iss!r}]", "an object")
            for name in ("client_id", "identifier_system"):
                if not isinstance(entry.get(name), str) or not entry[name]:
                    raise wrong(f"issuers[{iss!r}].{name}", "a non-empty string")
            secret = entry.get("client_secret")
            if secret is not None and not isinstance(secret, str):
                raise wrong(f"issuers[{iss!r}].client_secret", "a string")
            issuers[str(iss).rstrip("/")] = SmartIssuer(
                entry["client_id"], entry["identifier_system"], secret
            )
        return cls(redirect, issuers)

    @classmethod
    def from_file(cls, path: Path) -> SmartConfig:
        """Read the JSON file named by SARCOKIT_SMART_CONFIG."""
        return cls.from_mapping(json.loads(path.read_text("utf-8")), str(path))

    def issuer(self, iss: str) -> SmartIssuer | None:
        """The allow-listed EHR with this FHIR base URL (exactly, a trailing slash aside)."""
        return next((v for k, v in self.issuers.items() if same_url(k, iss)), None)


def config_from_env() -> SmartConfig | None:
    """The SMART settings in the file SARCOKIT_SMART_CONFIG names (None when it names none),
    read when the clinic starts: a wrong file stops the start with the entry named."""
    path = os.environ.get(CONFIG_ENV)
    return SmartConfig.from_file(Path(path)) if path else None


def smart_config(request: Request) -> SmartConfig | None:
    """The clinic's SMART settings, or None when SMART launch is not set up."""
    found: SmartConfig | None = getattr(request.app.state, "smart_config", None)
    return found


# -- the access token, encrypted at rest ------------------------------------------------------


def _fernet(settings: Settings) -> Any:
    from cryptography.fernet import Fernet

    secret = secret_file(settings.data_dir / "smart-key")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def seal(settings: Settings, token: str) -> str:
    """The access token encrypted with the clinic's key (a database copy does not give it)."""
    sealed: bytes = _fernet(settings).encrypt(token.encode())
    return sealed.decode("ascii")


def unseal(settings: Settings, sealed: str) -> str:
    """The access token back from its encrypted form."""
    opened: bytes = _fernet(settings).decrypt(sealed.encode("ascii"))
    return opened.decode()


# -- launches ---------------------------------------------------------------------------------


def launch_by_handle(db: Session, handle: str) -> SmartLaunch | None:
    """The authorised launch a handle names."""
    if not handle or len(handle) > 100:
        return None
    return db.scalar(select(SmartLaunch).where(SmartLaunch.handle_hash == digest(handle)))


def launch_of_visit(db: Session, visit: Visit) -> SmartLaunch | None:
    """The SMART launch a visit was saved from, with its write-back state."""
    return db.scalar(select(SmartLaunch).where(SmartLaunch.visit_id == visit.id))


def token_live(launch: SmartLaunch) -> bool:
    """Whether the launch still holds an access token that has not expired."""
    expires = launch.token_expires_at
    return bool(launch.access_token) and expires is not None and aware(expires) > now()


# -- the EHR patient and the clinic patient ---------------------------------------------------


def _name(resource: Mapping[str, Any]) -> str | None:
    for name in resource.get("name") or []:
        if not isinstance(name, Mapping):
            continue
        if isinstance(name.get("text"), str) and name["text"].strip():
            return str(name["text"]).strip()
        parts = [str(g) for g in name.get("given") or [] if isinstance(g, str)]
        if isinstance(name.get("family"), str):
            parts.append(name["family"])
        if parts:
            return " ".join(parts)
    return None


def ehr_patient(resource: Mapping[str, Any], system: str) -> dict[str, Any]:
    """The parts of the EHR's Patient the clinic uses, kept with the launch."""
    identifiers = [
        i for i in resource.get("identifier") or [] if isinstance(i, Mapping) and i.get("value")
    ]
    chosen = next((i for i in identifiers if i.get("system") == system), None)
    return {
        "id": resource.get("id"),
        "identifier": str(chosen["value"]) if chosen else None,
        "system": system,
        "systems": sorted({str(i.get("system")) for i in identifiers}),
        "name": _name(resource),
        "sex": resource.get("gender"),
        "birth_date": resource.get("birthDate"),
    }


MatchKind = Literal["linked", "record_number", "new"]


@dataclass(frozen=True)
class Match:
    """How the EHR patient meets a clinic patient: by a link made before, by record number
    (the identifier's value), or as a new clinic patient registered when the visit is saved."""

    kind: MatchKind
    system: str
    value: str
    patient: Patient | None
    new: store.PatientIn | None


def _refused(status: int, field: str, value: Any, expected: str, message: str) -> SmartError:
    return SmartError(status, field, value, expected, message)


def _demographics(ehr: Mapping[str, Any]) -> tuple[str, date]:
    sex, born = ehr.get("sex"), ehr.get("birth_date")
    if sex not in ("male", "female"):
        raise _refused(
            422,
            "Patient.gender",
            sex,
            "male or female",
            f"the EHR Patient's gender is {sex!r}; the definitions need male or female",
        )
    try:
        birth = date.fromisoformat(str(born))
    except ValueError:
        raise _refused(
            422,
            "Patient.birthDate",
            born,
            "a full date (YYYY-MM-DD)",
            f"the EHR Patient's birthDate is {born!r}; a full date is needed for the age",
        ) from None
    return str(sex), birth


def _agrees(patient: Patient, sex: str, birth: date, how: str) -> None:
    for field, clinic, ehr in (
        ("sex", patient.sex, sex),
        ("date_of_birth", patient.date_of_birth.isoformat(), birth.isoformat()),
    ):
        if clinic != ehr:
            raise _refused(
                409,
                field,
                ehr,
                clinic,
                f"clinic patient {patient.record_number} ({how}) has {field} {clinic}, the EHR "
                f"Patient {ehr}; correct the wrong record before starting a visit from the EHR",
            )


def match_patient(db: Session, ehr: Mapping[str, Any]) -> Match:
    """The clinic patient of the EHR's Patient, matched by identifier (system and value)."""
    system, value = str(ehr["system"]), ehr.get("identifier")
    if not value:
        raise _refused(
            422,
            "Patient.identifier",
            ", ".join(ehr.get("systems") or []) or None,
            f"an identifier with system {system}",
            f"the EHR Patient has no identifier with system {system}; the clinic matches and "
            "registers patients by it",
        )
    sex, birth = _demographics(ehr)
    link = db.scalar(
        select(PatientIdentifier).where(
            PatientIdentifier.system == system, PatientIdentifier.value == value
        )
    )
    if link is not None:
        patient = db.get(Patient, link.patient_id)
        assert patient is not None
        _agrees(patient, sex, birth, f"linked to {system}|{value}")
        return Match("linked", system, value, patient, None)
    patient = db.scalar(select(Patient).where(Patient.record_key == identity_key(value)))
    if patient is not None:
        other = db.scalar(
            select(PatientIdentifier).where(
                PatientIdentifier.patient_id == patient.id, PatientIdentifier.system == system
            )
        )
        if other is not None:
            raise _refused(
                409,
                "Patient.identifier",
                value,
                f"{system}|{other.value}",
                f"clinic patient {patient.record_number} is linked to {system}|{other.value}, "
                f"not {value}",
            )
        _agrees(patient, sex, birth, "same record number")
        return Match("record_number", system, value, patient, None)
    name = ehr.get("name")
    if not name:
        raise _refused(
            422, "Patient.name", None, "a name", "the EHR Patient has no name to register"
        )
    return Match("new", system, value, None, store.PatientIn(value, str(name), sex, birth))


def register(db: Session, user: User, match: Match) -> Patient:
    """The clinic patient of a match: registered if new, linked to the identifier if not yet."""
    patient = match.patient
    if patient is None:
        assert match.new is not None
        patient = store.create_patient(db, user, match.new)
    if match.kind != "linked":
        db.add(
            PatientIdentifier(
                patient_id=patient.id,
                system=match.system,
                value=match.value,
                linked_at=now(),
                linked_by=user.id,
            )
        )
        db.flush()
        audit.record(db, user, "patient.link", "patient", patient.id, detail="EHR identifier")
    return patient


# -- write-back -------------------------------------------------------------------------------


def _clinic_id(db: Session) -> str:
    found = db.scalar(select(Setting.value).where(Setting.key == CLINIC_ID_KEY))
    return str(found)


def visit_key(db: Session, visit: Visit) -> str:
    """The key of a visit's resources in the EHR: unique across clinics, the same every time."""
    return f"{_clinic_id(db)}/visit/{visit.id}"


def _token(db: Session, launch: SmartLaunch) -> SmartLaunch | None:
    """The launch whose live token writes this launch's visit: its own, or else the newest
    later launch by the same clinician for the same EHR patient (a visit corrected after its
    token expired is written once the clinician launches the clinic from the EHR again)."""
    if token_live(launch):
        return launch
    later = db.scalars(
        select(SmartLaunch)
        .where(
            SmartLaunch.user_id == launch.user_id,
            SmartLaunch.iss == launch.iss,
            SmartLaunch.fhir_patient == launch.fhir_patient,
            SmartLaunch.id > launch.id,
            SmartLaunch.access_token.is_not(None),
        )
        .order_by(SmartLaunch.id.desc())
    )
    return next((row for row in later if token_live(row)), None)


def write_back(db: Session, settings: Settings, user: User, launch: SmartLaunch) -> bool:
    """Write the launch's visit to the EHR as Observations in a DiagnosticReport (conditional
    create: writing again adds nothing; after a correction, conditional update: what was
    written is replaced, and what the corrected result no longer has is withdrawn as
    entered-in-error); the outcome is stored with the launch and audited.

    The visit is committed before this runs: a failure here never loses it.
    """
    from sarcokit.fhir.client import FhirClient, FhirClientError
    from sarcokit.fhir.outbound import result_resources, transaction, withdrawn, written_keys
    from sarcokit.fhir.smart import smart_settings
    from sarcokit.web.assessment import assess_visit

    visit = db.get(Visit, launch.visit_id)
    assert visit is not None
    context = dict(launch.context or {})
    corrected = bool(context.get("corrected"))
    needed = ("c", "u") if corrected else ("c",)
    problem = None
    statuses: list[str] = []
    withdrawing: list[dict[str, Any]] = []
    holder = _token(db, launch)
    if holder is None:
        problem = "the EHR's access token has expired; launch the clinic from the EHR again"
    elif not all(
        granted(holder.scope, "", kind, p)
        for kind in ("Observation", "DiagnosticReport")
        for p in needed
    ):
        wanted = " ".join(smart_settings()["scopes_v2"])
        what = "creating and updating" if corrected else "creating"
        problem = f"the EHR did not grant {what} Observations and DiagnosticReports ({wanted})"
    if holder is not None and problem is None:
        result = assess_visit(
            visit.patient, visit.visit_date, visit.measurements, visit.definitions, "en"
        )
        subject = f"Patient/{launch.fhir_patient}"
        sources: Sequence[str] = context.get("derived_from", [])
        resources = result_resources(
            result,
            subject,
            visit.visit_date.isoformat(),
            visit_key(db, visit),
            sources,
            corrected=corrected,
        )
        if corrected:
            withdrawing = withdrawn(context.get("written", []), resources, subject)
        assert holder.access_token is not None
        client = FhirClient(launch.iss, unseal(settings, holder.access_token))
        try:
            answer = client.transaction(transaction([*resources, *withdrawing], corrected))
            statuses = [
                str((e.get("response") or {}).get("status", ""))[:3]
                for e in answer.get("entry") or []
            ]
            expected = len(resources) + len(withdrawing)
            if len(statuses) != expected or not all(s.startswith("2") for s in statuses):
                problem = f"the EHR answered the transaction with statuses {statuses}"
        except FhirClientError as error:
            problem = f"the EHR's FHIR server refused or did not answer: {error}"
        if problem is None:
            context["written"] = written_keys(resources)
    launch.write_back_at = now()
    if problem is None:
        created = statuses.count("201")
        if corrected:
            kept = statuses[: len(statuses) - len(withdrawing)]
            launch.write_back_detail = (
                f"corrected visit: {kept.count('200')} resources replaced, "
                f"{kept.count('201')} created, {len(withdrawing)} withdrawn (entered-in-error)"
            )
        else:
            launch.write_back_detail = (
                f"{len(statuses)} resources: {created} created, "
                f"{len(statuses) - created} already there"
            )
        launch.write_back = "written"
        # A new dict: the JSON column is stored again only when it is replaced.
        launch.context = context
        # The (encrypted) token is kept until it expires: a correction of the visit within its
        # life is written with it. Nothing else is written with it.
        audit.record(db, user, "smart.write_back", "visit", visit.id, launch.write_back_detail)
        return True
    launch.write_back = "failed"
    launch.write_back_detail = problem or ""
    audit.record(db, user, "smart.write_back_failed", "visit", visit.id, (problem or "")[:500])
    return False


def correction_written(
    db: Session, settings: Settings, user: User, visit: Visit, before: Mapping[str, Any]
) -> None:
    """After a visit saved from a SMART launch is corrected (and committed), replace what was
    written to the EHR for it. An EHR observation stays a source (derivedFrom) only for the
    fields whose values the correction left as they were (`before`: the measurements before)."""
    launch = launch_of_visit(db, visit)
    if launch is None or not launch.write_back:
        return
    context = dict(launch.context or {})
    after = visit.measurements or {}
    unchanged = {
        f for f in context.get("sources", {}) if f in before and before.get(f) == after.get(f)
    }
    context["derived_from"] = sorted(
        {
            ref
            for f in unchanged
            for s in context.get("sources", {})[f]
            if (ref := str(s["resource"]).split("#")[0]).startswith("Observation/")
            and ref in context.get("derived_from", [])
        }
    )
    context["corrected"] = True
    launch.context = context
    launch.write_back = "pending"
    db.commit()
    write_back(db, settings, user, launch)


def token_expiry(expires_in: int | None, default_minutes: int) -> datetime:
    """When an access token stops working, by the token response or the configured default."""
    seconds = expires_in if expires_in is not None else default_minutes * 60
    return now() + timedelta(seconds=seconds)


def measurements_unchanged(
    posted: Mapping[str, str], prefilled: Mapping[str, str], sources: Mapping[str, Any]
) -> list[str]:
    """The observations behind the pre-filled values the clinician kept as they were: the
    write-back's `derivedFrom` (a value changed in the clinic no longer comes from the EHR)."""
    kept: set[str] = set()
    for field, found in sources.items():
        # A field with one unit has no unit input on the form: its unit is not compared.
        inputs = {
            k
            for k in (*prefilled, *posted)
            if (k == field or k.startswith(f"{field}__"))
            and (k in posted or not k.endswith("__unit"))
        }
        if all(posted.get(k, "").strip() == prefilled.get(k, "").strip() for k in inputs):
            kept.update(s["resource"].split("#")[0] for s in found)
    return sorted(r for r in kept if r.startswith("Observation/"))
