"""CDS Hooks 2.0: discovery, a patient-view call with and without prefetch, JWT refusals, 412."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from interop.support import PROJECT, observation, patient, sarc_f
from sarcokit.web import security
from sarcokit.web.cds_hooks import CdsClients
from web.support import Clinic

ISSUER = "https://ehr.example.org"
URL = "/cds-services/sarcopenia"
AUDIENCE = "http://testserver/cds-services/sarcopenia"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


def _public_jwks() -> list[dict[str, Any]]:
    ec_jwk = ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True)
    rsa_jwk = RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    return [{**ec_jwk, "kid": "ec-1", "alg": "ES384"}, {**rsa_jwk, "kid": "rsa-1", "alg": "RS384"}]


@pytest.fixture
def cds(sqlite_clinic: Clinic) -> Clinic:
    sqlite_clinic.app.state.cds_clients = CdsClients({ISSUER: _public_jwks()})
    return sqlite_clinic


def _token(**changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    alg = changes.pop("alg", "ES384")
    key: Any = changes.pop("key", EC_KEY if alg == "ES384" else RSA_KEY)
    kid = changes.pop("kid", "ec-1" if alg == "ES384" else "rsa-1")
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _day(days_ago: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()


def _searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def _call(grip: float, gait: float, asm_kg: float, **body: Any) -> dict[str, Any]:
    prefetch = {
        "patient": patient(gender="female", birth="1944-05-01"),
        "observations": _searchset(
            observation("g", "83174-3", grip, "kgf", when=_day(3)),
            observation("s", "83172-7", gait, "m/s", when=_day(3)),
            observation("h", "8302-2", 155.0, "cm", when=_day(3)),
            observation("a", "asm-dxa", asm_kg, "kg", when=_day(10), system=PROJECT),
        ),
        "sarcf": _searchset(),
    }
    request = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": prefetch,
    }
    request.update(body)
    return request


def test_discovery_lists_the_service_with_prefetch_templates(cds: Clinic) -> None:
    services = cds.client().get("/cds-services").json()["services"]
    [service] = services
    assert service["hook"] == "patient-view" and service["id"] == "sarcopenia"
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "http://loinc.org|83174-3" in service["prefetch"]["observations"]


def test_actionable_patient_gets_one_card(cds: Clinic) -> None:
    # AWGS 2019 (the clinic's lead definition), women: grip 15 < 18 kg, gait 0.7 < 1.0 m/s,
    # DXA ASMI 11 / 1.55² = 4.58 < 5.4 kg/m² → severe sarcopenia.
    response = cds.client().post(
        URL, json=_call(15.0, 0.7, 11.0), headers={"Authorization": f"Bearer {_token()}"}
    )
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert card["indicator"] == "critical"
    assert card["summary"] == "AWGS 2019 (hospital / research): severe sarcopenia"
    assert len(card["summary"]) < 140
    assert "Chen" in card["source"]["label"]
    [suggestion] = card["suggestions"]
    resource = suggestion["actions"][0]["resource"]
    assert resource["valueCodeableConcept"]["coding"][0]["code"] == "severe_sarcopenia"
    assert card["links"][0]["url"].endswith("/patients?q=p1")


def test_nothing_actionable_gives_no_card(cds: Clinic) -> None:
    # grip 25 ≥ 18 kg, gait 1.2 ≥ 1.0 m/s, ASMI 15 / 1.55² = 6.24 ≥ 5.4 → no sarcopenia.
    response = cds.client().post(
        URL, json=_call(25.0, 1.2, 15.0), headers={"Authorization": f"Bearer {_token()}"}
    )
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_positive_sarc_f_with_undecided_definition_gives_a_screening_card(cds: Clinic) -> None:
    request = _call(15.0, 0.7, 11.0)
    request["prefetch"]["observations"] = _searchset()
    scores = {"sarc_f_strength": 2, "sarc_f_assistance_walking": 1, "sarc_f_rise_from_chair": 1,
              "sarc_f_climb_stairs": 1, "sarc_f_falls": 0}  # fmt: skip
    request["prefetch"]["sarcf"] = _searchset(sarc_f("q", scores, authored=_day(1)))
    response = cds.client().post(URL, json=request, headers={"Authorization": f"Bearer {_token()}"})
    [card] = response.json()["cards"]
    # 2 + 1 + 1 + 1 + 0 = 5 ≥ 4 (Malmstrom 2013).
    assert card["indicator"] == "info" and card["summary"].startswith("SARC-F 5 (positive)")


def test_missing_prefetch_without_a_fhir_server_is_412(cds: Clinic) -> None:
    request = _call(15.0, 0.7, 11.0)
    del request["prefetch"]["observations"]
    response = cds.client().post(URL, json=request, headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 412
    request["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens on the discard port
    response = cds.client().post(URL, json=request, headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 412


def test_rs384_is_accepted(cds: Clinic) -> None:
    token = _token(alg="RS384")
    response = cds.client().post(
        URL, json=_call(25.0, 1.2, 15.0), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        None,
        "not-a-jwt",
        jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "exp": 2**40, "iat": 1, "jti": "x"},
            "s" * 64,
            algorithm="HS384",
        ),
        "wrong-audience",
        "unknown-issuer",
        "expired",
        "other-key",
        "no-jti",
    ],
)
def test_jwt_failures_are_401(cds: Clinic, token: str | None) -> None:
    stranger = ec.generate_private_key(ec.SECP384R1())
    made = {
        "wrong-audience": lambda: _token(aud="http://testserver/cds-services/other"),
        "unknown-issuer": lambda: _token(iss="https://elsewhere.example"),
        "expired": lambda: _token(exp=int(time.time()) - 60, iat=int(time.time()) - 400),
        "other-key": lambda: _token(key=stranger),
        "no-jti": lambda: _token(jti=None),
    }
    value = made[token]() if token in made else token
    headers = {"Authorization": f"Bearer {value}"} if value else {}
    response = cds.client().post(URL, json=_call(15.0, 0.7, 11.0), headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_replayed_jwt_is_refused(cds: Clinic) -> None:
    token = _token()
    headers = {"Authorization": f"Bearer {token}"}
    assert cds.client().post(URL, json=_call(25.0, 1.2, 15.0), headers=headers).status_code == 200
    assert cds.client().post(URL, json=_call(25.0, 1.2, 15.0), headers=headers).status_code == 401


def test_feedback(cds: Clinic) -> None:
    url = URL + "/feedback"
    good = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "accepted",
                "outcomeTimestamp": "2026-12-01T10:00:00Z",
            }
        ]
    }
    response = cds.client().post(
        url, json=good, headers={"Authorization": f"Bearer {_token(aud=AUDIENCE + '/feedback')}"}
    )
    assert response.status_code == 200
    response = cds.client().post(
        url,
        json={"feedback": [{"outcome": "maybe"}]},
        headers={"Authorization": f"Bearer {_token(aud=AUDIENCE + '/feedback')}"},
    )
    assert response.status_code == 400
    assert cds.client().post(url, json=good).status_code == 401


def test_hostile_prefetch_is_read_around_not_a_500(cds: Clinic) -> None:
    # The actionable patient of test_actionable_patient_gets_one_card, with an observation whose
    # subject is a string (left out as malformed), an entry whose search is not an object and a
    # SARC-F searchset whose entries are not an array: still one card, from what can be read.
    request = _call(15.0, 0.7, 11.0)
    entries = request["prefetch"]["observations"]["entry"]
    entries.append({"resource": {**observation("x", "83174-3", 50.0, "kgf"), "subject": "p1"}})
    entries[0]["search"] = "match"
    request["prefetch"]["sarcf"]["entry"] = 5
    response = cds.client().post(URL, json=request, headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert card["summary"] == "AWGS 2019 (hospital / research): severe sarcopenia"
