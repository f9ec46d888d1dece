"""The clinic in a real browser: first run, a visit's result in two languages, PDF, history."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    StorageState,
    ViewportSize,
    sync_playwright,
)
from pypdf import PdfReader

from web.support import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
# Keep Chromium from reaching anything but the loopback clinic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
USERNAME = "dr_chen"
RECORD_NUMBER = "BRW-2026-001"
CLINIC_NAME = "Riverside Geriatric Clinic"
TODAY = date.today()
# The documented local definition example (issue 11), uploaded in the browser.
EXAMPLE = REPO / "examples" / "local_definition.toml"
LOCAL_ID = "example_local_bia"
# Six months before today, so the history chart spans a realistic follow-up interval.
EARLIER = TODAY - timedelta(days=182)


@dataclass
class Clinic:
    """The clinic server started for this module."""

    url: str
    data_dir: Path


@dataclass
class Watch:
    """Console errors and uncaught page errors (CSP violations are console errors)."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning") or "Content Security Policy" in message.text:
                where = message.location.get("url", "")
                self.errors.append(f"console {message.type}: {message.text} ({where})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def clinic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    """The real `sarcokit clinic serve` on a fresh SQLite database and a free loopback port."""
    with serve_clinic(tmp_path_factory.mktemp("clinic-data")) as clinic:
        yield clinic


@contextmanager
def serve_clinic(
    data_dir: Path,
    env_extra: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> Iterator[Clinic]:
    """`sarcokit clinic serve` on the data directory's SQLite database, reached as `host`."""
    port = port or _free_port()
    executable = Path(sys.executable).parent / "sarcokit"
    env = {**os.environ, "SARCOKIT_DATA_DIR": str(data_dir), **(env_extra or {})}
    env.pop("SARCOKIT_DATABASE_URL", None)
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [str(executable), "clinic", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{host}:{port}"
    try:
        # A guard against a hang, not a speed target: a loaded machine takes a while to import.
        deadline = time.monotonic() + 180
        # /login answers 200 only once the app has migrated and can render (it redirects
        # to /setup, which is followed, on a first run).
        while not _answers(f"{url}/login"):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (data_dir / "server.log").read_text(errors="replace")
                pytest.fail(f"the clinic did not start:\n{output}")
            time.sleep(0.2)
        yield Clinic(url, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs Debian's chromium package")
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


def _shoot(page: Page, tmp_path: Path, name: str) -> None:
    # Always written under tmp_path so the step is exercised; copied into the docs on request.
    page.screenshot(path=str(tmp_path / name), full_page=True)
    if os.environ.get("SARCOKIT_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def _shoot_pdf_page(pdf: bytes, tmp_path: Path, name: str) -> None:
    # A PDF's first page as PNG (pdfium), like _shoot: under tmp_path, copied on request.
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=1.5).to_pil()
    finally:
        document.close()
    image.save(tmp_path / name)
    if os.environ.get("SARCOKIT_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        image.save(SCREENSHOTS / name)


def _switch_language(page: Page, code: str) -> None:
    # The page after the redirect reads the user's language from the database: it is right
    # only because the change commits before the redirect is answered (this once flaked when
    # the commit ran after the response).
    with page.expect_navigation():
        page.click(f'header form[action="/account/language"] button[value="{code}"]')


def _fill_visit(
    page: Page,
    visit_date: date,
    grip: tuple[str, str],
    gait: str,
    asm: str,
    sarc_f: dict[str, str],
) -> None:
    page.fill('input[name="visit_date"]', visit_date.isoformat())
    for item, answer in sarc_f.items():
        page.check(f'input[name="{item}"][value="{answer}"]')
    page.fill('input[name="height_m"]', "150")
    page.select_option('select[name="height_m__unit"]', "height_cm")
    page.fill('input[name="weight_kg"]', "48")
    page.select_option('select[name="weight_kg__unit"]', "weight_kg")
    page.fill('input[name="grip_kg__1"]', grip[0])
    page.fill('input[name="grip_kg__2"]', grip[1])
    page.select_option('select[name="grip_kg__unit"]', "grip_kg")
    page.fill('input[name="gait_speed_m_s"]', gait)
    page.fill('input[name="asm_kg"]', asm)
    page.select_option('select[name="asm_method"]', "dxa")


def _submit_visit(page: Page) -> int:
    with page.expect_navigation():
        page.click('form.visit button.primary[type="submit"]')
    found = re.search(r"/visits/(\d+)$", page.url)
    assert found, f"saving the visit did not lead to its result page but to {page.url}"
    return int(found.group(1))


@pytest.fixture(scope="module")
def signed_in(clinic_server: Clinic, browser: Browser) -> StorageState:
    """First-run setup done in the browser; the administrator's cookies."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(f"{clinic_server.url}/")
    assert page.url == f"{clinic_server.url}/setup", "a clinic without accounts must open setup"
    code = (clinic_server.data_dir / "setup-code").read_text().strip()
    page.fill('input[name="setup_code"]', code)
    page.fill('input[name="username"]', USERNAME)
    page.fill('input[name="display_name"]', "Dr Chen Li")
    page.fill('input[name="password"]', PASSWORD)
    page.select_option('select[name="language"]', "en")
    with page.expect_navigation():
        page.click('form[action="/setup"] button[type="submit"]')
    # The administrator is also a clinician, so the first page is the patient list.
    assert page.url == f"{clinic_server.url}/patients"
    assert not (clinic_server.data_dir / "setup-code").exists(), "a used setup code must go"
    assert watch.errors == [], "\n".join(watch.errors)
    state = context.storage_state()
    context.close()
    return state


def _register_patient(
    page: Page, clinic: Clinic, record_number: str = RECORD_NUMBER, name: str = "Wang Fang"
) -> None:
    page.click('a[href="/patients/new"]')
    page.fill('input[name="record_number"]', record_number)
    page.fill('input[name="name"]', name)
    page.check('input[name="sex"][value="female"]')
    page.fill('input[name="date_of_birth"]', "1945-01-01")
    with page.expect_navigation():
        page.click('form[action="/patients/new"] button[type="submit"]')
    assert re.fullmatch(rf"{re.escape(clinic.url)}/patients/\d+", page.url), page.url


def test_visit_result_in_two_languages_pdf_and_history(
    clinic_server: Clinic, browser: Browser, signed_in: StorageState, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, storage_state=signed_in)
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    # The clinic's name, set once by the administrator, heads every report.
    page.goto(f"{clinic_server.url}/admin")
    page.fill('input[name="clinic_name"]', CLINIC_NAME)
    with page.expect_navigation():
        page.click('form[action="/admin/settings"] button[type="submit"]')
    assert page.input_value('input[name="clinic_name"]') == CLINIC_NAME
    page.goto(f"{clinic_server.url}/patients")
    _register_patient(page, clinic_server)
    patient_url = page.url

    # Six months earlier: grip 24 kg, above the AWGS 2019 women's cut-off of 18 kg, and gait
    # 0.95 m/s, so the charts show a decline across the grip cut-off line.
    page.click(f'a[href="{patient_url.removeprefix(clinic_server.url)}/visits/new"]')
    _fill_visit(
        page,
        EARLIER,
        grip=("23", "24"),
        gait="0.95",
        asm="12.4",
        sarc_f={
            "sarc_f_strength": "1",
            "sarc_f_assistance_walking": "0",
            "sarc_f_rise_from_chair": "0",
            "sarc_f_climb_stairs": "1",
            "sarc_f_falls": "0",
        },
    )
    _submit_visit(page)

    page.goto(f"{patient_url}/visits/new")
    # SARC-F 2+1+1+1+1 = 6 (Malmstrom & Morley 2013: >= 4 is positive). AWGS 2019 for a
    # woman: best grip 16 < 18 kg, gait 0.7 < 1.0 m/s, DXA ASMI 11.9 / 1.5² = 5.29 < 5.4.
    _fill_visit(
        page,
        TODAY,
        grip=("15.5", "16"),
        gait="0.7",
        asm="11.9",
        sarc_f={
            "sarc_f_strength": "2",
            "sarc_f_assistance_walking": "1",
            "sarc_f_rise_from_chair": "1",
            "sarc_f_climb_stairs": "1",
            "sarc_f_falls": "1",
        },
    )
    _shoot(page, tmp_path, "visit-form.png")
    # Enter in an input does not submit the visit (the form's default button is disabled);
    # a submission would fire the form's submit event while the key is handled.
    page.evaluate(
        """() => { window.submitted = false;
            window.watchSubmit = (event) => { window.submitted = true; event.preventDefault(); };
            document.querySelector("form.visit")
                .addEventListener("submit", window.watchSubmit); }"""
    )
    page.press('input[name="gait_speed_m_s"]', "Enter")
    assert page.evaluate("window.submitted") is False
    page.evaluate(
        """() => document.querySelector("form.visit")
            .removeEventListener("submit", window.watchSubmit)"""
    )
    assert page.url.endswith("/visits/new")
    visit_id = _submit_visit(page)

    awgs = page.locator('[data-definition="awgs2019"]')
    category = awgs.locator("[data-category]")
    assert category.get_attribute("data-category") == "severe_sarcopenia"
    # The engine's English labels are lower case (they also appear mid-sentence).
    assert category.inner_text().strip().casefold() == "severe sarcopenia"
    reasons = awgs.locator("ul.reasons li").all_inner_texts()
    # The best of the trials (16 kg) against the women's cut-off, in one reason line.
    grip_reason = [r for r in reasons if re.search(r"\b16(\.0+)? ?kg\b.*\b18 ?kg\b", r)]
    assert len(grip_reason) == 1, f"no reason compares grip 16 kg with 18 kg: {reasons}"
    # EWGSOP2 (Cruz-Jentoft 2019, Table 3): low strength in women is grip < 16 kg, so 16 kg is
    # normal strength and the algorithm stops at no sarcopenia.
    ewgsop2 = page.locator('[data-definition="ewgsop2"] [data-category]')
    assert ewgsop2.get_attribute("data-category") == "no_sarcopenia"
    assert "SARC-F" in page.locator("aside").inner_text()
    assert "6 / 10" in page.locator("aside").inner_text()
    assert page.locator("html").get_attribute("lang") == "en"
    _shoot(page, tmp_path, "visit-result-en.png")

    _switch_language(page, "zh-CN")
    assert page.url == f"{clinic_server.url}/visits/{visit_id}", "the switch must stay on the page"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    category = page.locator('[data-definition="awgs2019"] [data-category]')
    assert category.get_attribute("data-category") == "severe_sarcopenia"
    assert category.inner_text().strip() == "严重肌少症"
    _shoot(page, tmp_path, "visit-result-zh.png")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="下载 PDF").click()
    pdf_path = tmp_path / "report.pdf"
    download_info.value.save_as(pdf_path)
    assert pdf_path.read_bytes().startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf_path.read_bytes())).pages)
    assert RECORD_NUMBER in text

    _switch_language(page, "en")
    assert page.locator("html").get_attribute("lang") == "en"
    # Wait for the navigation itself: wait_for_load_state() right after a click can return for
    # the page still shown, and the checks below then read the old page.
    with page.expect_navigation():
        page.click(f'a[href="/visits/{visit_id}/report"]')
    assert RECORD_NUMBER in page.locator("header").inner_text()
    assert page.locator("header .clinic-name").inner_text().strip() == CLINIC_NAME
    # A print button, wired by the clinic's own script file (no inline script under the CSP),
    # and a way back to the visit.
    assert page.locator("button#print-report").is_visible()
    assert page.locator("a#back-to-visit").get_attribute("href") == f"/visits/{visit_id}"
    assert (
        page.locator('[data-definition="awgs2019"] [data-category]').get_attribute("data-category")
        == "severe_sarcopenia"
    )
    _shoot(page, tmp_path, "report.png")

    page.goto(patient_url)
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 2
    # Newest first: today's visit is severe sarcopenia under the lead definition.
    assert TODAY.isoformat() in rows.nth(0).inner_text()
    assert EARLIER.isoformat() in rows.nth(1).inner_text()
    headers = page.locator("table.list thead").inner_text()
    assert "AWGS 2019" in headers, f"the visit table names definitions by id: {headers}"
    assert "severe sarcopenia" in rows.nth(0).inner_text().casefold()
    # A fall of 8 kg in grip exceeds the meaningful change (about 5-6.5 kg, Bohannon 2019)
    # and 0.25 m/s in gait speed exceeds 0.1 m/s (Perera 2006): the newer point is ringed.
    for measure in ("Grip strength", "Usual gait speed"):
        svg = page.locator(".charts figure", has_text=measure).locator("svg.chart")
        assert svg.locator("circle.point").count() == 2, measure
        assert svg.locator("circle.point.meaningful").count() == 1, measure
        # Falls in grip and gait speed are changes for the worse: drawn in the clinic's red.
        segment = svg.locator("line.segment")
        assert segment.count() == 1 and "worse" in (segment.get_attribute("class") or "")
        stroke = segment.evaluate("line => getComputedStyle(line).stroke")
        assert stroke == "rgb(179, 38, 30)", (measure, stroke)
    _shoot(page, tmp_path, "patient-history.png")

    # A correction: gait re-timed. The visit shows what changed, who changed it and why.
    page.goto(f"{clinic_server.url}/visits/{visit_id}/edit")
    page.fill('input[name="gait_speed_m_s"]', "0.75")
    page.fill('input[name="reason"]', "gait speed re-timed with a stopwatch")
    assert _submit_visit(page) == visit_id
    correction = page.locator("section.correction")
    assert correction.count() == 1
    assert "gait speed re-timed with a stopwatch" in correction.inner_text()
    assert correction.locator("del").first.inner_text().strip() == "0.7 m/s"
    assert correction.locator("ins").first.inner_text().strip() == "0.75 m/s"
    _shoot(page, tmp_path, "correction-diff.png")

    # The PDF a clinician signs, page 1: clinic, patient, the lead definition's category, its
    # reasons and next steps, and the correction line.
    pdf = page.request.get(f"{clinic_server.url}/visits/{visit_id}/report.pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    first = " ".join(PdfReader(io.BytesIO(pdf.body())).pages[0].extract_text().split())
    for expected in (
        CLINIC_NAME,
        RECORD_NUMBER,
        "severe sarcopenia",
        "Start progressive resistance exercise.",
        "because: gait speed re-timed with a stopwatch",
    ):
        assert expected in first, (expected, first)
    _shoot_pdf_page(pdf.body(), tmp_path, "report-pdf-page-1.png")

    assert watch.errors == [], "\n".join(watch.errors)
    context.close()


def test_sign_in_page(
    clinic_server: Clinic, browser: Browser, signed_in: StorageState, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(f"{clinic_server.url}/patients")
    assert page.url == f"{clinic_server.url}/login", "anonymous visitors must be sent to sign in"
    assert page.locator('input[name="password"]').get_attribute("type") == "password"
    _shoot(page, tmp_path, "login.png")
    page.fill('input[name="username"]', USERNAME)
    page.fill('input[name="password"]', "not the password")
    with page.expect_navigation():
        page.click('form[action="/login"] button[type="submit"]')
    assert page.url == f"{clinic_server.url}/login"
    assert page.locator('input[name="username"]').input_value() == USERNAME
    assert page.locator("main").inner_text().count("wrong password") == 1
    # Chromium logs the refused sign-in's 401 status; it is the expected answer, not a fault.
    assert [e for e in watch.errors if "status of 401" not in e] == []
    watch.errors.clear()
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('form[action="/login"] button[type="submit"]')
    assert page.url == f"{clinic_server.url}/patients"
    assert watch.errors == [], "\n".join(watch.errors)
    context.close()


def test_an_administrator_uploads_a_local_definition_and_sees_its_badge(
    clinic_server: Clinic, browser: Browser, signed_in: StorageState, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=VIEWPORT, storage_state=signed_in)
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(f"{clinic_server.url}/admin")
    page.set_input_files('form[action="/admin/definitions"] input[name="file"]', str(EXAMPLE))
    with page.expect_navigation():
        page.click('form[action="/admin/definitions"] button[type="submit"]')
    uploaded = page.locator("#definitions table.list tbody tr")
    assert uploaded.count() == 1
    assert "local definition" in uploaded.inner_text()
    assert USERNAME in uploaded.inner_text()
    page.check(f'input[name="definition_{LOCAL_ID}"]')
    with page.expect_navigation():
        page.click('form[action="/admin/settings"] button[type="submit"]')
    assert page.is_checked(f'input[name="definition_{LOCAL_ID}"]')

    page.goto(f"{clinic_server.url}/patients/new")
    page.fill('input[name="record_number"]', "BRW-LOCAL-1")
    page.fill('input[name="name"]', "Zhou Lan")
    page.check('input[name="sex"][value="female"]')
    page.fill('input[name="date_of_birth"]', "1944-03-03")
    with page.expect_navigation():
        page.click('form[action="/patients/new"] button[type="submit"]')
    page.goto(f"{page.url}/visits/new")
    _fill_visit(page, TODAY, grip=("15", "14"), gait="0.9", asm="13", sarc_f={})
    _submit_visit(page)
    local = page.locator(f'[data-definition="{LOCAL_ID}"]')
    assert local.locator(".badge.local-definition").inner_text().strip() == "local definition"
    # The woman's best grip, 15 kg, is under the example file's 16 kg (EWGSOP2 Table 3).
    assert local.locator("[data-category]").get_attribute("data-category") != "no_sarcopenia"
    _switch_language(page, "zh-CN")
    badge = page.locator(f'[data-definition="{LOCAL_ID}"] .badge.local-definition')
    assert badge.inner_text().strip() == "本院定义"
    _switch_language(page, "en")
    assert watch.errors == [], "\n".join(watch.errors)
    context.close()


def test_result_page_in_chinese_names_definitions_and_cited_next_steps(
    clinic_server: Clinic, browser: Browser, signed_in: StorageState
) -> None:
    context = browser.new_context(viewport=VIEWPORT, storage_state=signed_in)
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(f"{clinic_server.url}/patients")
    _register_patient(page, clinic_server, "BRW-2026-ZH", "Zhao Min")
    _switch_language(page, "zh-CN")
    try:
        page.goto(f"{page.url}/visits/new")
        # AWGS 2019, a woman: grip 16 < 18 kg, gait 0.7 < 1.0 m/s, DXA ASMI 11.9 / 1.5² = 5.29
        # < 5.4 kg/m²: severe sarcopenia, whose next steps the consensus gives (treatment).
        _fill_visit(page, TODAY, grip=("15.5", "16"), gait="0.7", asm="11.9", sarc_f={})
        _submit_visit(page)
        awgs = page.locator('[data-definition="awgs2019"]')
        assert awgs.locator("[data-category]").inner_text().strip() == "严重肌少症"
        # The definition's name and the sources of its reasons from its criteria file's
        # Chinese labels, not the English ones.
        assert awgs.locator("h3").inner_text().strip() == "AWGS 2019（医院/研究）"
        reasons = " ".join(awgs.locator("ul.reasons li").all_inner_texts())
        assert "AWGS 2019 图1" in reasons and "Figure" not in reasons
        steps = awgs.locator("ul.next li")
        assert steps.evaluate_all("items => items.map(i => i.dataset.step)") == [
            "identify_causes",
            "resistance_exercise",
            "nutrition_protein",
        ]
        assert "开始渐进性抗阻运动。" in steps.all_inner_texts()
        cited = awgs.locator("p.step-source").inner_text()
        assert cited.startswith("[AWGS 2019（肌少症诊断与治疗共识更新）")
        assert watch.errors == [], "\n".join(watch.errors)
    finally:
        _switch_language(page, "en")
        context.close()


def test_api_docs_run_under_their_policy_without_violations(
    clinic_server: Clinic, browser: Browser
) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: violations.append(f"page error: {error}"))
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(clinic_server.url) else None,
    )
    page.goto(f"{clinic_server.url}/docs")
    # Swagger UI drew the operations from the OpenAPI document, and the result is typed.
    operation = page.locator(".opblock", has_text="/api/v1/assess").first
    operation.wait_for()
    assert page.locator(".models, section.models").count() >= 1
    assert "ResultOut" in page.locator("section.models").inner_text()
    assert violations == [], "\n".join(violations)
    assert outside == [], outside
    context.close()


def _beside_its_label(page: Page, selector: str) -> None:
    # Each control and its label's text on one line, the control first (not stacked above).
    placed = page.locator(selector).evaluate_all(
        """inputs => inputs.map(input => {
            const label = input.closest("label");
            const text = [...label.childNodes].find(n => n.nodeType === 3 && n.textContent.trim());
            const range = document.createRange();
            range.selectNodeContents(text);
            const t = range.getBoundingClientRect(), i = input.getBoundingClientRect();
            return {name: input.name, control: [i.left, i.top + i.height / 2],
                    text: [t.left, t.top + t.height / 2], height: i.height};
        })"""
    )
    assert placed, selector
    for found in placed:
        (cx, cy), (tx, ty) = found["control"], found["text"]
        assert cx < tx and abs(cy - ty) < found["height"], found


def test_keyboard_order_follows_the_form_and_choices_sit_beside_their_labels(
    clinic_server: Clinic, browser: Browser, signed_in: StorageState
) -> None:
    from sarcokit.web.forms import questionnaires, sections

    context = browser.new_context(viewport=VIEWPORT, storage_state=signed_in)
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(f"{clinic_server.url}/patients/new")
    _beside_its_label(page, 'input[name="sex"]')
    page.goto(f"{clinic_server.url}/admin")
    _beside_its_label(page, 'form[action="/admin/settings"] input[type="checkbox"]')
    _beside_its_label(page, 'form[action="/admin/users"] input[type="checkbox"]')

    page.goto(f"{clinic_server.url}/patients")
    _register_patient(page, clinic_server, "BRW-KEYS-1", "Sun Li")
    page.goto(f"{page.url}/visits/new")
    _beside_its_label(page, 'input[name="sarc_f_strength"]')
    # The order the form declares (questionnaires, then visit_form.toml's sections, each
    # input's trials before its unit); folded sections are passed over while closed.
    expected = ["visit_date", *(item.field for q in questionnaires() for item in q.items)]
    for section in sections():
        if section.collapsed:
            continue
        for f in section.fields:
            if f.trials > 1:
                expected += [f"{f.field}__{n}" for n in range(1, f.trials + 1)]
            else:
                expected.append(f.field)
            if len(f.units) > 1:
                expected.append(f"{f.field}__unit")
    page.focus('input[name="visit_date"]')
    reached = [page.evaluate("document.activeElement.name")]
    # A guard against a focus trap, not a count to meet: a date input takes three Tabs.
    for _ in range(4 * len(expected)):
        if len(reached) == len(expected):
            break
        page.keyboard.press("Tab")
        name = page.evaluate("document.activeElement.name || ''")
        if name and name != reached[-1]:
            reached.append(name)
    assert reached == expected
    assert watch.errors == [], "\n".join(watch.errors)
    context.close()
