"""Who may call what: every route of the app against anonymous users and each role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from starlette.routing import Mount

from sarcokit.web import security
from web.support import PASSWORD, Clinic, add_patient, add_visit, csrf_of


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every clinic fixture hashes three passwords and every browser sign-in verifies one; at
    # argon2's production cost that dominates these tests. test_storage checks the real cost.
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


ANONYMOUS = "anonymous"
ROLES = ("admin", "clinician", "researcher")
EVERYONE = frozenset({ANONYMOUS, *ROLES})
SIGNED_IN = frozenset(ROLES)
ADMIN = frozenset({"admin"})
CLINICIAN = frozenset({"clinician"})
RESEARCHER = frozenset({"researcher"})
# CDS Hooks calls are authenticated by the EHR's signed JWT, not by a user: without one every
# principal is refused with 401 (tests/web/test_cds_hooks.py checks the JWTs themselves).
CDS_CLIENT: frozenset[str] = frozenset()
CDS_CLIENT_ROUTES = {
    ("POST", "/cds-services/{service_id}"),
    ("POST", "/cds-services/{service_id}/feedback"),
}

# Who may use each route: (method, path template) → the principals allowed. A route the app
# gains without an entry here fails test_the_table_covers_every_route, so its permissions are
# decided on purpose.
PERMISSIONS: dict[tuple[str, str], frozenset[str]] = {
    # The API (bearer tokens only).
    ("GET", "/api/v1/openapi.json"): EVERYONE,
    # The API's documentation is as public as the OpenAPI document it shows.
    ("GET", "/docs"): EVERYONE,
    ("MOUNT", "/docs/static"): EVERYONE,
    ("POST", "/api/v1/auth/token"): EVERYONE,
    ("GET", "/api/v1/auth/tokens"): SIGNED_IN,
    ("DELETE", "/api/v1/auth/tokens/{token_id}"): SIGNED_IN,
    ("POST", "/api/v1/assess"): SIGNED_IN,
    ("POST", "/api/v1/assess/fhir"): SIGNED_IN,
    ("GET", "/api/v1/patients"): CLINICIAN,
    ("POST", "/api/v1/patients"): CLINICIAN,
    ("GET", "/api/v1/patients/{patient_id}"): CLINICIAN,
    ("PUT", "/api/v1/patients/{patient_id}"): CLINICIAN,
    ("GET", "/api/v1/patients/{patient_id}/visits"): CLINICIAN,
    ("POST", "/api/v1/patients/{patient_id}/visits"): CLINICIAN,
    ("GET", "/api/v1/visits/{visit_id}"): CLINICIAN,
    ("PUT", "/api/v1/visits/{visit_id}"): CLINICIAN,
    ("GET", "/api/v1/visits/{visit_id}/result"): CLINICIAN,
    ("POST", "/api/v1/visits/{visit_id}/void"): CLINICIAN,
    ("GET", "/api/v1/voided-visits"): ADMIN,
    ("GET", "/api/v1/visits/{visit_id}/report.pdf"): CLINICIAN,
    ("GET", "/api/v1/export"): RESEARCHER,
    ("GET", "/api/v1/export/dictionary"): RESEARCHER,
    ("GET", "/api/v1/export.{kind}"): RESEARCHER,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("PATCH", "/api/v1/users/{user_id}"): ADMIN,
    ("GET", "/api/v1/settings"): ADMIN,
    ("PUT", "/api/v1/settings"): ADMIN,
    ("GET", "/api/v1/audit"): ADMIN,
    ("GET", "/api/v1/definitions"): ADMIN,
    ("POST", "/api/v1/definitions"): ADMIN,
    ("POST", "/api/v1/definitions/{upload_id}/retire"): ADMIN,
    # CDS Hooks: discovery is public; the calls take the EHR's client JWT.
    ("GET", "/cds-services"): EVERYONE,
    ("POST", "/cds-services/{service_id}"): CDS_CLIENT,
    ("POST", "/cds-services/{service_id}/feedback"): CDS_CLIENT,
    # The pages (session cookies).
    ("MOUNT", "/static"): EVERYONE,
    ("GET", "/setup"): EVERYONE,
    ("POST", "/setup"): EVERYONE,
    ("GET", "/login"): EVERYONE,
    ("POST", "/login"): EVERYONE,
    ("GET", "/language/{language}"): EVERYONE,
    ("POST", "/logout"): SIGNED_IN,
    ("POST", "/account/language"): SIGNED_IN,
    ("GET", "/"): SIGNED_IN,
    ("GET", "/account"): SIGNED_IN,
    ("POST", "/account/password"): SIGNED_IN,
    ("POST", "/account/tokens"): SIGNED_IN,
    ("POST", "/account/tokens/{token_id}/revoke"): SIGNED_IN,
    ("GET", "/patients"): CLINICIAN,
    ("GET", "/patients/new"): CLINICIAN,
    ("POST", "/patients/new"): CLINICIAN,
    ("GET", "/patients/{patient_id}"): CLINICIAN,
    ("GET", "/patients/{patient_id}/edit"): CLINICIAN,
    ("POST", "/patients/{patient_id}/edit"): CLINICIAN,
    ("GET", "/patients/{patient_id}/visits/new"): CLINICIAN,
    ("POST", "/patients/{patient_id}/visits/new"): CLINICIAN,
    ("GET", "/visits/{visit_id}"): CLINICIAN,
    ("GET", "/visits/{visit_id}/edit"): CLINICIAN,
    ("POST", "/visits/{visit_id}/edit"): CLINICIAN,
    ("GET", "/visits/{visit_id}/void"): CLINICIAN,
    ("POST", "/visits/{visit_id}/void"): CLINICIAN,
    ("GET", "/visits/{visit_id}/report"): CLINICIAN,
    ("GET", "/visits/{visit_id}/report.pdf"): CLINICIAN,
    ("GET", "/research"): RESEARCHER,
    ("GET", "/research/export.{kind}"): RESEARCHER,
    ("GET", "/research/dictionary.csv"): RESEARCHER,
    ("GET", "/admin"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{user_id}"): ADMIN,
    ("POST", "/admin/settings"): ADMIN,
    ("GET", "/admin/audit"): ADMIN,
    ("GET", "/admin/voided"): ADMIN,
    ("POST", "/admin/definitions"): ADMIN,
    ("POST", "/admin/definitions/{upload_id}/retire"): ADMIN,
    # SMART on FHIR EHR launch: the EHR's redirects arrive without a clinic session; the launch
    # then continues for a signed-in clinician only (tests/interop/test_smart.py).
    ("GET", "/smart/launch"): EVERYONE,
    ("GET", "/smart/callback"): EVERYONE,
    ("GET", "/smart/launches/{handle}"): CLINICIAN,
    ("POST", "/smart/launches/{handle}/visit"): CLINICIAN,
    ("POST", "/visits/{visit_id}/write-back"): CLINICIAN,
}
PRE_SESSION_CSRF_COOKIE = "sarcokit_csrf"


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves; mounts as ("MOUNT", path)."""
    found: set[tuple[str, str]] = set()
    # FastAPI keeps included routers as branches of app.routes; the contexts are the leaves,
    # each under the path it is served at.
    for route in iter_route_contexts(app.routes):
        assert route.path, f"a route without a path: {route!r}"
        if isinstance(route.original_route, Mount):
            found.add(("MOUNT", route.path))
        else:
            methods = route.methods or set()
            assert methods, f"a route without methods: {route!r}"
            found |= {(method, route.path) for method in methods if method != "HEAD"}
    return found


