"""POST /api/v1/assess/fhir: one patient's Bundle in, the result with its sources out."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from interop.support import bundle, observation, patient
from sarcokit.web import security
from web.support import Clinic


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


def test_bundle_is_assessed_with_its_sources(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    sent = bundle(
        patient(gender="female"),
        observation("g", "83174-3", 15.0, "kgf"),
        observation("w", "29463-7", 50.0, "stone"),
    )
    response = api.post(
        "/api/v1/assess/fhir?definitions=ewgsop2&as_of=2026-12-01&bundle=true", json=sent
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # EWGSOP2 Table 3: grip < 16 kg in women is low strength → probable sarcopenia.
    assert body["definitions"]["ewgsop2"]["category"] == "probable_sarcopenia"
    assert [u["resource"] for u in body["fhir"]["used"]] == ["Patient/p1", "Observation/g"]
    [ignored] = body["fhir"]["ignored"]
    assert ignored["reason"] == "unit" and "'stone'" in ignored["detail"]
    assert body["transaction"]["type"] == "transaction"


def test_not_a_bundle_is_a_422_naming_the_field(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    response = api.post("/api/v1/assess/fhir", json={"resourceType": "Patient"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "resourceType"
    response = api.post("/api/v1/assess/fhir", content=b"{not json")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "body"


def test_a_bundle_with_elements_of_the_wrong_json_type_is_read_not_a_500(
    sqlite_clinic: Clinic,
) -> None:
    api = sqlite_clinic.api("clinician")
    sent = bundle(
        patient(gender="female"),
        observation("g", "83174-3", 15.0, "kgf"),
        {**observation("h", "8302-2", 160.0, "cm"), "subject": "Patient/p1"},
    )
    sent["entry"].append(7)
    response = api.post("/api/v1/assess/fhir?definitions=ewgsop2&as_of=2026-12-01", json=sent)
    assert response.status_code == 200, response.text
    ignored = {
        i["resource"]: (i["reason"], i["detail"]) for i in response.json()["fhir"]["ignored"]
    }
    assert ignored == {
        "Observation/h": ("malformed", 'subject is "Patient/p1" (a string); expected an object'),
        "Bundle.entry[3]": ("malformed", "entry holds no resource object"),
    }
    # A Patient that cannot be read is refused, naming what is wrong.
    response = api.post("/api/v1/assess/fhir", json=bundle({**patient(), "birthDate": [1950]}))
    assert response.status_code == 422
    assert "birthDate is [1950] (an array); expected a string" in response.text
