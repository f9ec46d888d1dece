"""The clinic's pages: first run, sessions, CSRF, throttling, security headers, the visit form."""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sarcokit.fields import field_specs
from web.support import PASSWORD, Clinic, add_patient, add_visit, csrf_of, make_app

# The AWGS 2019 worked example of the context (Chen 2020, Figure 1): a woman with grip 16.0 kg
# (< 18), 6-m gait speed 0.7 m/s (< 1.0) and DXA ASM 11.9 kg at 1.50 m, ASMI 11.9 / 1.5² = 5.29
# kg/m² (< 5.4), has severe sarcopenia.
SEVERE_AWGS = {
    "visit_date": "2025-01-10",
    "height_m": "150",
    "height_m__unit": "height_cm",
    "grip_kg__1": "15.5",
    "grip_kg__2": "16.0",
    "grip_kg__unit": "grip_kg",
    "gait_speed_m_s": "0.7",
    "asm_kg": "11.9",
    "asm_method": "dxa",
}
DIAGNOSES = {"sarcopenia", "severe_sarcopenia", "confirmed_sarcopenia", "possible_sarcopenia"}


# -- helpers ------------------------------------------------------------------------------------


def assert_security_headers(response: httpx.Response) -> None:
    """The headers every response carries, whatever produced it."""
    policy = response.headers.get("content-security-policy", "")
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"):
        assert directive in policy, (response.request.url, policy)
    assert "unsafe-inline" not in policy
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("referrer-policy") == "no-referrer"


def assert_no_inline_code(html: str) -> None:
    """The CSP forbids inline script and style, so a page using them would break in a browser."""
    for attributes, body in re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", html, re.I | re.S):
        assert "src=" in attributes and not body.strip(), "inline <script>"
    assert not re.search(r"<style\b", html, re.I), "inline <style>"
    assert not re.search(r"<[a-z][^>]*\sstyle\s*=", html, re.I), "style= attribute"
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, re.I), "inline event handler"


def checked(response: httpx.Response) -> httpx.Response:
    """The response, after the header and (for HTML) inline-code checks every page must pass."""
    assert_security_headers(response)
    if response.headers.get("content-type", "").startswith("text/html"):
        assert_no_inline_code(response.text)
    return response


def get(client: TestClient, url: str, status: int = 200) -> httpx.Response:
    response = checked(client.get(url))
    assert response.status_code == status, (url, response.status_code, response.text[:500])
    return response


def post(
    client: TestClient, url: str, data: dict[str, str], *, follow: bool = False
) -> httpx.Response:
    return checked(client.post(url, data=data, follow_redirects=follow))


def new_patient(clinic: Clinic, record: str = "A1", sex: str = "female") -> int:
    ident: int = add_patient(clinic.api("clinician"), record, sex=sex)["id"]
    return ident


def visits_of(clinic: Clinic, patient_id: int) -> list[dict[str, Any]]:
    response = clinic.api("clinician").get(f"/api/v1/patients/{patient_id}/visits")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def result_section(html: str, definition_id: str) -> str:
    """The result card of one definition on a visit page."""
    found = re.search(
        rf'<section class="card result" data-definition="{definition_id}">(.*?)</section>',
        html,
        re.S,
    )
    assert found, f"no result for {definition_id}"
    return found.group(1)


def category_of(html: str, definition_id: str) -> str:
    found = re.search(r'data-category="([^"]+)"', result_section(html, definition_id))
    assert found
    return found.group(1)


def states_of(html: str, definition_id: str) -> dict[str, str]:
    """Component label → state (low, normal, unknown) in one definition's card."""
    rows = re.findall(
        r'<th>([^<]+)</th><td class="state state-(\w+)">', result_section(html, definition_id)
    )
    return dict(rows)


def chart_of(html: str, caption: str) -> str:
    found = re.search(
        rf"<figcaption>{re.escape(caption)}</figcaption>\s*(<svg.*?</svg>)", html, re.S
    )
    assert found, f"no chart {caption!r}"
    return found.group(1)


# -- first run ----------------------------------------------------------------------------------


@pytest.fixture
def fresh_app(tmp_path: Path) -> Iterator[FastAPI]:
    """A clinic with no account yet, on a database of its own."""
    folder = tmp_path / "fresh"
    app = make_app(f"sqlite:///{(folder / 'fresh.db').as_posix()}", folder)
    yield app
    app.state.engine.dispose()