@dataclass
class Records:
    """Ids to put into path templates."""

    patient_id: int
    visit_id: int
    user_id: int
    # A spare token of the researcher: revoking it must not end the matrix's own tokens.
    token_id: int


def _records(clinic: Clinic) -> Records:
    api = clinic.api("clinician")
    patient = add_patient(api, "AUTH-1", "Secret Name")
    visit = add_visit(api, patient["id"], {"grip_kg": 15.0})
    users = clinic.api("admin").get("/api/v1/users").json()
    researcher = next(u for u in users if u["username"] == clinic.usernames["researcher"])
    spare = clinic.client().post(
        "/api/v1/auth/token",
        json={"username": clinic.usernames["researcher"], "password": PASSWORD, "name": "spare"},
    )
    assert spare.status_code == 201, spare.text
    return Records(patient["id"], visit["id"], researcher["id"], spare.json()["id"])


def _concrete(path: str, records: Records) -> str:
    if path == "/static":
        return "/static/style.css"
    if path == "/docs/static":
        return "/docs/static/swagger-ui.css"
    return path.format(
        patient_id=records.patient_id,
        visit_id=records.visit_id,
        user_id=records.user_id,
        token_id=records.token_id,
        upload_id=1,
        language="zh-CN",
        service_id="sarcopenia",
        kind="parquet",
        handle="unknown-launch",
    )


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _form(path: str, csrf: str, username: str) -> dict[str, str]:
    """A form that passes the CSRF check, so what remains to refuse it is authorisation."""
    form = {"csrf_token": csrf}
    if path == "/login":
        form |= {"username": username, "password": PASSWORD}
    elif path == "/account/password":
        # The right current password and a refused new one: nothing changes, no failed
        # sign-in is counted towards the throttle.
        form |= {"current": PASSWORD, "password": ""}
    elif path == "/account/language":
        form |= {"language": "en", "next": "/account"}
    return form


