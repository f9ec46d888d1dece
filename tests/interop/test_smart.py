"""SMART on FHIR EHR launch of the clinic against a small test authorisation server in front of
the local FHIR server: the launch, the pre-filled visit with its sources, the write-back (once,
however often it is sent), and every refusal on the way."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from interop.server import fhir_server, post_transaction, search
from interop.smart_server import CLIENT_ID, MRN, REDIRECT_URI, AuthServer, auth_server, s256
from interop.support import PROJECT, SARC_F, observation
from sarcokit.fhir.smart import code_challenge
from sarcokit.web.models import AuditEvent, Patient, SmartLaunch, Visit
from sarcokit.web.smart_store import SmartConfig, SmartIssuer
from web.support import (
    PASSWORD,
    Clinic,
    add_patient,
    clinic,
    csrf_of,
    database_url,
    sqlite_clinic,
    sqlite_url,
)

__all__ = ["auth_server", "clinic", "database_url", "fhir_server", "sqlite_clinic", "sqlite_url"]

LEAD = "awgs2019"
PROJECT_BASE = "http://sarcokit.org/fhir/"
TODAY = datetime.now(UTC).date()
SEEN = (TODAY - timedelta(days=3)).isoformat()


# -- the EHR's record -------------------------------------------------------------------------


def ehr_patient(pid: str, mrn: str, birth: str = "1944-05-20") -> list[dict[str, Any]]:
    """An EHR patient (the AWGS 2019 worked example: a woman with grip 16.0 kg, gait 0.7 m/s,
    DXA ASM 11.9 kg at 150 cm, severe sarcopenia; Chen et al. JAMDA 2020;21:300) with
    observations the clinic must leave out, and a SARC-F response."""
    subject: dict[str, Any] = {"subject": {"reference": f"Patient/{pid}"}}
    return [
        {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [
                {"system": "http://hospital.example/fhir/insurance", "value": "INS-1"},
                {"system": MRN, "value": mrn},
            ],
            "name": [{"family": "Chen", "given": ["Mei"]}],
            "gender": "female",
            "birthDate": birth,
        },
        observation(f"{pid}-grip-r1", "83174-3", 15.5, "kg", SEEN, **subject),
        observation(f"{pid}-grip-r2", "83174-3", 16.0, "kg", SEEN, **subject),
        observation(f"{pid}-grip-l1", "83173-5", 14.0, "kg", SEEN, **subject),
        observation(f"{pid}-gait", "83172-7", 0.7, "m/s", SEEN, **subject),
        observation(f"{pid}-height", "8302-2", 150, "cm", SEEN, **subject),
        observation(f"{pid}-asm", "asm-dxa", 11.9, "kg", SEEN, system=PROJECT, **subject),
        # Too old for grip's look-back window, and entered in error: both left out.
        observation(f"{pid}-grip-old", "83174-3", 30.0, "kg", "2019-01-01", **subject),
        observation(
            f"{pid}-gait-wrong", "83172-7", 1.4, "m/s", SEEN, status="entered-in-error", **subject
        ),
        {
            "resourceType": "QuestionnaireResponse",
            "id": f"{pid}-sarcf",
            "questionnaire": SARC_F,
            "status": "completed",
            "subject": {"reference": f"Patient/{pid}"},
            "authored": SEEN,
            "item": [
                {"linkId": link, "answer": [{"valueCoding": {"code": str(score)}}]}
                for link, score in {
                    "sarc_f_strength": 2,
                    "sarc_f_assistance_walking": 1,
                    "sarc_f_rise_from_chair": 1,
                    "sarc_f_climb_stairs": 2,
                    "sarc_f_falls": 0,
                }.items()
            ],
        },
    ]


# The sources each pre-filled input must show, by the test data above (input, resource, date).
def expected_sources(pid: str) -> set[tuple[str, str, str]]:
    found = {
        ("grip_kg", f"Observation/{pid}-grip-r2", SEEN),
        ("gait_speed_m_s", f"Observation/{pid}-gait", SEEN),
        ("height_m", f"Observation/{pid}-height", SEEN),
        ("asm_kg", f"Observation/{pid}-asm", SEEN),
        # ASM by DXA: its code says the method.
        ("asm_method", f"Observation/{pid}-asm", SEEN),
    }
    for link in (
        "sarc_f_strength",
        "sarc_f_assistance_walking",
        "sarc_f_rise_from_chair",
        "sarc_f_climb_stairs",
        "sarc_f_falls",
    ):
        found.add((link, f"QuestionnaireResponse/{pid}-sarcf", SEEN))
    return found


EXPECTED_VALUES = {
    "grip_kg__1": "16",
    "grip_kg__unit": "grip_kg",
    "gait_speed_m_s": "0.7",
    "height_m": "150",
    "height_m__unit": "height_cm",
    "asm_kg": "11.9",
    "asm_method": "dxa",
    "sarc_f_strength": "2",
    "sarc_f_assistance_walking": "1",
    "sarc_f_rise_from_chair": "1",
    "sarc_f_climb_stairs": "2",
    "sarc_f_falls": "0",
}


def load(fhir: str, resources: list[dict[str, Any]]) -> None:
    """Put resources on the FHIR server under their ids."""
    entries = [
        {
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in resources
    ]
    post_transaction(fhir, {"resourceType": "Bundle", "type": "transaction", "entry": entries})


# -- a browser's view of the pages ------------------------------------------------------------


class _Form(HTMLParser):
    """What a browser would post from the page's visit form, as filled."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._first = False
        self._in_visit = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "visit" in a.get("class", ""):
            self._in_visit, self.action = True, a["action"]
        if not self._in_visit:
            return
        if tag == "input" and a.get("type") == "radio":
            if "checked" in a:
                self.values[a["name"]] = a["value"]
        elif tag == "input" and a.get("name"):
            self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a["name"]
            self._first = True
        elif tag == "option" and self._select:
            # A browser posts the selected option, or the first when none is selected.
            if "selected" in a or self._first:
                self.values[self._select] = a["value"]
            self._first = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if tag == "form":
            self._in_visit = False


