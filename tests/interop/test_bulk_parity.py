"""The bulk reader and the Bundle reader, given the same generated resources of one patient, give
the same record and list the same resources left out, with the same reasons and words.

The resources are drawn to be hostile in the ways exports are: statuses, dates partial or out of
the window, units accepted or not, values missing, with comparators or fractions, codings several
or none, panels, references absolute, versioned, to another patient or to none, ids repeated.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interop.support import (
    LOINC,
    PROJECT,
    UCUM,
    assert_bulk_row_is_bundle_record,
    bundle,
    patient,
    sarc_f,
    small_blocks,
)
from sarcokit.fhir.bulk import read_bulk
from sarcokit.fhir.inbound import read_bundle

AS_OF = date(2026, 12, 1)
BASE = "https://ehr.example.org/fhir"

# Deterministic: a failure found once is found on every run (a flaky test is a defect).
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# (system, code, units the mapping accepts for it): what the generated observations measure.
MEASURES = [
    (LOINC, "83174-3", ["kgf", "kg", "[lbf_av]"]),
    (LOINC, "83173-5", ["kgf", "kg", "[lbf_av]"]),
    (LOINC, "83172-7", ["m/s"]),
    (LOINC, "83169-3", ["s"]),
    (LOINC, "8302-2", ["m", "cm", "[in_i]"]),
    (LOINC, "29463-7", ["kg", "[lb_av]"]),
    (PROJECT, "sppb-total", ["{score}", "1"]),
    (PROJECT, "calf-circumference", ["cm", "[in_i]"]),
]
UNKNOWN = (LOINC, "1234-5", ["1"])
STATUSES = ["final"] * 6 + ["amended", "preliminary", "entered-in-error"]

DAYS = st.sampled_from(
    [
        "2026-11-30",
        "2026-11-01",
        "2026-11-01T08:30:00+01:00",
        "2026-11-01T09:00:00Z",
        "2026-06-01",  # older than the 90- or 180-day windows of some fields
        "2024-01-01",  # older than every window
        "2027-01-01",  # after the assessment date
        "2026",  # not a full date
    ]
)
SUBJECTS = st.sampled_from(
    [
        "Patient/p1",
        "Patient/p1",
        "Patient/p1",
        BASE + "/Patient/p1",
        "Patient/p1/_history/2",
        "Patient/p9",
    ]
)


@st.composite
def _subject(draw: st.DrawFn) -> dict[str, Any]:
    """A subject element, now and then one that names no patient (absent, or a display only):
    neither reader takes such a resource to be the patient's."""
    shape = draw(st.sampled_from(["reference"] * 8 + ["absent", "display"]))
    if shape == "absent":
        return {}
    if shape == "display":
        return {"subject": {"display": "J. Smith"}}
    return {"subject": {"reference": draw(SUBJECTS)}}


@st.composite
def _value(draw: st.DrawFn, units: list[str]) -> dict[str, Any]:
    """The value elements of an observation (or component)."""
    kind = draw(st.sampled_from(["quantity"] * 6 + ["integer", "absent", "none"]))
    if kind == "integer":
        return {"valueInteger": draw(st.integers(0, 200))}
    if kind == "absent":
        return {"dataAbsentReason": {"text": "not asked"}}
    if kind == "none":
        return {}
    number = draw(
        st.one_of(
            st.integers(0, 200).map(float),
            st.floats(0.5, 200, allow_nan=False).map(lambda x: round(x, 2)),
        )
    )
    quantity: dict[str, Any] = {"value": number}
    unit = draw(st.sampled_from([*units, *units, "lbs", None]))
    system = draw(st.sampled_from([UCUM, UCUM, UCUM, "http://other.org/units", None]))
    if unit is not None:
        quantity["code"] = unit
    if system is not None:
        quantity["system"] = system
    if draw(st.booleans()):
        quantity["unit"] = draw(st.sampled_from(["kilogram", "cm", "lb"]))
    if draw(st.integers(0, 9)) == 0:
        quantity["comparator"] = "<"
    return {"valueQuantity": quantity}


