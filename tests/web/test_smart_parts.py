"""The SMART launch's parts that need no server: settings, discovery and token checks, scopes,
the sign-in continuation path, what counts as kept from the EHR, the token kept encrypted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import InvalidToken

from sarcokit.fhir.smart import SmartError, configuration, granted, token_response
from sarcokit.web.config import Settings
from sarcokit.web.pages.common import local_path
from sarcokit.web.smart_store import (
    CONFIG_ENV,
    SmartConfig,
    config_from_env,
    measurements_unchanged,
    seal,
    unseal,
)

GOOD = {
    "redirect_uri": "https://clinic.example.org/smart/callback",
    "issuers": {
        "https://ehr.example.org/fhir/": {
            "client_id": "sarcokit",
            "identifier_system": "urn:oid:1.2.3",
        }
    },
}


def test_the_settings_allow_list_issuers_by_their_base_url() -> None:
    config = SmartConfig.from_mapping(GOOD)
    assert config.issuer("https://ehr.example.org/fhir") is not None
    assert config.issuer("https://ehr.example.org/fhir/") is not None
    assert config.issuer("https://ehr.example.org/fhir/other") is None
    assert config.issuer("https://evil.example.org/fhir") is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"redirect_uri": "https://clinic.example.org/elsewhere"}, "redirect_uri"),
        ({"issuers": {"https://ehr": {"client_id": "x"}}}, "identifier_system"),
        ({"issuers": {"https://ehr": {"client_id": "", "identifier_system": "s"}}}, "client_id"),
        ({"issuers": []}, "issuers"),
    ],
)
def test_wrong_settings_are_named(change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SmartConfig.from_mapping({**GOOD, **change})


DISCOVERED = {
    "authorization_endpoint": "https://ehr.example.org/authorize",
    "token_endpoint": "https://ehr.example.org/token",
    "code_challenge_methods_supported": ["S256"],
    "capabilities": ["launch-ehr", "permission-v2"],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code_challenge_methods_supported": ["plain"]}, "code_challenge_methods_supported"),
        ({"code_challenge_methods_supported": None}, "code_challenge_methods_supported"),
        ({"response_types_supported": ["token"]}, "response_types_supported"),
        ({"grant_types_supported": ["client_credentials"]}, "grant_types_supported"),
        ({"token_endpoint": None}, "token_endpoint"),
        # Plain HTTP only on this machine: a token must not cross a network in clear.
        ({"authorization_endpoint": "http://ehr.example.org/authorize"}, "authorization_endpoint"),
    ],
)
def test_discovery_refuses_what_the_launch_cannot_use(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SmartError) as refused:
        configuration({**DISCOVERED, **change}, "test")
    assert refused.value.field == field and refused.value.status == 502


def test_discovery_picks_the_scope_form_the_server_supports() -> None:
    v2 = configuration(DISCOVERED, "test").scopes.split()
    assert "patient/Observation.crus" in v2 and "launch" in v2
    v1 = configuration({**DISCOVERED, "capabilities": []}, "test").scopes.split()
    assert "patient/Observation.write" in v1 and "patient/Observation.crus" not in v1
    loopback = {**DISCOVERED, "token_endpoint": "http://127.0.0.1:8080/token"}
    assert configuration(loopback, "test").token_endpoint.startswith("http://127.0.0.1")


LIVE = {"access_token": "t", "token_type": "bearer", "patient": "p"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token_type": "Bearer", "patient": "p"}, "access_token"),
        ({"access_token": "t", "token_type": "mac", "patient": "p"}, "token_type"),
        ({"access_token": "t", "token_type": "bearer"}, "patient"),
        ({"access_token": "t", "token_type": "bearer", "patient": "Patient/p"}, "patient"),
        (
            {"access_token": "t", "token_type": "bearer", "patient": "p", "expires_in": -5},
            "expires_in",
        ),
    ],
)
def test_a_token_response_without_what_the_launch_needs_is_named(
    body: dict[str, Any], field: str
) -> None:
    with pytest.raises(SmartError) as refused:
        token_response(body, "https://ehr.example.org/token")
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("scope", "resource", "permission", "allowed"),
    [
        ("patient/Observation.crs", "Observation", "c", True),
        ("patient/Observation.crs", "Observation", "u", False),
        ("patient/Observation.crus", "Observation", "u", True),
        ("patient/Observation.write", "Observation", "u", True),
        ("patient/Observation.rs", "Observation", "c", False),
        ("patient/Observation.write", "Observation", "c", True),
        # SMART 1.0 `write` does not include reading.
        ("patient/Observation.write", "Observation", "r", False),
        ("patient/*.cruds", "DiagnosticReport", "c", True),
        ("user/DiagnosticReport.c", "DiagnosticReport", "c", True),
        ("system/Observation.c", "Observation", "c", False),
        ("patient/Observation.rs?category=laboratory", "Observation", "s", True),
        ("patient/Observation.sc", "Observation", "c", False),  # not in c-r-u-d-s order
    ],
)
def test_granted_scopes_in_either_form(
    scope: str, resource: str, permission: str, allowed: bool
) -> None:
    assert granted(scope, "", resource, permission) is allowed


def test_no_scope_in_the_token_response_means_the_requested_ones() -> None:
    # RFC 6749 §5.1: scope may be omitted when it is the one requested.
    assert granted("", "patient/Observation.c", "Observation", "c")


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("/smart/launches/abc", True),
        ("//evil.example.org/", False),
        ("/\\evil.example.org/", False),
        ("https://evil.example.org/", False),
        ("/path with space", False),
        ("", False),
    ],
)
def test_only_local_paths_are_followed_after_sign_in(text: str, allowed: bool) -> None:
    assert (local_path(text) == text) is allowed


def test_only_kept_values_are_derived_from_the_ehr() -> None:
    prefilled = {
        "grip_kg__1": "16",
        "grip_kg__unit": "grip_kg",
        "gait_speed_m_s": "0.7",
        "gait_speed_m_s__unit": "gait_speed_m_s",
    }
    sources = {
        "grip_kg": [{"resource": "Observation/g"}],
        "gait_speed_m_s": [{"resource": "Observation/s"}],
        "sarc_f_falls": [{"resource": "QuestionnaireResponse/q"}],
    }
    posted = {"grip_kg__1": "16", "grip_kg__unit": "grip_kg", "gait_speed_m_s": "0.9"}
    assert measurements_unchanged(posted, prefilled, sources) == ["Observation/g"]
    # A trial added in the clinic may be the best one: grip no longer comes from the EHR alone.
    added = {**posted, "grip_kg__2": "18", "gait_speed_m_s": "0.7"}
    assert measurements_unchanged(added, prefilled, sources) == ["Observation/s"]


def test_the_access_token_is_kept_encrypted(tmp_path: Path) -> None:
    settings = Settings(database_url="sqlite://", data_dir=tmp_path)
    sealed = seal(settings, "secret-access-token")
    assert "secret-access-token" not in sealed
    assert unseal(settings, sealed) == "secret-access-token"
    other = Settings(database_url="sqlite://", data_dir=tmp_path / "other")
    # Another clinic's key (another data directory) cannot open it.
    with pytest.raises(InvalidToken):
        unseal(other, sealed)


def test_the_settings_file_is_read_when_the_clinic_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "smart.json"
    good.write_text(json.dumps(GOOD), "utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(good))
    found = config_from_env()
    assert found is not None and found.issuer("https://ehr.example.org/fhir") is not None
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**GOOD, "redirect_uri": None}), "utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(wrong))
    with pytest.raises(ValueError, match=r"wrong\.json: redirect_uri"):
        config_from_env()
    monkeypatch.delenv(CONFIG_ENV)
    assert config_from_env() is None
