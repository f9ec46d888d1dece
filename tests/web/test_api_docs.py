"""The API's result is typed in OpenAPI, its errors speak of API fields, and /docs is served
from the clinic's own files under a policy that allows nothing else."""

from __future__ import annotations

import re
from typing import Any

import pytest
from argon2 import PasswordHasher

from sarcokit.web import security
from sarcokit.web.api_docs import DOCS_CONTENT_SECURITY_POLICY
from web.support import Clinic


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


def _response_schema(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path][method]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    return schema


def test_the_result_is_typed_in_openapi(sqlite_clinic: Clinic) -> None:
    spec = sqlite_clinic.client().get("/api/v1/openapi.json").json()
    for path, method in (
        ("/api/v1/assess", "post"),
        ("/api/v1/visits/{visit_id}/result", "get"),
    ):
        assert _response_schema(spec, path, method) == {"$ref": "#/components/schemas/ResultOut"}
    schemas = spec["components"]["schemas"]
    result = schemas["ResultOut"]["properties"]
    assert {"contract_version", "lang", "definitions", "derived"} <= set(result)
    definition = schemas["DefinitionOut"]["properties"]
    assert definition["explanations"]["items"] == {"$ref": "#/components/schemas/ReasonOut"}
    reason = schemas["ReasonOut"]["properties"]
    assert {"test", "value", "unit", "op", "cutoffs", "component", "source"} <= set(reason)
    cutoff = schemas["CutoffOut"]["properties"]
    assert {"value", "op", "sex", "age_from", "age_below", "methods"} <= set(cutoff)
    # The visit carries the same typed result.
    visit = schemas["VisitOut"]["properties"]["result"]
    assert visit == {"$ref": "#/components/schemas/ResultOut"}


def test_the_typed_result_keeps_the_contract_shape(sqlite_clinic: Clinic) -> None:
    record = {"sex": "female", "age": 60, "grip_kg": 15}
    body = (
        sqlite_clinic.api("clinician")
        .post("/api/v1/assess?definitions=awgs2025,ewgsop2", json=record)
        .json()
    )
    # Optional blocks appear only where a definition has them, never as null.
    assert "outcomes" in body["definitions"]["awgs2025"]
    assert "outcomes" not in body["definitions"]["ewgsop2"]
    assert "local" not in body["definitions"]["ewgsop2"]


def test_api_errors_name_api_fields_not_command_line_options(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    for record in ({"sex": 1, "grip_kg": 20}, {"sex": "x"}, {"height_m": 175}):
        response = api.post("/api/v1/assess", json=record)
        assert response.status_code == 422
        error = response.json()["error"]
        texts = [error["message"], *(p["message"] for p in error["problems"])]
        assert not any(re.search(r"(^|\s)--[a-z]", t) for t in texts), texts
    sex = api.post("/api/v1/assess", json={"sex": 1}).json()["error"]
    assert sex["field"] == "sex" and "sex coding" in sex["message"]


def test_docs_are_served_from_the_clinic_under_their_own_policy(sqlite_clinic: Clinic) -> None:
    client = sqlite_clinic.client()
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers.get_list("content-security-policy") == [DOCS_CONTENT_SECURITY_POLICY]
    # Nothing from elsewhere and nothing inline: every script is a file of this origin.
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts and all('src="/' in attributes for attributes in scripts)
    for asset in re.findall(r"(?:src|href)=\"(/[^\"]+)\"", page.text):
        response = client.get(asset)
        assert response.status_code == 200, asset
    bundle = client.get("/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    # Every other page keeps the clinic's own policy.
    login = client.get("/login")
    assert login.headers["content-security-policy"] != DOCS_CONTENT_SECURITY_POLICY
    assert "connect-src" not in login.headers["content-security-policy"]


def test_assess_answers_in_the_accept_language(sqlite_clinic: Clinic) -> None:
    # AWGS 2019 worked example (Chen 2020, Figure 1): a woman with grip 16 < 18 kg, gait 0.7 <
    # 1.0 m/s and DXA ASMI 11.9 / 1.5² = 5.29 < 5.4 kg/m² has severe sarcopenia.
    record = {
        "sex": "female",
        "age": 78,
        "grip_kg": 16,
        "gait_speed_m_s": 0.7,
        "height_cm": 150,
        "asm_kg": 11.9,
        "asm_method": "dxa",
    }
    api = sqlite_clinic.api("clinician")
    chinese = api.post(
        "/api/v1/assess?definitions=awgs2019", json=record, headers={"Accept-Language": "zh"}
    ).json()
    assert chinese["lang"] == "zh"
    awgs = chinese["definitions"]["awgs2019"]
    assert awgs["category"] == "severe_sarcopenia"
    assert any("严重肌少症" in r and "AWGS 2019 图1" in r for r in awgs["reasons"])
    assert awgs["next_steps"] == ["identify_causes", "resistance_exercise", "nutrition_protein"]
    # ?lang= wins over the header; no supported language in the header means the user's (en).
    english = api.post(
        "/api/v1/assess?definitions=awgs2019&lang=en",
        json=record,
        headers={"Accept-Language": "zh"},
    ).json()
    assert english["lang"] == "en"
    french = api.post(
        "/api/v1/assess?definitions=awgs2019", json=record, headers={"Accept-Language": "fr"}
    ).json()
    assert french["lang"] == "en"
    # The reasons differ only in language: the data is the same.
    assert english["definitions"]["awgs2019"]["explanations"] == awgs["explanations"]
