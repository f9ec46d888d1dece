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