def test_first_run_setup_creates_the_administrator_once(fresh_app: FastAPI) -> None:
    code_file: Path = fresh_app.state.settings.setup_code_path
    code = code_file.read_text().strip()
    browser = TestClient(fresh_app, follow_redirects=False)
    assert get(browser, "/", 303).headers["location"] == "/login"
    assert get(browser, "/login", 303).headers["location"] == "/setup"
    token = csrf_of(get(browser, "/setup").text)
    form = {
        "csrf_token": token,
        "username": "chief",
        "display_name": "Dr Chief",
        "password": PASSWORD,
        "language": "en",
    }

    wrong = post(browser, "/setup", {**form, "setup_code": code + "x"})
    assert wrong.status_code == 400
    assert "sarcokit_session" not in wrong.cookies
    # Still no account: the setup page is offered again and the code is kept.
    assert get(browser, "/login", 303).headers["location"] == "/setup"
    assert code_file.exists()

    right = post(browser, "/setup", {**form, "setup_code": code})
    assert right.status_code == 303 and right.headers["location"] == "/"
    assert not code_file.exists()
    # Signed in at once, as a clinician (the start page is the patient list) and an admin.
    assert get(browser, "/", 303).headers["location"] == "/patients"
    get(browser, "/patients")
    get(browser, "/admin")
    assert "chief" in get(browser, "/admin").text

    anonymous = TestClient(fresh_app, follow_redirects=False)
    assert get(anonymous, "/setup", 303).headers["location"] == "/login"
    again = post(anonymous, "/setup", {**form, "setup_code": code, "username": "intruder"})
    assert again.status_code == 303 and again.headers["location"] == "/login"
    assert "intruder" not in get(browser, "/admin").text