def _call(
    client: TestClient, method: str, path: str, records: Records, csrf: str, username: str
) -> Response:
    url = _concrete(path, records)
    kwargs: dict[str, Any] = {"follow_redirects": False}
    if method in ("POST", "PUT", "PATCH"):
        if _is_api(path):
            kwargs["json"] = {}
        else:
            pre_session = client.cookies.get(PRE_SESSION_CSRF_COOKIE)
            token = pre_session if path in ("/login", "/setup") and pre_session else csrf
            kwargs["data"] = _form(path, token, username)
    response: Response = client.request(method, url, **kwargs)
    return response


def _order(key: tuple[str, str]) -> tuple[bool, str, str]:
    # Signing out ends the session the remaining requests rely on, so it goes last.
    return (key == ("POST", "/logout"), key[1], key[0])


def _check(who: str, method: str, path: str, response: Response) -> None:
    allowed = who in PERMISSIONS[(method, path)]
    label = f"{who} {method} {path} → {response.status_code}"
    if (method, path) in CDS_CLIENT_ROUTES:
        assert response.status_code == 401, label
        return
    assert response.status_code < 500, label
    if allowed:
        assert response.status_code not in (401, 403), label
        # A signed-in user sent to the sign-in page by a page that needs a sign-in would
        # mean the session was not recognised.
        # (Signing out sends everyone there; the matrix checks its session ended instead.)
        if not _is_api(path) and ANONYMOUS not in PERMISSIONS[(method, path)] and path != "/logout":
            assert not (response.status_code == 303 and response.headers["location"] == "/login"), (
                label
            )
    elif who == ANONYMOUS and _is_api(path):
        assert response.status_code == 401, label
        assert response.headers.get("www-authenticate") == "Bearer", label
    elif who == ANONYMOUS:
        assert response.status_code == 303, label
        assert response.headers["location"] == "/login", label
    else:
        assert response.status_code == 403, label
        if _is_api(path):
            assert "error" in response.json(), label
        else:
            assert response.headers["content-type"].startswith("text/html"), label


def test_the_table_covers_every_route(sqlite_clinic: Clinic) -> None:
    served = app_routes(sqlite_clinic.app)
    assert served - set(PERMISSIONS) == set(), "routes without a permission entry"
    assert set(PERMISSIONS) - served == set(), "permission entries for routes the app lacks"


