"""The SMART launch in a real browser, the EHR on another site than the clinic: the EHR's
redirect back is a cross-site navigation that carries no SameSite=Strict session cookie, so the
clinic must move the browser inside itself before it checks the session."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from interop.server import fhir_server
from interop.smart_server import CLIENT_ID, MRN, AuthServer, auth_server
from interop.test_smart import EXPECTED_VALUES, ehr_patient, expected_sources, load, sources_of
from sarcokit.web.db import transaction
from sarcokit.web.store import create_user
from web.support import PASSWORD, make_app
from web.test_browser import Clinic, Watch, _free_port, browser, playwright, serve_clinic

__all__ = ["auth_server", "browser", "fhir_server", "playwright"]

USERNAME = "dr_smart"


@pytest.fixture(scope="module")
def smart_clinic(
    tmp_path_factory: pytest.TempPathFactory, auth_server: AuthServer
) -> Iterator[Clinic]:
    """The clinic served as http://localhost:…, with the test EHR (on 127.0.0.1) allow-listed."""
    data_dir = tmp_path_factory.mktemp("smart-clinic")
    app = make_app(f"sqlite:///{(data_dir / 'sarcokit.db').as_posix()}", data_dir)
    with transaction(app.state.sessions) as db:
        create_user(db, None, USERNAME, "Dr Smart", PASSWORD, ["clinician"])
    app.state.engine.dispose()
    port = _free_port()
    auth_server.redirect_uri = f"http://localhost:{port}/smart/callback"
    settings = data_dir / "smart.json"
    issuers = {auth_server.fhir: {"client_id": CLIENT_ID, "identifier_system": MRN}}
    document = {"redirect_uri": auth_server.redirect_uri, "issuers": issuers}
    settings.write_text(json.dumps(document), "utf-8")
    env = {"SARCOKIT_SMART_CONFIG": str(settings)}
    with serve_clinic(data_dir, env, "localhost", port) as clinic:
        yield clinic


def test_a_launch_from_another_site_opens_the_filled_visit(
    fhir_server: str, auth_server: AuthServer, smart_clinic: Clinic, browser: Browser
) -> None:
    pid = "smart-browser"
    load(fhir_server, ehr_patient(pid, f"MRN-{pid}"))
    context = browser.new_context()
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    # Signed in to the clinic first: the session cookie exists, and is SameSite=Strict.
    page.goto(f"{smart_clinic.url}/login")
    page.fill('input[name="username"]', USERNAME)
    page.fill('input[name="password"]', PASSWORD)
    page.click('form[action="/login"] button[type="submit"]')
    page.wait_for_url(re.compile(r"/patients"))
    # The EHR's chart, on another site, launches the clinic.
    launch = auth_server.new_launch(pid)
    page.goto(f"{auth_server.base}/ehr?app={smart_clinic.url}/smart/launch&launch={launch}")
    page.click("#launch")
    page.wait_for_url(re.compile(r"/smart/launches/"))
    page.wait_for_selector("form.visit")
    html = page.content()
    assert sources_of(html) == expected_sources(pid)
    for name in ("grip_kg__1", "gait_speed_m_s", "height_m", "asm_kg"):
        assert page.input_value(f'input[name="{name}"]') == EXPECTED_VALUES[name]
    page.click('form.visit button.primary[type="submit"]')
    page.wait_for_url(re.compile(r"/visits/\d+$"))
    assert page.get_attribute(".smart-write-back", "data-write-back") == "written"
    assert not watch.errors, watch.errors
    context.close()