@st.composite
def _observation(draw: st.DrawFn, oid: str) -> dict[str, Any]:
    system, code, units = draw(st.sampled_from([*MEASURES, UNKNOWN]))
    codings = [{"system": system, "code": code}]
    shape = draw(st.sampled_from(["one"] * 5 + ["two", "known_two", "none", "panel"]))
    if shape == "two":
        codings.insert(0, {"system": "http://local.org/codes", "code": "x1"})
    if shape == "known_two":  # two codes the mapping knows: the first decides
        other_system, other_code, _ = draw(st.sampled_from(MEASURES))
        codings.append({"system": other_system, "code": other_code})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": draw(st.sampled_from(STATUSES)),
        "code": {"coding": [] if shape == "none" else codings},
        **draw(_subject()),
    }  # fmt: skip
    when = draw(DAYS)
    resource[draw(st.sampled_from(["effectiveDateTime"] * 4 + ["issued"]))] = when
    if shape == "panel":
        resource["code"] = {"coding": [{"system": LOINC, "code": "9999-0"}]}
        parts = draw(st.lists(st.sampled_from([*MEASURES, UNKNOWN]), min_size=1, max_size=3))
        resource["component"] = [
            {"code": {"coding": [{"system": s, "code": c}]}, **draw(_value(u))} for s, c, u in parts
        ]
    else:
        resource.update(draw(_value(units)))
    return resource


@st.composite
def _response(draw: st.DrawFn, rid: str) -> dict[str, Any]:
    scores = {"sarc_f_strength": draw(st.integers(0, 2)), "sarc_f_falls": draw(st.integers(0, 2))}
    resource = sarc_f(rid, scores, authored=draw(DAYS))
    statuses = ["completed"] * 4 + ["in-progress", "entered-in-error"]
    resource["status"] = draw(st.sampled_from(statuses))
    del resource["subject"]
    resource.update(draw(_subject()))
    which = draw(st.integers(0, 9))
    if which == 0:
        resource["questionnaire"] = "http://other.org/Questionnaire/phq-9"
    elif which == 1:
        del resource["questionnaire"]
    return resource


@st.composite
def _resources(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 12))
    # A small pool of ids, so that an id is sometimes repeated.
    ids = [draw(st.sampled_from([f"o{i}" for i in range(15)])) for _ in range(count)]
    observations = [draw(_observation(oid)) for oid in ids]
    responses = [draw(_response(f"q{i}")) for i in range(draw(st.integers(0, 3)))]
    return [patient(), *observations, *responses]


def _listed_by_bundle(resources: list[dict[str, Any]]) -> tuple[Any, list[tuple[Any, ...]]]:
    # A Bundle holds one patient: a resource about another is the Bundle reader's other_patient,
    # worded for a Bundle; the bulk reader words it for an export.
    # A Bundle resolves an absolute reference by the entry's fullUrl; an export, by the IG's
    # rule (rooted in the server's base URL): the Patient's entry carries that URL.
    entries = bundle(*resources)
    entries["entry"][0]["fullUrl"] = f"{BASE}/Patient/{resources[0]['id']}"
    single = read_bundle(entries, AS_OF)
    rows = []
    for i in single.ignored:
        detail = i.detail
        if i.reason == "other_patient":
            detail = detail.replace("is not the Bundle's Patient", "is not a Patient in the export")
        if i.reason == "duplicate":
            detail = detail.replace("is in the Bundle", "is in the export")
        rows.append((i.resource, i.code, i.reason, detail))
    return single, rows


