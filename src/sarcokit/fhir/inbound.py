"""A FHIR R4 Bundle (Patient, Observations, a SARC-F QuestionnaireResponse) → a subject record.

Per field the newest observation within the field's look-back window is used (the best or
fastest trial on that day where the mapping says so); every observation used is listed with its
id and date, and every one left out says why.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sarcokit.fhir.mapping import FhirMapping, InputMap, fhir_mapping
from sarcokit.fhir.shape import SCHEMAS, resource_problem
from sarcokit.fields import InputError, Problem, field_specs
from sarcokit.screening import sarc_f_items

Reason = Literal[
    "unknown_code",
    "unit",
    "too_old",
    "entered_in_error",
    "status",
    "no_value",
    "no_date",
    "future",
    "superseded",
    "other_patient",
    "duplicate",
    "malformed",
]

# Statuses whose value may be used (FHIR R4 observation-status).
USABLE_STATUS = frozenset({"final", "amended", "corrected"})
QR_USABLE_STATUS = frozenset({"completed", "amended"})
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class Used:
    """An observation whose value went into the record."""

    field: str
    resource: str
    code: str
    date: str
    value: Any
    unit: str | None


@dataclass(frozen=True)
class Ignored:
    """An observation (or part of the Patient) left out, and why."""

    resource: str
    code: str | None
    reason: Reason
    detail: str


@dataclass
class FhirRecord:
    """The subject record read from FHIR, with where each value came from."""

    record: dict[str, Any]
    as_of: date
    patient: str | None
    used: list[Used] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the record, the assessment date, the observations used and ignored."""
        return {
            "record": dict(self.record),
            "as_of": self.as_of.isoformat(),
            "patient": self.patient,
            "used": [asdict(u) for u in self.used],
            "ignored": [asdict(i) for i in self.ignored],
        }


@dataclass(frozen=True)
class _Candidate:
    item: InputMap
    value: float  # canonical, to compare trials
    column: str  # where the value goes as given: the field or its alternative for the unit
    given: float | int
    when: datetime
    day: date
    used: Used


def _bad(name: str, value: Any, expected: str) -> InputError:
    shown = value if isinstance(value, str | int | float | bool | None) else type(value).__name__
    message = f"{name} = {shown!r}; expected {expected}"
    return InputError([Problem(name, shown, expected, message)])


def parse_when(text: Any) -> datetime | None:
    """A FHIR date or dateTime to an aware datetime (UTC when no offset); partial dates → None."""
    if not isinstance(text, str) or not _DATE.match(text):
        return None
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def _effective(resource: Mapping[str, Any]) -> tuple[datetime | None, str | None]:
    period = resource.get("effectivePeriod")
    for text in (
        resource.get("effectiveDateTime"),
        resource.get("effectiveInstant"),
        period.get("end") if isinstance(period, Mapping) else None,
        period.get("start") if isinstance(period, Mapping) else None,
        resource.get("issued"),
    ):
        if text is not None:
            return parse_when(text), str(text)
    return None, None


def _label(resource: Mapping[str, Any], mapping: FhirMapping) -> str | None:
    """The code shown for an observation refused whole: the one the mapping knows, else the
    first (as the bulk reader shows it)."""
    codes = _codings(resource.get("code"))
    known = (code for system, code in codes if (system, code) in mapping.by_code)
    return next(known, codes[0][1] if codes else None)


def _codings(concept: Any) -> list[tuple[str, str]]:
    if not isinstance(concept, Mapping):
        return []
    out = []
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and "system" in coding and "code" in coding:
            out.append((str(coding["system"]), str(coding["code"])))
    return out


def _value(
    element: Mapping[str, Any], item: InputMap, ucum: str
) -> tuple[float, str] | tuple[None, str]:
    """(value, UCUM unit), or (None, why) when the value or its unit cannot be used."""
    if "valueInteger" in element:
        if "1" not in item.units and "{score}" not in item.units:
            return None, f"{item.field} needs a quantity with a UCUM unit, got an integer"
        given = element["valueInteger"]
        if isinstance(given, bool) or not isinstance(given, int):
            return None, f"valueInteger {json.dumps(given)} is not a whole number"
        unit = "1" if "1" in item.units else "{score}"
        return float(given), unit
    quantity = element.get("valueQuantity")
    value = quantity.get("value") if isinstance(quantity, Mapping) else None
    # JSON has no NaN or Infinity (Python's reader lets them through) and true is not 1.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return (
            None,
            "no numeric value" if value is None else f"value {json.dumps(value)} is not a number",
        )
    assert isinstance(quantity, Mapping)
    if quantity.get("comparator"):
        return None, f"value has comparator {quantity['comparator']}; only exact values are used"
    system, code = quantity.get("system"), quantity.get("code")
    if code is None or (system is not None and system != ucum):
        unit = quantity.get("unit", code)
        return None, (
            f"{item.field}: unit {unit!r} is not a UCUM code; accepted: {', '.join(item.units)}"
        )
    if code not in item.units:
        return (
            None,
            f"{item.field}: unit {code!r} is not accepted; accepted: {', '.join(item.units)}",
        )
    return float(quantity["value"]), str(code)