def test_session_cookie_is_httponly_and_samesite_strict(sqlite_clinic: Clinic) -> None:
    browser = sqlite_clinic.client()
    token = csrf_of(get(browser, "/login").text)
    response = post(
        browser,
        "/login",
        {
            "csrf_token": token,
            "username": sqlite_clinic.usernames["clinician"],
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303
    cookies = [c for c in response.headers.get_list("set-cookie") if "sarcokit_session=" in c]
    assert len(cookies) == 1
    flags = [part.strip().lower() for part in cookies[0].split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags


# -- CSRF ---------------------------------------------------------------------------------------


BAD_TOKENS = [pytest.param(None, id="missing"), pytest.param("forged", id="wrong")]


def _with_token(data: dict[str, str], token: str | None) -> dict[str, str]:
    return data if token is None else {**data, "csrf_token": token}


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_login_without_a_valid_csrf_token_is_refused(
    sqlite_clinic: Clinic, token: str | None
) -> None:
    browser = sqlite_clinic.client()
    get(browser, "/login")
    data = {"username": sqlite_clinic.usernames["clinician"], "password": PASSWORD}
    response = post(browser, "/login", _with_token(data, token))
    assert response.status_code == 403
    assert "sarcokit_session" not in response.cookies
    assert get(browser, "/patients", 200).url.path == "/login"


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_writes_without_a_valid_csrf_token_change_nothing(
    sqlite_clinic: Clinic, token: str | None
) -> None:
    patient_id = new_patient(sqlite_clinic)
    clinician, _ = sqlite_clinic.browser("clinician")
    # A token that is valid, but for another session, is as wrong as a made-up one.
    _, other_session = sqlite_clinic.browser("clinician")
    wrong = other_session if token else None

    created = post(
        clinician,
        "/patients/new",
        _with_token(
            {"record_number": "B2", "name": "Wang", "sex": "male", "date_of_birth": "1950-01-01"},
            wrong,
        ),
    )
    assert created.status_code == 403
    listed = sqlite_clinic.api("clinician").get("/api/v1/patients").json()
    assert [p["record_number"] for p in listed] == ["A1"]

    visit = post(clinician, f"/patients/{patient_id}/visits/new", _with_token(SEVERE_AWGS, wrong))
    assert visit.status_code == 403
    assert visits_of(sqlite_clinic, patient_id) == []

    language = post(
        clinician, "/account/language", _with_token({"language": "zh-CN", "next": "/"}, wrong)
    )
    assert language.status_code == 403
    assert '<html lang="en">' in get(clinician, "/account").text

    logout = post(clinician, "/logout", _with_token({}, wrong))
    assert logout.status_code == 403
    assert get(clinician, "/patients").url.path == "/patients"

    admin, _ = sqlite_clinic.browser("admin")
    _, other_admin_session = sqlite_clinic.browser("admin")
    account = post(
        admin,
        "/admin/users",
        _with_token(
            {"username": "mallory", "password": PASSWORD, "role_admin": "on"},
            other_admin_session if token else None,
        ),
    )
    assert account.status_code == 403
    users = sqlite_clinic.api("admin").get("/api/v1/users").json()
    assert "mallory" not in [u["username"] for u in users]
    assert len(users) == 3


def test_forms_with_the_session_token_are_accepted(sqlite_clinic: Clinic) -> None:
    # The counterpart of the refusals above: the same posts with the right token do act.
    clinician, token = sqlite_clinic.browser("clinician")
    created = post(
        clinician,
        "/patients/new",
        {
            "csrf_token": token,
            "record_number": "B2",
            "name": "Wang",
            "sex": "male",
            "date_of_birth": "1950-01-01",
        },
    )
    assert created.status_code == 303
    assert re.fullmatch(r"/patients/\d+", created.headers["location"])
    logout = post(clinician, "/logout", {"csrf_token": token})
    assert logout.status_code == 303 and logout.headers["location"] == "/login"
    assert get(clinician, "/patients").url.path == "/login"


# -- throttling ---------------------------------------------------------------------------------


def test_the_sixth_login_after_five_failures_is_throttled(sqlite_clinic: Clinic) -> None:
    browser = sqlite_clinic.client()
    token = csrf_of(get(browser, "/login").text)
    username = sqlite_clinic.usernames["clinician"]
    for _ in range(5):
        failed = post(
            browser, "/login", {"csrf_token": token, "username": username, "password": "wrong-pass"}
        )
        assert failed.status_code == 401
    right = post(
        browser, "/login", {"csrf_token": token, "username": username, "password": PASSWORD}
    )
    assert right.status_code == 429
    assert "sarcokit_session" not in right.cookies
    # The bearer-token endpoint shares the same failure count.
    api = sqlite_clinic.client().post(
        "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
    )
    assert api.status_code == 429


# -- security headers ---------------------------------------------------------------------------


def test_security_headers_on_pages_api_errors_and_static_files(sqlite_clinic: Clinic) -> None:
    anonymous = sqlite_clinic.client()
    clinician, _ = sqlite_clinic.browser("clinician")
    api = sqlite_clinic.api("clinician")
    responses = [
        get(anonymous, "/login"),
        get(clinician, "/patients"),
        get(clinician, "/patients/12345", 404),
        get(sqlite_clinic.browser("researcher")[0], "/patients", 403),
        get(anonymous, "/static/style.css"),
        get(anonymous, "/static/no-such-file.css", 404),
        get(api, "/api/v1/patients"),
        get(anonymous, "/api/v1/patients", 401),
        get(api, "/api/v1/patients/12345", 404),
        get(api, "/api/v1/no-such-route", 404),
        get(api, "/api/v1/openapi.json"),
        checked(api.post("/api/v1/patients", json={"sex": "other"})),
        checked(api.post("/api/v1/assess", content=b"x" * (300 * 1024))),
    ]
    assert [r.status_code for r in responses][-2:] == [422, 413]
    assert responses[4].headers["content-type"].startswith("text/css")


# -- the visit form -----------------------------------------------------------------------------


def test_awgs2019_severe_example_through_the_visit_form(sqlite_clinic: Clinic) -> None:
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    get(browser, f"/patients/{patient_id}/visits/new")
    saved = post(
        browser, f"/patients/{patient_id}/visits/new", {**SEVERE_AWGS, "csrf_token": token}
    )
    assert saved.status_code == 303
    assert re.fullmatch(r"/visits/\d+", saved.headers["location"])
    page = get(browser, saved.headers["location"]).text
    assert category_of(page, "awgs2019") == "severe_sarcopenia"
    # EWGSOP2 (Cruz-Jentoft 2019, Table 3): women's grip cut-off is < 16 kg, so 16.0 is normal
    # strength and the algorithm stops at no sarcopenia.
    assert category_of(page, "ewgsop2") == "no_sarcopenia"


def test_a_refused_value_shows_the_form_again_and_saves_nothing(sqlite_clinic: Clinic) -> None:
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    # 158 entered as metres: a height-in-cm slip the form must refuse, not store as a giant.
    bad = {**SEVERE_AWGS, "height_m": "158", "height_m__unit": "height_m", "csrf_token": token}
    response = post(browser, f"/patients/{patient_id}/visits/new", bad)
    assert response.status_code == 422
    assert 'data-field="height_m"' in response.text
    assert 'class="field invalid"' in response.text
    # The other answers are kept for correction.
    assert 'value="0.7"' in response.text
    assert visits_of(sqlite_clinic, patient_id) == []


def _field_problems(page: str) -> dict[str, str]:
    return {
        field: re.sub(r"<[^>]+>", "", text).split("Switch to")[0].strip()
        for field, text in re.findall(
            r'<p class="field-problem" data-field="([^"]+)">(.*?)</p>', page, re.S
        )
    }


def test_every_problem_is_shown_in_one_round_beside_its_input(sqlite_clinic: Clinic) -> None:
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    form = {
        **SEVERE_AWGS,
        "csrf_token": token,
        # A form-level problem (not a number) and two the engine finds (out of range) at once.
        "grip_kg__1": "abc",
        "height_m": "175",
        "height_m__unit": "height_m",
        "gait_speed_m_s": "9",
    }
    response = post(browser, f"/patients/{patient_id}/visits/new", form)
    assert response.status_code == 422
    shown = _field_problems(response.text)
    # Gait speed is plausible from 0 to 4 m/s (fields.toml); 175 m is plausible as cm.
    assert shown == {
        "grip_kg": "Grip strength: “abc” is not a number.",
        "height_m": "Height 175 m is not plausible — did you mean cm?",
        "gait_speed_m_s": "Usual gait speed 9 m/s is not plausible: expected 0 to 4 m/s.",
    }
    assert visits_of(sqlite_clinic, patient_id) == []


def test_the_offered_unit_is_one_click_and_saves_nothing(sqlite_clinic: Clinic) -> None:
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    form = {**SEVERE_AWGS, "csrf_token": token, "height_m": "175", "height_m__unit": "height_m"}
    refused = post(browser, f"/patients/{patient_id}/visits/new", form)
    assert 'name="switch_unit" value="height_m=height_cm"' in refused.text
    switched = post(
        browser, f"/patients/{patient_id}/visits/new", {**form, "switch_unit": "height_m=height_cm"}
    )
    assert switched.status_code == 200
    assert '<option value="height_cm" selected>' in switched.text
    assert 'name="height_m" aria-label="Height" value="175"' in switched.text
    assert "field-problem" not in switched.text
    assert visits_of(sqlite_clinic, patient_id) == []
    # An offer the form did not make changes no unit.
    forged = post(
        browser, f"/patients/{patient_id}/visits/new", {**form, "switch_unit": "height_m=grip_lb"}
    )
    assert '<option value="height_m" selected>' in forged.text
    saved = post(
        browser, f"/patients/{patient_id}/visits/new", {**form, "height_m__unit": "height_cm"}
    )
    assert saved.status_code == 303
    assert len(visits_of(sqlite_clinic, patient_id)) == 1


def test_grip_entered_in_pounds_is_converted(sqlite_clinic: Clinic) -> None:
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    # 35.3 lb × 0.45359237 kg/lb = 16.01 kg: low under AWGS 2019 (women < 18 kg) but normal under
    # EWGSOP2 (women < 16 kg). Read as kilograms, 35.3 would be normal under both.
    form = {
        "csrf_token": token,
        "visit_date": "2025-01-10",
        "grip_kg__1": "35.3",
        "grip_kg__unit": "grip_lb",
    }
    saved = post(browser, f"/patients/{patient_id}/visits/new", form)
    assert saved.status_code == 303
    page = get(browser, saved.headers["location"]).text
    assert states_of(page, "awgs2019")["strength"] == "low"
    assert states_of(page, "ewgsop2")["strength"] == "normal"
    grip = chart_of(get(browser, f"/patients/{patient_id}").text, "Grip strength (kg)")
    assert "16.01 kg" in grip


def test_every_trial_in_pounds_is_kept_and_the_best_counts(sqlite_clinic: Clinic) -> None:
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    form = {
        "csrf_token": token,
        "visit_date": "2025-01-10",
        "grip_kg__1": "35.3",
        "grip_kg__2": "36",
        "grip_kg__3": "34",
        "grip_kg__unit": "grip_lb",
    }
    saved = post(browser, f"/patients/{patient_id}/visits/new", form)
    assert saved.status_code == 303
    [visit] = visits_of(sqlite_clinic, patient_id)
    assert visit["measurements"] == {"grip_lb_trials": [35.3, 36.0, 34.0]}
    page = get(browser, saved.headers["location"]).text
    assert "35.3 / 36 / 34 lb (best 36)" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    # Best 36 lb × 0.45359237 = 16.33 kg: < 18 kg (AWGS 2019, women), ≥ 16 kg (EWGSOP2).
    assert states_of(page, "awgs2019")["strength"] == "low"
    assert states_of(page, "ewgsop2")["strength"] == "normal"
    # The correction form shows the three trials in pounds again.
    edit = get(browser, f"{saved.headers['location']}/edit").text
    assert '<option value="grip_lb" selected>' in edit
    assert all(f'value="{v}"' in edit for v in ("35.3", "36", "34"))


def test_an_implausible_trial_is_named_by_its_number(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    # Grip is plausible from 0 to 100 kg (fields.toml); 500 kg is not.
    response = api.post(
        "/api/v1/assess", json={"sex": "male", "age": 70, "grip_kg_trials": [30, 500, "x"]}
    )
    assert response.status_code == 422
    problems = response.json()["error"]["problems"]
    assert [(p["field"], p["value"]) for p in problems] == [
        ("grip_kg_trials[2]", 500.0),
        ("grip_kg_trials[3]", "x"),
    ]


def test_a_blank_form_is_never_read_as_normal(sqlite_clinic: Clinic) -> None:
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    saved = post(
        browser,
        f"/patients/{patient_id}/visits/new",
        {"csrf_token": token, "visit_date": "2025-01-10"},
    )
    # A visit that records nothing is refused, naming why, and nothing is stored.
    assert saved.status_code == 422
    assert 'data-field="measurements"' in saved.text
    assert "at least one measurement or questionnaire answer" in saved.text
    for category in (*DIAGNOSES, "no_sarcopenia"):
        assert f"cat-{category}" not in saved.text
    visits = sqlite_clinic.api("clinician").get(f"/api/v1/patients/{patient_id}/visits")
    assert visits.json() == []
    # One answer is a visit; the tests it lacks stay unknown, never normal.
    saved = post(
        browser,
        f"/patients/{patient_id}/visits/new",
        {"csrf_token": token, "visit_date": "2025-01-10", "sarc_f_falls": "0"},
    )
    assert saved.status_code == 303
    page = get(browser, saved.headers["location"]).text
    for definition_id in ("awgs2019", "ewgsop2"):
        states = states_of(page, definition_id)
        assert states, definition_id
        assert set(states.values()) == {"unknown"}, (definition_id, states)
        category = category_of(page, definition_id)
        assert category not in DIAGNOSES and category != "no_sarcopenia", category


def test_switching_language_shows_the_same_visit_in_chinese(sqlite_clinic: Clinic) -> None:
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    saved = post(
        browser, f"/patients/{patient_id}/visits/new", {**SEVERE_AWGS, "csrf_token": token}
    )
    where = saved.headers["location"]
    english = get(browser, where).text
    assert '<html lang="en">' in english and "严重肌少症" not in english

    switched = post(
        browser, "/account/language", {"csrf_token": token, "language": "zh-CN", "next": where}
    )
    assert switched.status_code == 303 and switched.headers["location"] == where
    chinese = get(browser, where).text
    assert '<html lang="zh-CN">' in chinese
    assert "严重肌少症" in result_section(chinese, "awgs2019")
    assert category_of(chinese, "awgs2019") == "severe_sarcopenia"

    back = post(
        browser, "/account/language", {"csrf_token": token, "language": "en", "next": where}
    )
    assert back.status_code == 303
    again = get(browser, where).text
    assert '<html lang="en">' in again and "严重肌少症" not in again
    assert "severe sarcopenia" in result_section(again, "awgs2019").lower()
    # `next` is a path on this site; anything else falls back to the start page.
    off_site = post(
        browser,
        "/account/language",
        {"csrf_token": token, "language": "en", "next": "//evil.example/"},
    )
    assert off_site.status_code == 303 and off_site.headers["location"] == "/"


# -- history charts -----------------------------------------------------------------------------


def _grip_history(clinic: Clinic, record: str, first: str, second: str) -> str:
    patient_id = new_patient(clinic, record)
    browser, token = clinic.browser("clinician")
    for day, grip in (("2024-06-01", first), ("2025-01-10", second)):
        form = {"csrf_token": token, "visit_date": day, "grip_kg__1": grip}
        assert post(browser, f"/patients/{patient_id}/visits/new", form).status_code == 303
    return get(browser, f"/patients/{patient_id}").text


def test_history_chart_draws_the_awgs2019_cutoff_and_flags_a_meaningful_change(
    sqlite_clinic: Clinic,
) -> None:
    page = _grip_history(sqlite_clinic, "H1", "24", "16")
    assert page.count('<svg class="chart"') == 4
    grip = chart_of(page, "Grip strength (kg)")
    # AWGS 2019 (the clinic's lead definition): women's low grip is < 18 kg.
    assert 'class="cutoff-label">&lt; 18</text>' in grip
    # The dashed line sits where the axis puts 18: each tick is drawn 4 px below its value, and
    # the axis is linear, so 18 lies (18 - a) / (b - a) of the way between any two ticks a, b.
    ticks = {
        float(value): float(y) - 4
        for y, value in re.findall(
            r'<text x="\d+" y="([\d.]+)" class="tick" text-anchor="end">([\d.]+)<', grip
        )
    }
    line = re.search(r'<line x1="\d+" y1="([\d.]+)" x2="\d+" y2="[\d.]+" class="cutoff"/>', grip)
    assert line and len(ticks) >= 3
    a, b = min(ticks), max(ticks)
    assert a <= 16 and b >= 24, ticks
    expected = ticks[a] + (18 - a) / (b - a) * (ticks[b] - ticks[a])
    assert float(line.group(1)) == pytest.approx(expected, abs=0.2)
    # 24 → 16 kg is a change of 8 kg ≥ 6.5 kg (Bohannon 2019): the second point is flagged,
    # and a fall in grip is a change for the worse.
    points = re.findall(r'<circle [^>]*class="([^"]+)"><title>([^<]+)</title>', grip)
    assert points == [
        ("point same", "2024-06-01: 24 kg"),
        ("point worse meaningful", "2025-01-10: 16 kg (-8) — worse — meaningful change"),
    ]
    assert re.findall(r'class="segment ([a-z]+)"', grip) == ["worse"]
    # Each value is written on its point.
    assert re.findall(r'class="value" text-anchor="middle">([\d.]+)<', grip) == ["24", "16"]


def test_a_rising_sarc_f_is_a_change_for_the_worse_and_a_rising_grip_for_the_better(
    sqlite_clinic: Clinic,
) -> None:
    page = _grip_history(sqlite_clinic, "H3", "16", "20")
    grip = chart_of(page, "Grip strength (kg)")
    assert re.findall(r'class="segment ([a-z]+)"', grip) == ["better"]
    patient_id = new_patient(sqlite_clinic, "H4")
    browser, token = sqlite_clinic.browser("clinician")
    items = ("assistance_walking", "rise_from_chair", "climb_stairs", "falls")
    # SARC-F 0 then 2 (strength 0 → 2, the other four items 0): a total that rose.
    for day, strength in (("2024-06-01", "0"), ("2025-01-10", "2")):
        form = {"csrf_token": token, "visit_date": day, "sarc_f_strength": strength}
        form |= {f"sarc_f_{item}": "0" for item in items}
        assert post(browser, f"/patients/{patient_id}/visits/new", form).status_code == 303
    sarc_f = chart_of(get(browser, f"/patients/{patient_id}").text, "SARC-F (points)")
    assert re.findall(r'class="segment ([a-z]+)"', sarc_f) == ["worse"]


def test_a_change_below_the_meaningful_difference_is_not_flagged(sqlite_clinic: Clinic) -> None:
    # 20 → 16 kg is 4 kg, under Bohannon's 6.5 kg.
    grip = chart_of(_grip_history(sqlite_clinic, "H2", "20", "16"), "Grip strength (kg)")
    assert "meaningful" not in grip
    assert re.findall(r'<circle [^>]*class="([^"]+)"', grip) == ["point same", "point worse"]


# -- administration -----------------------------------------------------------------------------


def _settings_form(token: str, **extra: str) -> dict[str, str]:
    return {"csrf_token": token, "lead": "awgs2019", "definition_ewgsop2": "on", **extra}


def test_the_clinic_name_from_the_settings_heads_the_report_page_and_pdf(clinic: Clinic) -> None:
    # Both databases: the name is a JSON string in the settings table.
    api = clinic.api("clinician")
    visit = add_visit(api, add_patient(api, "CN-1")["id"])
    admin, token = clinic.browser("admin")
    name = "Geriatric Medicine, Ward 7 · 老年医学科"
    # Not named yet: the report carries no clinic line.
    clinician, _ = clinic.browser("clinician")
    assert 'class="clinic-name"' not in get(clinician, f"/visits/{visit['id']}/report").text

    saved = post(admin, "/admin/settings", _settings_form(token, clinic_name=f"  {name} "))
    assert saved.status_code == 303, saved.text
    assert f'value="{name}"' in get(admin, "/admin").text
    page = get(clinician, f"/visits/{visit['id']}/report").text
    assert f'<p class="clinic-name">{name}</p>' in page
    # The page's header names the clinic before the report's title.
    assert page.index(name) < page.index("Sarcopenia assessment report</h1>")
    pdf = api.get(f"/api/v1/visits/{visit['id']}/report.pdf")
    assert pdf.status_code == 200
    first = "".join(pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text().split())
    assert "".join(name.split()) in first

    # A name with a control character is refused, naming the field; nothing changes.
    refused = post(admin, "/admin/settings", {**_settings_form(token), "clinic_name": "Ward\x07"})
    assert refused.status_code == 422
    assert 'data-field="clinic_name"' in refused.text
    too_long = post(admin, "/admin/settings", _settings_form(token, clinic_name="x" * 201))
    assert too_long.status_code == 422 and 'data-field="clinic_name"' in too_long.text
    assert (
        f'<p class="clinic-name">{name}</p>' in get(clinician, f"/visits/{visit['id']}/report").text
    )
    # An empty name takes the line off the report.
    assert post(admin, "/admin/settings", _settings_form(token, clinic_name="")).status_code == 303
    assert 'class="clinic-name"' not in get(clinician, f"/visits/{visit['id']}/report").text


def test_creating_an_account_shows_a_confirmation(sqlite_clinic: Clinic) -> None:
    admin, token = sqlite_clinic.browser("admin")
    form = {
        "csrf_token": token,
        "username": "nurse_li",
        "display_name": "Li",
        "password": PASSWORD,
        "role_clinician": "on",
        "language": "en",
    }
    created = post(admin, "/admin/users", form)
    # Redirected, so a reload does not post the form again.
    assert created.status_code == 303
    assert re.fullmatch(r"/admin\?created=\d+", created.headers["location"]), created.headers
    shown = get(admin, created.headers["location"]).text
    notice = re.search(r'<div class="notice" role="status">([^<]*)</div>', shown)
    assert notice, "no confirmation after creating an account"
    assert notice.group(1) == "Account nurse_li created (clinician)."
    # The plain page and an unknown id show no confirmation.
    assert 'class="notice"' not in get(admin, "/admin").text
    for other in ("999999", "0", "-1", "abc", "²", "9" * 40):
        assert 'class="notice"' not in get(admin, f"/admin?created={other}").text, other


# -- one label per field ------------------------------------------------------------------------


def _label_cells(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<th>([^<]*)</th>", html)]


def test_a_field_has_one_label_on_the_form_result_report_history_and_export(
    sqlite_clinic: Clinic,
) -> None:
    # Issue 12: "one field has three different labels". Grip and gait speed are read from
    # fields.toml's one `label` everywhere a person sees them, translated at the edge.
    clinic = sqlite_clinic
    patient_id = new_patient(clinic)
    browser, token = clinic.browser("clinician")
    form = get(browser, f"/patients/{patient_id}/visits/new").text
    assert '<span class="label">Grip strength</span>' in form
    assert '<span class="label">Usual gait speed</span>' in form
    saved = post(
        browser, f"/patients/{patient_id}/visits/new", {**SEVERE_AWGS, "csrf_token": token}
    )
    visit_url = saved.headers["location"]
    result = _label_cells(get(browser, visit_url).text)
    report = _label_cells(get(browser, f"{visit_url}/report").text)
    for cells in (result, report):
        assert cells.count("Grip strength") == 1, cells
        # Measured directly, gait speed is one row (not again as a derived value).
        assert cells.count("Usual gait speed") == 1, cells
    history = get(browser, f"/patients/{patient_id}").text
    chart_of(history, "Grip strength (kg)")
    chart_of(history, "Usual gait speed (m/s)")
    dictionary = clinic.api("researcher").get("/api/v1/export/dictionary").json()
    described = {c["column"]: c["description"] for c in dictionary}
    assert described["grip_kg"] == "Grip strength"
    assert described["grip_kg_trial_1"] == "Grip strength, trial 1"
    assert described["gait_speed_m_s"] == "Usual gait speed"
    # In Chinese, the one label's one translation on every page.
    post(browser, "/account/language", {"csrf_token": token, "language": "zh-CN", "next": "/"})
    assert (
        '<span class="label">握力</span>' in get(browser, f"/patients/{patient_id}/visits/new").text
    )
    for page in (visit_url, f"{visit_url}/report"):
        assert _label_cells(get(browser, page).text).count("握力") == 1, page
    chart_of(get(browser, f"/patients/{patient_id}").text, "握力 (kg)")


def test_the_visit_form_file_gives_no_second_label_for_a_record_field() -> None:
    form_file = tomllib.loads(files("sarcokit.web").joinpath("visit_form.toml").read_text("utf-8"))
    specs = field_specs()
    for section in form_file["sections"]:
        for entry in section["fields"]:
            if entry["field"] in specs:
                assert "label" not in entry, entry["field"]
                assert specs[entry["field"]].label, f"fields.toml: {entry['field']} has no label"
    for entry in form_file["history"]:
        assert "label" not in entry or entry["input"] not in specs, entry


def test_a_reason_shows_a_derived_value_rounded_as_the_table_shows_it(
    sqlite_clinic: Clinic,
) -> None:
    # A 4 m walk in 3.8 s is 1.0526… m/s: the table shows 1.05 m/s, and so must the reason.
    patient_id = new_patient(sqlite_clinic)
    browser, token = sqlite_clinic.browser("clinician")
    form = {k: v for k, v in SEVERE_AWGS.items() if k != "gait_speed_m_s"}
    form |= {"csrf_token": token, "walk_distance_m": "4", "walk_time_s": "3.8"}
    saved = post(browser, f"/patients/{patient_id}/visits/new", form)
    assert saved.status_code == 303, saved.text
    page = get(browser, saved.headers["location"]).text
    reasons = re.findall(r"<li[^>]*>([^<]*gait speed[^<]*)</li>", result_section(page, "awgs2019"))
    assert reasons, "no reason names the gait speed"
    assert all("1.05 m/s" in r and "1.053" not in r for r in reasons), reasons
    row = re.search(r"<th>Usual gait speed</th><td>([^<]*)</td>", page)
    assert row and row.group(1).split() == ["1.05", "m/s"], row


def test_an_account_form_problem_reads_as_the_form_names_its_fields(sqlite_clinic: Clinic) -> None:
    # Issue 12: creating an account without a role said "roles = []".
    admin, token = sqlite_clinic.browser("admin")
    form = {"csrf_token": token, "username": "nurse_wu", "password": PASSWORD, "language": "en"}
    refused = post(admin, "/admin/users", form)
    assert refused.status_code == 422
    problems = re.findall(r'<li data-field="roles">([^<]*)</li>', refused.text)
    assert problems == ["Roles: expected one or more of admin, clinician, researcher."], problems
    assert "roles = " not in refused.text
