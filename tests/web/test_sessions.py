"""Sessions and tokens end with the password that opened them; tokens are listed and revoked."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from web.support import PASSWORD, Clinic, csrf_of

NEW_PASSWORD = "a brand new passphrase"


def _signed_in(client: TestClient) -> bool:
    return bool(client.get("/account", follow_redirects=False).status_code == 200)


def _token_works(clinic: Clinic, token: str) -> bool:
    response = clinic.client().get(
        "/api/v1/auth/tokens", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code in (200, 401), response.text
    return bool(response.status_code == 200)


def _issue(clinic: Clinic, role: str, name: str = "script", password: str = PASSWORD) -> str:
    issued = clinic.client().post(
        "/api/v1/auth/token",
        json={"username": clinic.usernames[role], "password": password, "name": name},
    )
    assert issued.status_code == 201, issued.text
    token: str = issued.json()["token"]
    return token


def _user_id(clinic: Clinic, role: str) -> int:
    users = clinic.api("admin").get("/api/v1/users").json()
    return int(next(u["id"] for u in users if u["username"] == clinic.usernames[role]))


def _audit(clinic: Clinic) -> list[dict[str, Any]]:
    with clinic.app.state.engine.connect() as connection:
        rows = connection.execute(text("SELECT action, entity, entity_id, detail FROM audit_log"))
        return [dict(row._mapping) for row in rows]


def test_a_password_change_ends_every_other_session_and_token(clinic: Clinic) -> None:
    here, token = clinic.browser("clinician")
    elsewhere, _ = clinic.browser("clinician")
    script = _issue(clinic, "clinician")
    assert _signed_in(elsewhere) and _token_works(clinic, script)
    changed = here.post(
        "/account/password",
        data={"csrf_token": token, "current": PASSWORD, "password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    # The session that changed it stays; every other session and every token end.
    assert _signed_in(here)
    assert not _signed_in(elsewhere)
    assert not _token_works(clinic, script)
    assert not _token_works(clinic, clinic.tokens["clinician"])
    # Other users are untouched.
    assert _token_works(clinic, clinic.tokens["researcher"])


def test_an_admin_reset_ends_every_session_and_token(clinic: Clinic) -> None:
    browser, _ = clinic.browser("clinician")
    script = _issue(clinic, "clinician")
    reset = clinic.api("admin").patch(
        f"/api/v1/users/{_user_id(clinic, 'clinician')}", json={"password": NEW_PASSWORD}
    )
    assert reset.status_code == 200, reset.text
    assert not _signed_in(browser)
    assert not _token_works(clinic, script)
    # The new password opens a new session.
    assert _token_works(clinic, _issue(clinic, "clinician", password=NEW_PASSWORD))


def test_an_admin_reset_through_the_page_ends_every_session(clinic: Clinic) -> None:
    victim, _ = clinic.browser("clinician")
    admin, token = clinic.browser("admin")
    changed = admin.post(
        f"/admin/users/{_user_id(clinic, 'clinician')}",
        data={
            "csrf_token": token,
            "role_clinician": "on",
            "active": "on",
            "password": NEW_PASSWORD,
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text
    assert not _signed_in(victim)
    assert not _token_works(clinic, clinic.tokens["clinician"])


def test_reactivation_does_not_revive_sessions_or_tokens(clinic: Clinic) -> None:
    browser, _ = clinic.browser("clinician")
    admin = clinic.api("admin")
    user = _user_id(clinic, "clinician")
    assert admin.patch(f"/api/v1/users/{user}", json={"active": False}).status_code == 200
    assert admin.patch(f"/api/v1/users/{user}", json={"active": True}).status_code == 200
    assert not _signed_in(browser)
    assert not _token_works(clinic, clinic.tokens["clinician"])
    # A change of roles alone ends nothing.
    researcher = _user_id(clinic, "researcher")
    kept = admin.patch(f"/api/v1/users/{researcher}", json={"roles": ["researcher"]})
    assert kept.status_code == 200
    assert _token_works(clinic, clinic.tokens["researcher"])


def test_tokens_are_listed_without_secrets_and_revoked_by_their_owner(clinic: Clinic) -> None:
    script = _issue(clinic, "clinician", "nightly export")
    api = clinic.api("clinician")
    listed = api.get("/api/v1/auth/tokens")
    assert listed.status_code == 200
    names = {t["name"]: t for t in listed.json()}
    assert set(names) == {"tests", "nightly export"}
    assert all(set(t) == {"id", "name", "created_at", "revoked"} for t in listed.json())
    assert script not in listed.text and clinic.tokens["clinician"] not in listed.text
    target = names["nightly export"]["id"]
    # Another user cannot revoke (or learn of) it.
    assert clinic.api("researcher").delete(f"/api/v1/auth/tokens/{target}").status_code == 404
    assert _token_works(clinic, script)
    revoked = api.delete(f"/api/v1/auth/tokens/{target}")
    assert revoked.status_code == 204
    assert not _token_works(clinic, script)
    assert {t["name"]: t["revoked"] for t in api.get("/api/v1/auth/tokens").json()} == {
        "tests": False,
        "nightly export": True,
    }
    events = _audit(clinic)
    assert {"action": "token.issue", "entity": "api_token", "entity_id": target, "detail": ""} in (
        events
    )
    assert {"action": "token.revoke", "entity": "api_token", "entity_id": target, "detail": ""} in (
        events
    )
    assert not any(script in str(e) for e in events)


def test_the_account_page_lists_and_revokes_tokens(clinic: Clinic) -> None:
    browser, token = clinic.browser("researcher")
    created = browser.post("/account/tokens", data={"csrf_token": token, "name": "laptop"})
    assert created.status_code == 200
    secret = created.text.split('<code class="token">')[1].split("</code>")[0]
    assert _token_works(clinic, secret)
    page = browser.get("/account")
    assert "laptop" in page.text and secret not in page.text
    mine = clinic.client().get("/api/v1/auth/tokens", headers={"Authorization": f"Bearer {secret}"})
    laptop = next(t["id"] for t in mine.json() if t["name"] == "laptop")
    revoked = browser.post(
        f"/account/tokens/{laptop}/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert not _token_works(clinic, secret)
    # A token name has a length limit, named.
    long = browser.post("/account/tokens", data={"csrf_token": token, "name": "n" * 101})
    assert long.status_code == 422 and 'data-field="name"' in long.text


def test_the_last_administrator_keeps_the_role(clinic: Clinic) -> None:
    admin = clinic.api("admin")
    me = _user_id(clinic, "admin")
    demoted = admin.patch(f"/api/v1/users/{me}", json={"roles": ["clinician"]})
    assert demoted.status_code == 409, demoted.text
    assert demoted.json()["error"]["field"] == "roles"
    # With a second administrator, one of them may step down or be deactivated...
    second = admin.post(
        "/api/v1/users",
        json={"username": "second.admin", "password": "second passphrase", "roles": ["admin"]},
    ).json()
    assert admin.patch(f"/api/v1/users/{second['id']}", json={"active": False}).status_code == 200
    # ...but not the last active one.
    assert admin.patch(f"/api/v1/users/{me}", json={"roles": ["clinician"]}).status_code == 409
    assert admin.patch(f"/api/v1/users/{second['id']}", json={"active": True}).status_code == 200
    assert admin.patch(f"/api/v1/users/{me}", json={"roles": ["clinician"]}).status_code == 200
    # The former administrator is a clinician now.
    assert clinic.api("admin").get("/api/v1/users").status_code == 403


def test_the_admin_page_names_the_last_administrator(clinic: Clinic) -> None:
    browser, token = clinic.browser("admin")
    page = browser.post(
        f"/admin/users/{_user_id(clinic, 'admin')}",
        data={"csrf_token": token, "role_clinician": "on", "active": "on"},
        follow_redirects=False,
    )
    assert page.status_code == 409
    assert 'data-field="roles"' in page.text
    roles = {u["username"]: u["roles"] for u in clinic.api("admin").get("/api/v1/users").json()}
    assert roles[clinic.usernames["admin"]] == "admin"


def test_failed_password_changes_are_throttled_apart_from_sign_in(clinic: Clinic) -> None:
    browser, token = clinic.browser("clinician")
    for _ in range(5):
        wrong = browser.post(
            "/account/password",
            data={"csrf_token": token, "current": "not my password", "password": NEW_PASSWORD},
        )
        assert wrong.status_code == 400
    blocked = browser.post(
        "/account/password",
        data={"csrf_token": token, "current": PASSWORD, "password": NEW_PASSWORD},
    )
    assert blocked.status_code == 429
    # The password did not change, and signing in is not locked.
    fresh = clinic.client()
    login_token = csrf_of(fresh.get("/login").text)
    signed = fresh.post(
        "/login",
        data={
            "csrf_token": login_token,
            "username": clinic.usernames["clinician"],
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    assert _token_works(clinic, _issue(clinic, "clinician"))