# A resource id as FHIR R4's id datatype allows it.
FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"
# A version-specific reference (Patient/p1/_history/2) names the same patient.
_VERSION = re.compile(rf"/_history/{FHIR_ID}$")


# Why a resource that names no patient is not used (the bulk reader gives the same words).
NO_SUBJECT = "no subject: which patient it is about cannot be told"


def _other_patient(resource: Mapping[str, Any], refs: frozenset[str]) -> str | None:
    """Why the resource is not about the Bundle's Patient, or None when it is.

    A resource without a subject reference is not taken to be the Patient's: in a Bundle of
    several resources that would be a guess, and the bulk reader cannot make it either.
    """
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    if reference is None:
        return NO_SUBJECT
    if _VERSION.sub("", str(reference)) in refs:
        return None
    return f"subject {reference} is not the Bundle's Patient"


def _age(birth: Any, as_of: date) -> int | None:
    if not isinstance(birth, str) or len(birth) != 10:
        return None
    try:
        born = date.fromisoformat(birth)
    except ValueError:
        return None
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def _entries(bundle: Any) -> tuple[list[Mapping[str, Any]], list[Ignored]]:
    """The Bundle's resources (each with its entry's fullUrl), and its entries that hold none."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise _bad("resourceType", getattr(bundle, "get", lambda _: None)("resourceType"), "Bundle")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise _bad("Bundle.entry", entries, "an array of entries")
    resources: list[Mapping[str, Any]] = []
    refused: list[Ignored] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        url = entry.get("fullUrl") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and isinstance(url, str | None):
            resources.append({**resource, "_fullUrl": url, "_entry": index})
            continue
        what = "entry.fullUrl is not a string" if resource else "entry holds no resource object"
        refused.append(Ignored(f"Bundle.entry[{index}]", None, "malformed", what))
    return resources, refused


def read_bundle(bundle: Any, as_of: date | None = None) -> FhirRecord:
    """Read a FHIR R4 Bundle for one patient into a subject record with its sources."""
    resources, refused = _entries(bundle)
    out = read_resources(resources, as_of)
    out.ignored[:0] = refused
    return out


def _well_formed(resources: Sequence[Any], out_ignored: list[Ignored]) -> list[Mapping[str, Any]]:
    """The resources whose elements sarcokit can read (the JSON types `shape.SCHEMAS` gives);
    each other one is listed as malformed with what is wrong, as the bulk reader lists a line."""
    kept = []
    for index, resource in enumerate(resources):
        elements = resource if isinstance(resource, Mapping) else {}
        kind = elements.get("resourceType")
        if isinstance(kind, str) and kind not in SCHEMAS:
            kept.append(resource)  # a type sarcokit does not read (Condition, ...)
            continue
        problem = resource_problem(resource, kind)
        if problem is None:
            kept.append(resource)
            continue
        rid, entry = elements.get("id"), elements.get("_entry")
        where = f"Bundle.entry[{entry}]" if entry is not None else f"resource [{index}]"
        name = f"{kind}/{rid}" if isinstance(rid, str) and isinstance(kind, str) else where
        if kind == "Patient":
            raise InputError([Problem("Patient", name, "a Patient sarcokit can read", problem)])
        out_ignored.append(Ignored(name, None, "malformed", problem))
    return kept


def read_resources(resources: Sequence[Mapping[str, Any]], as_of: date | None = None) -> FhirRecord:
    """Read one patient's Patient, Observations and QuestionnaireResponses into a record."""
    day = as_of or datetime.now(UTC).date()
    mapping = fhir_mapping()
    malformed: list[Ignored] = []
    resources = _well_formed(resources, malformed)
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise _bad("Patient", len(patients), "exactly one Patient resource in the Bundle")
    patient = patients[0]
    pid = str(patient.get("id")) if patient.get("id") is not None else None
    refs = {f"Patient/{pid}"} if pid else set()
    if patient.get("_fullUrl"):
        refs.add(str(patient["_fullUrl"]))
    out = FhirRecord(record={}, as_of=day, patient=pid)
    out.ignored += malformed
    if pid is not None:
        out.record["id"] = pid
    _read_patient(patient, out)
    candidates: list[_Candidate] = []
    responses: list[tuple[datetime, Mapping[str, Any], str, str]] = []
    copies = Counter(
        (r.get("resourceType"), r.get("id")) for r in resources if r.get("id") is not None
    )
    for resource in resources:
        kind = resource.get("resourceType")
        n = copies[(kind, resource.get("id"))]
        if n > 1 and kind in ("Observation", "QuestionnaireResponse"):
            # Which copy of one resource is right cannot be told: none is used.
            name = f"{kind}/{resource.get('id')}"
            label = "sarc-f" if kind == "QuestionnaireResponse" else _label(resource, mapping)
            detail = f"{name} is in the Bundle {n} times; none is used"
            out.ignored.append(Ignored(name, label, "duplicate", detail))
            continue
        if kind == "Observation":
            candidates.extend(_observation(resource, mapping, frozenset(refs), out))
        elif kind == "QuestionnaireResponse":
            found = _response(resource, mapping, frozenset(refs), out)
            if found is not None:
                responses.append(found)
    _choose(candidates, out)
    _choose_response(responses, out)
    return out


