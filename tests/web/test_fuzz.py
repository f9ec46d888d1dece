"""Bounded fuzzing of every API operation from its OpenAPI schema: no input may cause a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok

from web.support import Clinic, add_patient, add_visit

# Small and derandomized: the same cases run on every CI run. The work is bounded by the number
# of examples, not by a clock (a timed assertion failed on a loaded machine).
EXAMPLES = 8
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _role_for(path: str) -> str:
    """The role an operation needs, so the fuzzer gets past authorisation to the handler."""
    if path.startswith("/api/v1/export"):
        return "researcher"
    if path.startswith(
        ("/api/v1/users", "/api/v1/settings", "/api/v1/audit", "/api/v1/voided-visits")
    ):
        return "admin"
    return "clinician"


Operation = schemathesis.APIOperation[Any, Any, Any, Any]


def _has_inputs(operation: Operation) -> bool:
    return bool(
        len(operation.path_parameters)
        or len(operation.query)
        or len(operation.headers)
        or operation.body
    )


def _fuzz(
    operation: Operation,
    mode: GenerationMode,
    token: str,
    known: dict[str, int],
    statuses: set[int],
) -> None:
    """Send the operation's generated cases; any 5xx fails with a curl command to reproduce it."""
    label = f"{operation.method.upper()} {operation.path}"

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode), real_ids=st.booleans())
    def fuzz(case: Case[Any], real_ids: bool) -> None:
        if real_ids:
            for name, ident in known.items():
                if name in case.path_parameters:
                    case.path_parameters[name] = ident
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        statuses.add(response.status_code)
        assert response.status_code < 500, (
            f"{label} answered {response.status_code}: {response.text[:300]}\n"
            f"{case.as_curl_command()}"
        )

    fuzz()


def test_no_api_operation_answers_with_a_server_error(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    # Real records, so that fuzzed bodies also reach the update and visit handlers, not just 404.
    patient = add_patient(api, "F1", "Fuzz", date_of_birth="1950-02-03")
    visit = add_visit(api, patient["id"], {"grip_kg_trials": [17.0]}, "2025-05-05")
    # A spare account for PATCH /users/{id}, so fuzzed roles cannot demote the admin doing it.
    spare = sqlite_clinic.api("admin").post(
        "/api/v1/users",
        json={"username": "spare", "password": "spare-password-1", "roles": ["clinician"]},
    )
    assert spare.status_code == 201, spare.text
    # The token routes are fuzzed with the spare account's own token: revoking the tokens of
    # the role accounts would leave the remaining operations nothing but 401s.
    spare_token = sqlite_clinic.client().post(
        "/api/v1/auth/token", json={"username": "spare", "password": "spare-password-1"}
    )
    assert spare_token.status_code == 201, spare_token.text
    known = {
        "patient_id": patient["id"],
        "visit_id": visit["id"],
        "user_id": spare.json()["id"],
        "token_id": spare_token.json()["id"],
    }

    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", sqlite_clinic.app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    # Every documented route is fuzzed; a schema that lost its operations must not pass vacuously.
    assert len(operations) >= 18, [f"{o.method} {o.path}" for o in operations]
    seen: dict[str, set[int]] = {}

    for operation in operations:
        statuses = seen.setdefault(f"{operation.method.upper()} {operation.path}", set())
        if operation.path.startswith("/api/v1/auth/tokens"):
            token = spare_token.json()["token"]
        else:
            token = sqlite_clinic.tokens[_role_for(operation.path)]
        _fuzz(operation, GenerationMode.POSITIVE, token, known, statuses)
        if _has_inputs(operation):
            _fuzz(operation, GenerationMode.NEGATIVE, token, known, statuses)

    assert all(seen.values()), "every operation was called"
    # The fuzzer must have reached at least some handlers with acceptable input, not only 4xx.
    assert any(200 <= status < 300 for statuses in seen.values() for status in statuses)


# Regression cases the fuzzer found: each was a 500 before the fix.
HUGE_IDS = [0, -1, 2**31, 2**63, 10**30]
ID_ROUTES = [
    ("clinician", "GET", "/api/v1/patients/{}"),
    ("clinician", "GET", "/api/v1/patients/{}/visits"),
    ("clinician", "GET", "/api/v1/visits/{}"),
    ("clinician", "GET", "/api/v1/visits/{}/result"),
    ("clinician", "GET", "/api/v1/visits/{}/report.pdf"),
    ("admin", "PATCH", "/api/v1/users/{}"),
]


def test_ids_beyond_the_database_range_are_not_found(sqlite_clinic: Clinic) -> None:
    for role, method, template in ID_ROUTES:
        client = sqlite_clinic.api(role)
        for ident in HUGE_IDS:
            body = {"active": True} if method == "PATCH" else None
            response = client.request(method, template.format(ident), json=body)
            assert response.status_code == 404, (method, template, ident, response.text)
    browser, _ = sqlite_clinic.browser("clinician")
    for ident in HUGE_IDS:
        assert browser.get(f"/patients/{ident}").status_code == 404
        assert browser.get(f"/visits/{ident}").status_code == 404


def test_an_unknown_definition_is_refused_by_name(sqlite_clinic: Clinic) -> None:
    response = sqlite_clinic.api("clinician").post(
        "/api/v1/assess?definitions=awgs2019,nonsense",
        json={"sex": "female", "age": 70, "grip_kg": 16.0},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "definitions"
    assert "nonsense" in error["message"]