def visit_form(html: str) -> tuple[str, dict[str, str]]:
    """The visit form's action and the values it would post."""
    parser = _Form()
    parser.feed(html)
    return parser.action, parser.values


def sources_of(html: str) -> set[tuple[str, str, str]]:
    """(input, resource, date) of every source shown beside an input."""
    return set(
        re.findall(r'data-field="([^"]+)" data-resource="([^"]+)" data-date="([^"]+)"', html)
    )


def ready(fhir: str, auth: AuthServer, clinic: Clinic, pid: str) -> TestClient:
    """The EHR patient loaded, the EHR allow-listed, and a clinician's browser."""
    load(fhir, ehr_patient(pid, f"MRN-{pid}"))
    configure(clinic, auth)
    browser, _ = clinic.browser("clinician")
    return browser


def configure(clinic: Clinic, auth: AuthServer) -> None:
    """Allow-list the test EHR in the clinic."""
    clinic.app.state.smart_config = SmartConfig(
        REDIRECT_URI, {auth.fhir: SmartIssuer(CLIENT_ID, MRN)}
    )


def start(client: TestClient, auth: AuthServer, pid: str) -> httpx.Response:
    """The EHR launches the clinic for a patient; the clinic's redirect to authorize."""
    launch = auth.new_launch(pid)
    response: httpx.Response = client.get(
        "/smart/launch", params={"iss": auth.fhir, "launch": launch}, follow_redirects=False
    )
    return response


def authorise(client: TestClient, auth: AuthServer, pid: str) -> str:
    """Launch, authorise at the EHR (which approves at once): the callback URL."""
    response = start(client, auth, pid)
    assert response.status_code == 302, response.text
    granted = httpx.get(response.headers["location"], follow_redirects=False)
    assert granted.status_code == 302, granted.text
    callback = granted.headers["location"]
    assert callback.startswith(REDIRECT_URI)
    return callback