def _read_patient(patient: Mapping[str, Any], out: FhirRecord) -> None:
    name = f"Patient/{patient.get('id')}"
    gender = patient.get("gender")
    if gender in ("male", "female"):
        out.record["sex"] = gender
    else:
        out.ignored.append(
            Ignored(name, "gender", "no_value", f"gender {gender!r} is not male or female")
        )
    age = _age(patient.get("birthDate"), out.as_of)
    if age is None:
        out.ignored.append(
            Ignored(
                name,
                "birthDate",
                "no_date",
                f"birthDate {patient.get('birthDate')!r} is not a full date (YYYY-MM-DD)",
            )
        )
    else:
        out.record["age"] = age
        out.used.append(Used("age", name, "birthDate", str(patient["birthDate"]), age, "a"))


def _in_window(text: str | None, days: int, as_of: date) -> tuple[Reason, str] | None:
    """Why a dated element is outside the field's window, or None. The day is the one written
    (the patient's local date), as a clinician reads it."""
    if parse_when(text) is None:
        return "no_date", f"no full effective date ({text!r})"
    assert text is not None
    day = date.fromisoformat(text[:10])
    if day > as_of:
        return "future", f"dated {text}, after the assessment date"
    if day < as_of - timedelta(days=days):
        return "too_old", f"dated {text}, older than the {days}-day look-back window"
    return None


def _observation(
    resource: Mapping[str, Any],
    mapping: FhirMapping,
    refs: frozenset[str],
    out: FhirRecord,
) -> list[_Candidate]:
    name = f"Observation/{resource.get('id')}"
    label = _label(resource, mapping)
    status = resource.get("status")
    if status == "entered-in-error":
        out.ignored.append(Ignored(name, label, "entered_in_error", "status entered-in-error"))
        return []
    if status not in USABLE_STATUS:
        out.ignored.append(Ignored(name, label, "status", f"status {status!r} is not final"))
        return []
    if (other := _other_patient(resource, refs)) is not None:
        out.ignored.append(Ignored(name, label, "other_patient", other))
        return []
    when, text = _effective(resource)
    parts: list[tuple[str, Mapping[str, Any]]] = [(name, resource)]
    components = resource.get("component") or []
    # A null component is an element with nothing in it (uncoded), as the bulk reader reads it.
    parts += [(f"{name}#component[{i}]", c or {}) for i, c in enumerate(components)]
    found: list[_Candidate] = []
    for part_name, element in parts:
        part_codes = _codings(element.get("code"))
        item = next((mapping.by_code[c] for c in part_codes if c in mapping.by_code), None)
        code = next((c for s, c in part_codes if (s, c) in mapping.by_code), None)
        shown = code or (part_codes[0][1] if part_codes else None)
        if item is None:
            # A panel whose own code is unknown is read through its components.
            if part_name == name and components:
                continue
            detail = "no mapping for " + (
                ", ".join(f"{s}|{c}" for s, c in part_codes) or "an uncoded observation"
            )
            out.ignored.append(Ignored(part_name, shown, "unknown_code", detail))
            continue
        late = _in_window(text, item.lookback_days, out.as_of)
        if late is not None:
            out.ignored.append(Ignored(part_name, shown, late[0], late[1]))
            continue
        if element.get("dataAbsentReason") is not None:
            out.ignored.append(Ignored(part_name, shown, "no_value", "dataAbsentReason given"))
            continue
        value, unit = _value(element, item, mapping.ucum)
        if value is None:
            reason: Reason = "unit" if "unit" in unit else "no_value"
            out.ignored.append(Ignored(part_name, shown, reason, unit))
            continue
        assert when is not None and text is not None
        given: float | int = value
        if field_specs()[item.field].kind == "integer":
            if not value.is_integer():
                # Refused here, as the bulk reader does, rather than passed on for the record's
                # validation to reject the whole record.
                detail = f"{item.field}: value {value} is not a whole number"
                out.ignored.append(Ignored(part_name, shown, "no_value", detail))
                continue
            given = int(value)
        used = Used(item.field, part_name, str(code), text, given, unit)
        found.append(
            _Candidate(
                item,
                item.to_canonical(value, unit),
                item.units[unit],
                given,
                when,
                date.fromisoformat(text[:10]),
                used,
            )
        )
    return found


