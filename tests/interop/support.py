"""Small builders of FHIR test resources (hand-written, independent of sarcokit.fhir)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sarcokit.fields import input_columns

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PROJECT = "http://sarcokit.org/fhir/CodeSystem/sarcokit"
SARC_F = "http://sarcokit.org/fhir/Questionnaire/sarc-f"


def observation(
    oid: str,
    code: str,
    value: float,
    unit: str,
    when: str = "2026-11-01",
    system: str = LOINC,
    **extra: Any,
) -> dict[str, Any]:
    """A final Observation of Patient/p1 with a UCUM quantity."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "system": UCUM, "code": unit},
    }
    resource.update(extra)
    return resource


def patient(gender: str = "male", birth: str = "1950-03-02") -> dict[str, Any]:
    """Patient/p1."""
    return {"resourceType": "Patient", "id": "p1", "gender": gender, "birthDate": birth}


def sarc_f(rid: str, scores: dict[str, int], authored: str = "2026-11-01") -> dict[str, Any]:
    """A completed SARC-F response of Patient/p1, answers coded by score."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "questionnaire": SARC_F,
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": authored,
        "item": [
            {"linkId": k, "answer": [{"valueCoding": {"code": str(v)}}]} for k, v in scores.items()
        ],
    }


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    """A collection Bundle."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def assert_bulk_row_is_bundle_record(row: dict[str, Any], record: dict[str, Any], pid: str) -> None:
    """A bulk reader's row equals the Bundle reader's record for that patient.

    The Bundle record keeps each value under the input name it came in (grip_lb); the bulk row
    has it in the field's canonical unit, so the record is converted before comparing.
    """
    expected = {}
    for name, value in record.items():
        spec, alt = input_columns()[name]
        alternative = spec.alternative(alt)
        expected[spec.name] = value if alternative is None else alternative.to_canonical(value)
    got = {k: v for k, v in row.items() if v is not None}
    assert set(got) == set(expected), pid
    for name, value in expected.items():
        if isinstance(value, float):
            assert math.isclose(got[name], value, rel_tol=1e-12), (pid, name)
        else:
            assert got[name] == value, (pid, name)


def small_blocks(monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    """Make the bulk reader parse the export's files in pieces of about `block_bytes` (one or
    two resources at 600), and write its narrow rows out once that many bytes are held (after
    each piece at 600), so that its streamed paths are exercised on a small export."""
    from sarcokit.fhir import bulk

    real_blocks = bulk.ndjson_blocks
    monkeypatch.setattr(
        bulk, "ndjson_blocks", lambda p, kind: real_blocks(p, kind, block_bytes=block_bytes)
    )
    monkeypatch.setattr(bulk, "SPILL_BYTES", block_bytes)