def launch_page_url(client: TestClient, callback: str) -> str:
    """Follow the callback to the page that moves the browser inside the clinic."""
    page = client.get(callback, follow_redirects=False)
    assert page.status_code == 200, page.text
    found = re.search(r'http-equiv="refresh" content="0;url=(/smart/launches/[^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def written_back(fhir: str, pid: str) -> list[dict[str, Any]]:
    """The clinic's resources on the FHIR server for a patient (by their project identifiers)."""
    found = [
        *search(fhir, f"Observation?patient={pid}"),
        *search(fhir, f"DiagnosticReport?patient={pid}"),
    ]
    return [
        r
        for r in found
        if any(i.get("system", "").startswith(PROJECT_BASE) for i in r.get("identifier", []))
    ]


def audit_actions(clinic: Clinic) -> list[tuple[str, str]]:
    with clinic.app.state.sessions() as db:
        events = db.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.action, e.detail) for e in events]


@pytest.fixture
def auth(auth_server: AuthServer) -> AuthServer:
    auth_server.reset()
    return auth_server


# -- the whole launch -------------------------------------------------------------------------


def test_a_launch_fills_the_visit_and_writes_the_result_back(
    fhir_server: str, auth: AuthServer, clinic: Clinic
) -> None:
    pid = f"smart-happy-{clinic.app.state.engine.dialect.name}"
    resources = ehr_patient(pid, f"MRN-{pid}")
    load(fhir_server, resources)
    configure(clinic, auth)

    browser = clinic.client()
    callback = authorise(browser, auth, pid)
    where = launch_page_url(browser, callback)
    # Not signed in to the clinic: the launch waits for the clinic's own sign-in.
    refused = browser.get(where, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/login"
    login = browser.get("/login")
    signed = browser.post(
        "/login",
        data={
            "csrf_token": csrf_of(login.text),
            "username": clinic.usernames["clinician"],
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == where
    page = browser.get(where)
    assert page.status_code == 200, page.text

    # Every pre-filled value, each with its source observation and date.
    action, values = visit_form(page.text)
    assert action == f"{where}/visit"
    for name, value in EXPECTED_VALUES.items():
        assert values.get(name) == value, (name, values.get(name))
    assert sources_of(page.text) == expected_sources(pid)
    assert 'data-match="new"' in page.text and f"MRN-{pid}" in page.text
    assert f"Observation/{pid}-grip-old" in page.text  # listed as not used, with why
    assert f"Observation/{pid}-gait-wrong" in page.text
    # Every FHIR read carried the token the test server issued.
    assert auth.fhir_requests and all(t in auth.tokens for _, _, t in auth.fhir_requests)
    assert httpx.get(f"{auth.fhir}/Patient/{pid}").status_code == 401

    saved = browser.post(action, data=values, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    visit_id = int(saved.headers["location"].rsplit("/", 1)[1])
    shown = browser.get(saved.headers["location"])
    assert 'data-write-back="written"' in shown.text

    # The result the clinic saved is the result of assessing the EHR's Bundle through the API.
    api = clinic.api("clinician")
    stored = api.get(f"/api/v1/visits/{visit_id}/result").json()
    bundle = {"resourceType": "Bundle", "type": "collection"}
    bundle["entry"] = [{"resource": r} for r in resources]  # type: ignore[assignment]
    assessed = api.post("/api/v1/assess/fhir", json=bundle)
    assert assessed.status_code == 200, assessed.text
    assert stored["definitions"] == assessed.json()["definitions"]
    assert stored["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"

    # Written back: one DiagnosticReport with one Observation per definition.
    [report] = search(fhir_server, f"DiagnosticReport?patient={pid}")
    with clinic.app.state.sessions() as db:
        patient = db.scalar(select(Patient).where(Patient.record_number == f"MRN-{pid}"))
        assert patient is not None and patient.name == "Mei Chen"
        assert patient.date_of_birth == date(1944, 5, 20)
    assert report["identifier"][0]["value"].endswith(f"/visit/{visit_id}")
    written = search(fhir_server, f"Observation?patient={pid}")
    lead = [o for o in written if o.get("method", {}).get("coding", [{}])[0].get("code") == LEAD]
    assert lead[0]["valueCodeableConcept"]["coding"][0]["code"] == "severe_sarcopenia"
    # derivedFrom names the EHR observations the kept values came from.
    derived = {d["reference"] for d in lead[0]["derivedFrom"]}
    assert f"Observation/{pid}-grip-r2" in derived and f"Observation/{pid}-asm" in derived

    # Saving again (the form sent twice) adds no visit and no resource.
    again = browser.post(action, data=values, follow_redirects=False)
    assert again.headers["location"] == f"/visits/{visit_id}"
    assert len(search(fhir_server, f"Observation?patient={pid}")) == len(written)
    assert len(search(fhir_server, f"DiagnosticReport?patient={pid}")) == 1
    with clinic.app.state.sessions() as db:
        assert len(db.scalars(select(Visit).where(Visit.patient_id == patient.id)).all()) == 1
    actions = [a for a, _ in audit_actions(clinic)]
    for expected in ("smart.launch", "smart.authorised", "smart.read", "smart.write_back"):
        assert expected in actions

    # The next launch for the same EHR patient finds the clinic patient by the link.
    browser_again = authorise(browser, auth, pid)
    second = browser.get(launch_page_url(browser, browser_again))
    assert 'data-match="linked"' in second.text


@pytest.mark.parametrize("failure", ["refuse", "lose"])
def test_a_failed_write_back_keeps_the_visit_and_a_retry_writes_once(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic, failure: str
) -> None:
    clinic = sqlite_clinic
    pid = f"smart-fail-{failure}"
    browser = ready(fhir_server, auth, clinic, pid)
    page = browser.get(launch_page_url(browser, authorise(browser, auth, pid)))
    action, values = visit_form(page.text)
    # "refuse": the EHR answers 503 and writes nothing; "lose": it writes, and the answer is lost.
    auth.write_failure = failure
    saved = browser.post(action, data=values, follow_redirects=False)
    assert saved.status_code == 303
    shown = browser.get(saved.headers["location"])
    assert 'data-write-back="failed"' in shown.text
    assert "HTTP 503" in shown.text or "HTTP 502" in shown.text
    assert "smart.write_back_failed" in [a for a, _ in audit_actions(clinic)]
    before = len(written_back(fhir_server, pid))
    assert (before > 0) == (failure == "lose")

    auth.write_failure = None
    visit_id = saved.headers["location"].rsplit("/", 1)[1]
    retried = browser.post(
        f"/visits/{visit_id}/write-back",
        data={"csrf_token": csrf_of(shown.text)},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    assert 'data-write-back="written"' in browser.get(f"/visits/{visit_id}").text
    after = written_back(fhir_server, pid)
    assert len(search(fhir_server, f"DiagnosticReport?patient={pid}")) == 1
    if failure == "lose":
        # Conditional create: the second transaction found every resource and added none.
        assert len(after) == before
        with clinic.app.state.sessions() as db:
            launch = db.scalar(select(SmartLaunch).where(SmartLaunch.visit_id == int(visit_id)))
            assert launch is not None and "0 created" in launch.write_back_detail


# -- refusals ---------------------------------------------------------------------------------


def test_an_iss_not_allow_listed_is_refused_before_any_request(
    auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    configure(sqlite_clinic, auth)
    browser = sqlite_clinic.client()
    other = "http://127.0.0.1:9/fhir"
    refused = browser.get("/smart/launch", params={"iss": other, "launch": "x"})
    assert refused.status_code == 403
    assert "not an EHR allow-listed" in refused.text and other in refused.text
    assert auth.discovery_requests == 0
    refusal = f"iss: iss {other!r} is not an EHR allow-listed to launch this clinic"
    assert ("smart.refused", refusal) in audit_actions(sqlite_clinic)
    missing = browser.get("/smart/launch", params={"iss": auth.fhir})
    assert missing.status_code == 400 and "launch" in missing.text


def test_discovery_without_s256_is_refused(auth: AuthServer, sqlite_clinic: Clinic) -> None:
    configure(sqlite_clinic, auth)
    auth.configuration = {"code_challenge_methods_supported": ["plain"]}
    response = start(sqlite_clinic.client(), auth, "nobody")
    assert response.status_code == 502
    assert "code_challenge_methods_supported" in response.text and "S256" in response.text


def test_the_authorisation_request_carries_pkce_and_the_scopes(
    auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    configure(sqlite_clinic, auth)
    response = start(sqlite_clinic.client(), auth, "nobody")
    query = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["aud"] == auth.fhir and query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == REDIRECT_URI and query["state"]
    # The server offers permission-v2: SMART 2.0 scopes.
    assert set(query["scope"].split()) >= {
        "launch",
        "patient/Patient.r",
        "patient/Observation.crus",
        "patient/QuestionnaireResponse.rs",
        "patient/DiagnosticReport.cus",
    }
    with sqlite_clinic.app.state.sessions() as db:
        [row] = db.scalars(select(SmartLaunch)).all()
        # The verifier stays in the clinic; only its S256 challenge travels.
        assert row.verifier not in response.headers["location"]
        assert s256(row.verifier) == query["code_challenge"]
        assert 43 <= len(row.verifier) <= 128


def test_pkce_matches_the_rfc_7636_example() -> None:
    # RFC 7636 Appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_wrong_pkce_verifier_is_refused(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    configure(sqlite_clinic, auth)
    browser = sqlite_clinic.client()
    callback = authorise(browser, auth, "nobody")
    with sqlite_clinic.app.state.sessions() as db, db.begin():
        # As if the code had been issued for another client's challenge.
        db.execute(update(SmartLaunch).values(verifier="x" * 64))
    page = browser.get(callback)
    assert page.status_code == 502
    assert "invalid_grant" in page.text and "PKCE verification failed" in page.text
    assert "smart.refused" in [a for a, _ in audit_actions(sqlite_clinic)]


def test_an_unknown_replayed_expired_or_foreign_state_is_refused(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    clinic = sqlite_clinic
    configure(clinic, auth)
    browser = clinic.client()
    callback = authorise(browser, auth, "nobody")
    query = parse_qs(urlsplit(callback).query)
    unknown = browser.get("/smart/callback", params={"code": query["code"][0], "state": "forged"})
    assert unknown.status_code == 400 and "state is unknown" in unknown.text
    # Another browser (without the launch's cookie) cannot complete it.
    elsewhere = TestClient(clinic.app).get(callback)
    assert elsewhere.status_code == 400 and "browser that started" in elsewhere.text
    assert browser.get(callback).status_code == 200
    replayed = browser.get(callback)
    assert replayed.status_code == 400 and "already used" in replayed.text

    late = authorise(browser, auth, "nobody")
    with clinic.app.state.sessions() as db, db.begin():
        db.execute(
            update(SmartLaunch)
            .where(SmartLaunch.used_at.is_(None))
            .values(state_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = browser.get(late)
    assert expired.status_code == 400 and "expired" in expired.text
    details = [d for a, d in audit_actions(clinic) if a == "smart.refused"]
    assert len(details) == 4 and all(d.startswith("state:") for d in details)


@pytest.mark.parametrize("failure", ["error", "no_patient"])
def test_a_token_endpoint_failure_is_named(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic, failure: str
) -> None:
    configure(sqlite_clinic, auth)
    browser = sqlite_clinic.client()
    callback = authorise(browser, auth, "nobody")
    auth.token_failure = failure
    page = browser.get(callback)
    assert page.status_code == 502
    if failure == "error":
        assert f"token endpoint {auth.base}/token answered HTTP 500: server_error" in page.text
    else:
        assert "patient = None; expected the id of the Patient in context" in page.text


def test_the_launch_is_for_clinicians_and_its_own_clinician(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    clinic = sqlite_clinic
    pid = "smart-owner"
    load(fhir_server, ehr_patient(pid, f"MRN-{pid}"))
    configure(clinic, auth)
    browser, _ = clinic.browser("researcher")
    where = launch_page_url(browser, authorise(browser, auth, pid))
    assert browser.get(where, follow_redirects=False).status_code == 403
    clinician, _ = clinic.browser("clinician")
    # The launch's cookie is in the researcher's browser only.
    assert clinician.get(where, follow_redirects=False).status_code == 403


def test_an_existing_clinic_patient_is_matched_by_record_number_and_checked(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    clinic = sqlite_clinic
    configure(clinic, auth)
    api = clinic.api("clinician")
    add_patient(api, "MRN-smart-same", name="Mei Chen", sex="female", date_of_birth="1944-05-20")
    add_patient(api, "MRN-smart-dob", name="Mei Chen", sex="female", date_of_birth="1944-05-21")
    load(fhir_server, ehr_patient("smart-same", "MRN-smart-same"))
    load(fhir_server, ehr_patient("smart-dob", "MRN-smart-dob"))
    browser, _ = clinic.browser("clinician")
    same = browser.get(launch_page_url(browser, authorise(browser, auth, "smart-same")))
    assert 'data-match="record_number"' in same.text
    differs = browser.get(launch_page_url(browser, authorise(browser, auth, "smart-dob")))
    assert differs.status_code == 409
    assert "date_of_birth 1944-05-21, the EHR Patient 1944-05-20" in differs.text


def test_writing_back_needs_the_scope(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    pid = "smart-readonly"
    browser = ready(fhir_server, auth, sqlite_clinic, pid)
    auth.granted_scope = "launch patient/Patient.r patient/Observation.rs"
    page = browser.get(launch_page_url(browser, authorise(browser, auth, pid)))
    assert "did not grant writing" in page.text
    action, values = visit_form(page.text)
    saved = browser.post(action, data=values, follow_redirects=False)
    shown = browser.get(saved.headers["location"])
    assert 'data-write-back="failed"' in shown.text
    assert search(fhir_server, f"DiagnosticReport?patient={pid}") == []


def test_an_expired_launch_asks_for_a_new_one_and_its_token_is_dropped(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    pid = "smart-expired"
    browser = ready(fhir_server, auth, sqlite_clinic, pid)
    where = launch_page_url(browser, authorise(browser, auth, pid))
    with sqlite_clinic.app.state.sessions() as db, db.begin():
        db.execute(update(SmartLaunch).values(token_expires_at=datetime.now(UTC)))
    page = browser.get(where)
    assert page.status_code == 410 and "launch again" in page.text
    # The next launch drops the tokens that can no longer be used.
    start(browser, auth, pid)
    with sqlite_clinic.app.state.sessions() as db:
        tokens = db.scalars(select(SmartLaunch.access_token)).all()
        assert tokens == [None, None]


def test_a_corrected_visit_replaces_what_was_written_back(
    fhir_server: str, auth: AuthServer, sqlite_clinic: Clinic
) -> None:
    clinic = sqlite_clinic
    pid = "smart-corrected"
    browser = ready(fhir_server, auth, clinic, pid)
    page = browser.get(launch_page_url(browser, authorise(browser, auth, pid)))
    action, values = visit_form(page.text)
    saved = browser.post(action, data=values, follow_redirects=False)
    visit_id = int(saved.headers["location"].rsplit("/", 1)[1])
    before = {r["identifier"][0]["value"]: r for r in written_back(fhir_server, pid)}
    lead_key = next(k for k in before if k.endswith(f"/{LEAD}"))
    assert before[lead_key]["valueCodeableConcept"]["coding"][0]["code"] == "severe_sarcopenia"
    assert any(k.endswith("/sarc-f-total") for k in before)

    # The grip was typed wrong, and the SARC-F was never asked: corrected in the clinic.
    api = clinic.api("clinician")
    visit = api.get(f"/api/v1/visits/{visit_id}").json()
    measurements = {k: v for k, v in visit["measurements"].items() if not k.startswith("sarc_f_")}
    measurements["grip_kg_trials"] = [25.5, 26.0]
    corrected = api.put(
        f"/api/v1/visits/{visit_id}",
        json={"visit_date": visit["visit_date"], "measurements": measurements,
              "reason": "grip trials typed in the wrong row; SARC-F not asked"},
    )  # fmt: skip
    assert corrected.status_code == 200, corrected.text

    after = {r["identifier"][0]["value"]: r for r in written_back(fhir_server, pid)}
    # Replaced in place: the same resources (same server ids), none added.
    assert set(after) == set(before)
    assert {r["id"] for r in after.values()} == {r["id"] for r in before.values()}
    assert len(search(fhir_server, f"DiagnosticReport?patient={pid}")) == 1
    lead = after[lead_key]
    # AWGS 2019 (Chen 2020): 26 kg ≥ 18 kg for women is normal strength; low mass with slow
    # gait is sarcopenia, no longer severe.
    assert lead["valueCodeableConcept"]["coding"][0]["code"] == "sarcopenia"
    assert lead["status"] == "corrected"
    # The grip no longer comes from the EHR's observation; the kept values still do.
    derived = {d["reference"] for d in lead["derivedFrom"]}
    assert f"Observation/{pid}-grip-r2" not in derived
    assert f"Observation/{pid}-asm" in derived
    # The SARC-F total the corrected visit no longer has is withdrawn, not left standing.
    [total] = [r for k, r in after.items() if k.endswith("/sarc-f-total")]
    assert total["status"] == "entered-in-error"
    [report] = [r for r in after.values() if r["resourceType"] == "DiagnosticReport"]
    assert report["status"] == "corrected"
    assert "sarc-f-total" not in str(report["result"])
    shown = browser.get(f"/visits/{visit_id}").text
    assert 'data-write-back="written"' in shown and "corrected visit" in shown
    with clinic.app.state.sessions() as db:
        launch = db.scalar(select(SmartLaunch).where(SmartLaunch.visit_id == visit_id))
        assert launch is not None
        assert "1 withdrawn (entered-in-error)" in launch.write_back_detail
        assert "0 created" in launch.write_back_detail

    # Correcting again once the token has expired: refused with why, until the clinician
    # launches the clinic from the EHR again; then the retry writes with the new launch's token.
    with clinic.app.state.sessions() as db, db.begin():
        db.execute(update(SmartLaunch).values(token_expires_at=datetime.now(UTC)))
    measurements["grip_kg_trials"] = [14.0, 15.0]
    again = api.put(
        f"/api/v1/visits/{visit_id}",
        json={"visit_date": visit["visit_date"], "measurements": measurements,
              "reason": "the first reading was right after all"},
    )  # fmt: skip
    assert again.status_code == 200, again.text
    shown = browser.get(f"/visits/{visit_id}").text
    assert 'data-write-back="failed"' in shown and "launch the clinic from the EHR again" in shown
    assert after[lead_key] == written_back_by_key(fhir_server, pid)[lead_key]
    browser.get(launch_page_url(browser, authorise(browser, auth, pid)))
    retried = browser.post(
        f"/visits/{visit_id}/write-back",
        data={"csrf_token": csrf_of(shown)},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    final = written_back_by_key(fhir_server, pid)
    assert set(final) == set(before)
    assert final[lead_key]["valueCodeableConcept"]["coding"][0]["code"] == "severe_sarcopenia"


def written_back_by_key(fhir: str, pid: str) -> dict[str, dict[str, Any]]:
    """The clinic's resources on the FHIR server for a patient, by identifier value."""
    return {r["identifier"][0]["value"]: r for r in written_back(fhir, pid)}