def _choose(candidates: Iterable[_Candidate], out: FhirRecord) -> None:
    by_field: dict[str, list[_Candidate]] = {}
    for candidate in candidates:
        by_field.setdefault(candidate.item.field, []).append(candidate)
    for group in by_field.values():
        yields = {c.item.yields_to for c in group if c.item.yields_to}
        if any(y in by_field for y in yields):
            for c in group:
                detail = f"{c.item.yields_to} was observed and is used instead"
                out.ignored.append(Ignored(c.used.resource, c.used.code, "superseded", detail))
            continue
        newest_day = max(c.day for c in group)
        today = [c for c in group if c.day == newest_day]
        combine = today[0].item.combine
        if combine == "max":
            chosen = max(today, key=lambda c: c.value)
        elif combine == "min":
            chosen = min(today, key=lambda c: c.value)
        else:
            chosen = max(today, key=lambda c: c.when)
        # The value as given, in its unit's column: fields.toml converts it and checks its range.
        out.record[chosen.column] = chosen.given
        out.record.update(chosen.item.implies)
        out.used.append(chosen.used)
        for c in group:
            if c is chosen:
                continue
            if c.day == newest_day and combine != "latest":
                detail = f"a {'better' if combine == 'max' else 'faster'} trial that day is used"
            else:
                detail = f"a later observation ({chosen.used.resource}) is used"
            out.ignored.append(Ignored(c.used.resource, c.used.code, "superseded", detail))


def _response(
    resource: Mapping[str, Any],
    mapping: FhirMapping,
    refs: frozenset[str],
    out: FhirRecord,
) -> tuple[datetime, Mapping[str, Any], str, str] | None:
    name = f"QuestionnaireResponse/{resource.get('id')}"
    questionnaire = str(resource.get("questionnaire") or "").split("|")[0]
    if questionnaire != mapping.questionnaire_url:
        detail = f"questionnaire {questionnaire or None!r} is not {mapping.questionnaire_url}"
        out.ignored.append(Ignored(name, questionnaire or None, "unknown_code", detail))
        return None
    status = resource.get("status")
    if status == "entered-in-error":
        out.ignored.append(Ignored(name, "sarc-f", "entered_in_error", "status entered-in-error"))
        return None
    if status not in QR_USABLE_STATUS:
        out.ignored.append(Ignored(name, "sarc-f", "status", f"status {status!r} is not completed"))
        return None
    if (other := _other_patient(resource, refs)) is not None:
        out.ignored.append(Ignored(name, "sarc-f", "other_patient", other))
        return None
    text = resource.get("authored")
    when = parse_when(text)
    late = _in_window(text, mapping.sarc_f_lookback_days, out.as_of)
    if late is not None:
        out.ignored.append(Ignored(name, "sarc-f", late[0], late[1]))
        return None
    assert when is not None
    return when, resource, name, str(text)


def sarc_f_answers(resource: Mapping[str, Any]) -> dict[str, int | None]:
    """The item scores of a SARC-F QuestionnaireResponse, by subject-record field."""
    answers: dict[str, int | None] = {}
    items = sarc_f_items()
    for item in resource.get("item") or []:
        link = item.get("linkId") if isinstance(item, Mapping) else None
        if link not in items:
            continue
        answer = (item.get("answer") or [{}])[0]
        if not isinstance(answer, Mapping):  # a null answer: none given
            answer = {}
        score: Any = answer.get("valueInteger")
        coding = answer.get("valueCoding")
        if score is None and isinstance(coding, Mapping):
            score = coding.get("code")
        try:
            answers[str(link)] = int(score) if score is not None else None
        except (TypeError, ValueError):
            answers[str(link)] = None
    return answers


def _choose_response(
    responses: list[tuple[datetime, Mapping[str, Any], str, str]], out: FhirRecord
) -> None:
    if not responses:
        return
    # The newest; among equally new, the first in the Bundle (as for observations).
    newest = max(range(len(responses)), key=lambda i: (responses[i][0], -i))
    _, chosen, name, text = responses.pop(newest)
    for _, _, other, _ in responses:
        detail = f"a later SARC-F ({name}) is used"
        out.ignored.append(Ignored(other, "sarc-f", "superseded", detail))
    for link, score in sarc_f_answers(chosen).items():
        if score is None:
            out.ignored.append(
                Ignored(f"{name}#{link}", link, "no_value", "answer is not a score 0-2")
            )
            continue
        out.record[link] = score
        out.used.append(Used(link, name, link, text, score, None))
