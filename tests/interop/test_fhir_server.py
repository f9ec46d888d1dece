"""Against a real FHIR R4 server: record → FHIR → server → read back → the same result; the
result written back twice creates nothing new; CDS Hooks without prefetch reads the server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from interop.server import fhir_server, post_transaction, search
from sarcokit import assess
from sarcokit.fhir.inbound import read_bundle
from sarcokit.fhir.outbound import collection, record_resources, transaction
from sarcokit.fhir.service import assess_bundle
from web.support import Clinic, sqlite_clinic, sqlite_url

__all__ = ["fhir_server", "sqlite_clinic", "sqlite_url"]

RECORD: dict[str, Any] = {
    "id": "srv1", "sex": "female", "age": 81, "height_cm": 152.0, "weight_lb": 110.0,
    "grip_kg": 14.5, "gait_speed_m_s": 0.62, "chair_stand_5x_s": 17.2, "sppb": 6,
    "asm_kg": 11.9, "asm_method": "dxa", "calf_cm": 29.5, "creatinine_umol_l": 70.0,
    "cystatin_c_mg_l": 1.3, "sarc_f_strength": 2, "sarc_f_assistance_walking": 1,
    "sarc_f_rise_from_chair": 1, "sarc_f_climb_stairs": 2, "sarc_f_falls": 1,
}  # fmt: skip


def _read_back(base: str, pid: str) -> dict[str, Any]:
    import httpx

    patient = httpx.get(f"{base}/Patient/{pid}", timeout=30).json()
    observations = search(base, f"Observation?patient={pid}")
    responses = search(base, f"QuestionnaireResponse?patient={pid}")
    return collection([patient, *observations, *responses])


def test_record_through_the_server_gives_the_same_result(fhir_server: str) -> None:
    today = datetime.now(UTC).date()
    written = record_resources(RECORD, "srv1", today)
    answer = post_transaction(fhir_server, transaction(written.resources))
    assert answer["type"] == "transaction-response"
    back = read_bundle(_read_back(fhir_server, "srv1"), today)
    assert not back.ignored, back.ignored
    before, after = assess(RECORD).to_dict(), assess(back.record).to_dict()
    for block in ("definitions", "screening", "derived", "secondary"):
        assert after[block] == before[block], block
    # The server answers code searches on the mapping's codes.
    grip = search(fhir_server, "Observation?patient=srv1&code=http://loinc.org|83174-3")
    assert len(grip) == 1


def test_writing_twice_creates_nothing_new(fhir_server: str) -> None:
    today = datetime.now(UTC).date()
    written = record_resources({**RECORD, "id": "srv2"}, "srv2", today)
    post_transaction(fhir_server, transaction(written.resources))
    post_transaction(fhir_server, transaction(written.resources))
    observations = search(fhir_server, "Observation?patient=srv2")
    assert len(observations) == len(written.resources) - 2  # minus Patient and the SARC-F response
    assessed = assess_bundle(_read_back(fhir_server, "srv2"), as_of=today)
    first = post_transaction(fhir_server, assessed.write_back())
    second = post_transaction(fhir_server, assessed.write_back())
    assert [e["response"]["status"][:3] for e in first["entry"]] == ["201"] * len(first["entry"])
    assert [e["response"]["status"][:3] for e in second["entry"]] == ["200"] * len(second["entry"])
    reports = search(fhir_server, "DiagnosticReport?patient=srv2")
    assert len(reports) == 1
    results = {r["reference"].split("/")[0] for r in reports[0]["result"]}
    assert results == {"Observation"}  # the urn:uuid references were resolved by the server


def test_cds_hooks_without_prefetch_queries_the_server(
    fhir_server: str, sqlite_clinic: Clinic
) -> None:
    from sarcokit.web.cds_hooks import CdsClients
    from web.test_cds_hooks import ISSUER, URL, _public_jwks, _token

    today = datetime.now(UTC).date()
    # AWGS 2019 women: grip 14.5 < 18 kg, gait 0.62 < 1.0 m/s, ASMI 11.9 / 1.52² = 5.15 < 5.4
    # kg/m² (DXA) → severe sarcopenia.
    written = record_resources({**RECORD, "id": "srv3"}, "srv3", today)
    post_transaction(fhir_server, transaction(written.resources))
    sqlite_clinic.app.state.cds_clients = CdsClients({ISSUER: _public_jwks()})
    request = {
        "hook": "patient-view",
        "hookInstance": "h1",
        "fhirServer": fhir_server,
        "context": {"userId": "Practitioner/1", "patientId": "srv3"},
    }
    response = sqlite_clinic.client().post(
        URL, json=request, headers={"Authorization": f"Bearer {_token()}"}
    )
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert card["indicator"] == "critical"
    assert "severe sarcopenia" in card["summary"]