@SETTINGS
@given(_resources())
def test_bulk_and_bundle_agree_on_generated_resources(resources: list[dict[str, Any]]) -> None:
    single, said = _listed_by_bundle(resources)
    with TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind in ("Patient", "Observation", "QuestionnaireResponse"):
            lines = [json.dumps(r) for r in resources if r["resourceType"] == kind]
            (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
        read = read_bulk([folder], AS_OF)
        (row,) = read.records.collect().to_dicts()
        listed = read.ignored.collect().select("resource", "code", "reason", "detail").rows()
    assert_bulk_row_is_bundle_record(row, single.record, "p1")
    assert sorted(listed, key=str) == sorted(said, key=str)


PATIENTS = ["p1", "p2", "p3"]


@st.composite
def _export(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Resources of several patients, in the export's order (not grouped by patient)."""
    resources: list[dict[str, Any]] = []
    for pid in PATIENTS:
        resources.append({**patient(), "id": pid})
        for resource in draw(_resources())[1:]:
            # The subject moved to this patient, whatever form the reference takes; the id made
            # unique to the Bundle the resource goes to (a Bundle cannot see another's ids).
            moved = resource
            if "reference" in resource.get("subject", {}):
                subject = resource["subject"]["reference"].replace("Patient/p1", f"Patient/{pid}")
                moved = {**resource, "subject": {"reference": subject}}
            resources.append({**moved, "id": f"{_owner(moved)}-{resource['id']}"})
    order = draw(st.permutations(range(len(resources))))
    return [resources[i] for i in order]


def _owner(resource: dict[str, Any]) -> str:
    """The patient a resource is about (p9, not in the export, and no one go with p1's Bundle)."""
    if resource["resourceType"] == "Patient":
        return str(resource["id"])
    reference = resource.get("subject", {}).get("reference", "")
    owner = reference.split("/_history/")[0].rsplit("/", 1)[-1]
    return owner if owner in PATIENTS else "p1"


@settings(SETTINGS, max_examples=25)
@given(_export(), st.sampled_from([400, 900, 1 << 20]), st.sampled_from([1500, 1 << 28]))
def test_an_export_of_several_patients_agrees_with_their_bundles(
    resources: list[dict[str, Any]], block_bytes: int, partition_bytes: int
) -> None:
    from sarcokit.fhir import bulk

    said: list[tuple[Any, ...]] = []
    records: dict[str, dict[str, Any]] = {}
    for pid in PATIENTS:
        mine = [r for r in resources if _owner(r) == pid]
        mine.sort(key=lambda r: r["resourceType"] != "Patient")  # the Bundle's Patient first
        single, listed_there = _listed_by_bundle(mine)
        records[pid] = single.record
        said += listed_there
    with TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        # Pieces of a few resources and several partitions: the streamed paths are exercised.
        small_blocks(patch, block_bytes)
        patch.setattr(bulk, "PARTITION_BYTES", partition_bytes)
        folder = Path(tmp)
        for kind in ("Patient", "Observation", "QuestionnaireResponse"):
            lines = [json.dumps(r) for r in resources if r["resourceType"] == kind]
            (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
        read = read_bulk([folder], AS_OF)
        rows = {r["id"]: r for r in read.records.collect().to_dicts()}
        listed = read.ignored.collect().select("resource", "code", "reason", "detail").rows()
    # In the export's order of its Patients.
    assert list(rows) == [r["id"] for r in resources if r["resourceType"] == "Patient"]
    for pid in PATIENTS:
        assert_bulk_row_is_bundle_record(rows[pid], records[pid], pid)
    assert sorted(listed, key=str) == sorted(said, key=str)


def test_a_resource_of_the_wrong_json_types_is_malformed_in_the_same_words() -> None:
    # One check (fhir/shape.py) for both readers: a Bundle names the resource, an export its line.
    good = {"system": UCUM, "code": "cm"}
    hostile = [
        {**sarc_f("q", {"sarc_f_falls": 1}), "subject": "Patient/p1"},
        {"resourceType": "Observation", "id": "v", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "8302-2"}]},
         "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
         "valueQuantity": {**good, "value": "170"}},
        {"resourceType": "Observation", "id": "c", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "9999-0"}]},
         "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
         "component": [5]},
    ]  # fmt: skip
    single = read_bundle(bundle(patient(), *hostile), AS_OF)
    said = sorted((i.reason, i.detail) for i in single.ignored)
    with TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "Patient.ndjson").write_text(json.dumps(patient()) + "\n")
        for kind in ("Observation", "QuestionnaireResponse"):
            lines = [json.dumps(r) for r in hostile if r["resourceType"] == kind]
            (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
        listed = read_bulk([folder], AS_OF).ignored.collect()
    assert (
        sorted(listed.select("reason", "detail").rows())
        == said
        == [
            ("malformed", "component[0] is 5 (a number); expected an object"),
            ("malformed", 'subject is "Patient/p1" (a string); expected an object'),
            ("malformed", 'valueQuantity.value is "170" (a string); expected a number'),
        ]
    )