def test_the_authorisation_matrix(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    records = _records(clinic)
    routes = sorted(app_routes(clinic.app), key=_order)
    clinician = clinic.usernames["clinician"]

    anonymous_login = clinic.client()
    anonymous_login.get("/login")
    for method, path in routes:
        # A fresh client per request: an anonymous sign-in must not carry over.
        client = anonymous_login if path in ("/login", "/setup") else clinic.client()
        response = _call(client, method, path, records, "", clinician)
        _check(ANONYMOUS, method, path, response)

    for role in ROLES:
        api = clinic.api(role)
        browser, csrf = clinic.browser(role)
        for method, path in routes:
            client = api if _is_api(path) else browser
            response = _call(client, method, path, records, csrf, clinic.usernames[role])
            _check(role, method, path, response)
            if (method, path) == ("POST", "/login"):
                # Signing in again opened a new session with its own CSRF token.
                csrf = csrf_of(browser.get("/account").text)
        signed_out = browser.get("/account", follow_redirects=False)
        assert signed_out.status_code == 303, f"{role}: still signed in after POST /logout"


def test_a_browser_session_does_not_open_the_api(sqlite_clinic: Clinic) -> None:
    # The API takes bearer tokens only; a session cookie would let other sites' forms use it.
    browser, _ = sqlite_clinic.browser("clinician")
    for method, path in sorted(app_routes(sqlite_clinic.app)):
        if _is_api(path) and ANONYMOUS not in PERMISSIONS[(method, path)]:
            url = _concrete(path, Records(1, 1, 1, 1))
            response = browser.request(method, url, follow_redirects=False)
            assert response.status_code == 401, (method, path, response.status_code)


def test_a_researcher_cannot_read_an_identified_record(sqlite_clinic: Clinic) -> None:
    clinic = sqlite_clinic
    records = _records(clinic)
    api = clinic.api("researcher")
    for url in (
        f"/api/v1/patients/{records.patient_id}",
        f"/api/v1/patients/{records.patient_id}/visits",
        f"/api/v1/visits/{records.visit_id}",
        f"/api/v1/visits/{records.visit_id}/report.pdf",
        "/api/v1/patients?q=Secret",
    ):
        response = api.get(url)
        assert response.status_code == 403, url
        assert "Secret Name" not in response.text and "AUTH-1" not in response.text
    browser, _ = clinic.browser("researcher")
    for url in (f"/patients/{records.patient_id}", f"/visits/{records.visit_id}", "/patients"):
        response = browser.get(url, follow_redirects=False)
        assert response.status_code == 403, url
        assert "Secret Name" not in response.text and "AUTH-1" not in response.text
    # What a researcher may see holds neither the name nor the record number.
    export = api.get("/api/v1/export")
    assert export.status_code == 200
    assert len(export.json()) == 1
    assert "Secret Name" not in export.text and "AUTH-1" not in export.text


def test_public_routes_answer_anonymous_users(sqlite_clinic: Clinic) -> None:
    client = sqlite_clinic.client()
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/assess" in schema.json()["paths"]
    language = client.get("/language/zh-CN", follow_redirects=False)
    assert language.status_code == 303
    assert "zh-CN" in language.headers["set-cookie"]
    # Setup is over once an account exists: the page sends visitors to sign in.
    setup = client.get("/setup", follow_redirects=False)
    assert setup.status_code == 303 and setup.headers["location"] == "/login"


def test_the_main_rules_hold_on_both_databases(clinic: Clinic) -> None:
    records = _records(clinic)
    anonymous = clinic.client()
    cases: list[tuple[str, str, int]] = [
        ("anonymous", f"/api/v1/patients/{records.patient_id}", 401),
        ("anonymous", "/api/v1/export", 401),
        ("researcher", f"/api/v1/patients/{records.patient_id}", 403),
        ("admin", f"/api/v1/visits/{records.visit_id}", 403),
        ("clinician", "/api/v1/export", 403),
        ("clinician", "/api/v1/audit", 403),
        ("clinician", f"/api/v1/patients/{records.patient_id}", 200),
        ("researcher", "/api/v1/export", 200),
        ("admin", "/api/v1/audit", 200),
    ]
    for who, url, expected in cases:
        client = anonymous if who == ANONYMOUS else clinic.api(who)
        assert client.get(url).status_code == expected, (who, url)
    page = anonymous.get(f"/patients/{records.patient_id}", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    browser, _ = clinic.browser("researcher")
    assert browser.get(f"/patients/{records.patient_id}").status_code == 403


def test_every_page_form_refuses_a_post_without_its_csrf_token(sqlite_clinic: Clinic) -> None:
    # The CSRF check is each form's dependency: a route that forgot it would act on this post.
    clinic = sqlite_clinic
    records = _records(clinic)
    posts = sorted(
        path
        for method, path in app_routes(clinic.app)
        if method == "POST" and not _is_api(path) and (method, path) not in CDS_CLIENT_ROUTES
    )
    assert "/admin/settings" in posts and "/patients/new" in posts
    checked = set()
    for role in ROLES:
        browser, _ = clinic.browser(role)
        for path in posts:
            if role not in PERMISSIONS[("POST", path)] or path in ("/logout", "/setup"):
                continue
            for form in ({}, {"csrf_token": "forged"}):
                response = browser.post(_concrete(path, records), data=form, follow_redirects=False)
                assert response.status_code == 403, (role, path, form, response.status_code)
            checked.add(path)
        refused = browser.post("/logout", data={}, follow_redirects=False)
        assert refused.status_code == 403
        checked.add("/logout")
    # Before a session exists: signing in takes the double-submit cookie's token.
    anonymous = clinic.client()
    anonymous.get("/login")
    assert anonymous.post("/login", data={"csrf_token": "forged"}).status_code == 403
    checked.add("/login")
    # Setup is closed once an account exists (it redirects); test_pages checks its token.
    assert set(posts) - checked == {"/setup"}
