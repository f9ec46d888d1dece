"""Every interface text is translated, and pages rendered in Chinese show no English left over."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from sarcokit.web.catalogues import all_messages
from sarcokit.web.i18n import catalogue, plural_catalogue, plural_translator
from web.support import Clinic, add_patient, add_visit, csrf_of, make_app

LANGUAGES = {"en": "en", "zh-CN": "zh_CN"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdfi]")
# Short messages ("Save", "SPPB score") may legitimately appear inside other text; long ones are
# sentences that would only be there if left untranslated.
MIN_CHECKED_LENGTH = 12


def _po_entries(language: str) -> dict[str, tuple[str, set[str]]]:
    """msgid → (msgstr, flags) as stored, including entries that catalogue() drops."""
    path = files("sarcokit.web").joinpath(f"locales/{LANGUAGES[language]}/LC_MESSAGES/messages.po")
    with path.open("rb") as handle:
        parsed = read_po(handle)
    return {
        str(m.id): (str(m.string or ""), set(m.flags))
        for m in parsed
        if isinstance(m.id, str) and m.id
    }


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_message_has_a_translation(language: str) -> None:
    messages = all_messages()
    # The extraction itself must find the interface, or the check below would pass vacuously.
    assert len(messages) > 100
    assert {"Sign in", "Patients", "Grip strength", "Measured by"} <= messages
    table, plurals = catalogue(language), plural_catalogue(language)
    missing = sorted(
        str(m)
        for m in messages
        if not (table.get(m, "").strip() if isinstance(m, str) else plurals.get(m[0]))
    )
    assert not missing, f"{language}: no translation for {missing}"
    fuzzy = sorted(m for m, (_, flags) in _po_entries(language).items() if "fuzzy" in flags)
    assert not fuzzy, f"{language}: fuzzy (unreviewed) translations for {fuzzy}"


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_translations_keep_the_placeholders(language: str) -> None:
    table = catalogue(language)
    wrong = {
        message: translated
        for message, translated in table.items()
        if sorted(PLACEHOLDER.findall(message)) != sorted(PLACEHOLDER.findall(translated))
    }
    assert not wrong, f"{language}: placeholders differ in {wrong}"


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_plural_messages_have_every_form_with_the_count(language: str) -> None:
    plural = [m for m in all_messages() if isinstance(m, tuple)]
    assert (
        "Corrected once; the earlier version is kept",
        "Corrected %(n)s times; earlier versions are kept",
    ) in plural
    forms = plural_catalogue(language)
    # English has two forms (one, other); Chinese one (Plural-Forms nplurals=1).
    expected = {"en": 2, "zh-CN": 1}[language]
    for singular, many in plural:
        assert len(forms[singular]) == expected, (language, singular)
        # Every form but English's "one" names the count.
        for index, form in enumerate(forms[singular]):
            if not (language == "en" and index == 0):
                assert "%(n)s" in form, (language, singular, form)
        assert sorted(PLACEHOLDER.findall(many)) == sorted(PLACEHOLDER.findall(forms[singular][-1]))


def test_plural_forms_follow_the_count() -> None:
    english, chinese = plural_translator("en"), plural_translator("zh-CN")
    once = "Corrected once; the earlier version is kept"
    many = "Corrected %(n)s times; earlier versions are kept"
    assert english(once, many, 1, n=1) == once
    assert english(once, many, 3, n=3) == "Corrected 3 times; earlier versions are kept"
    assert chinese(once, many, 1, n=1) == "已更正 1 次；先前的版本均已保留"
    assert chinese(once, many, 3, n=3) == "已更正 3 次；先前的版本均已保留"


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_catalogues_hold_no_stale_messages(language: str) -> None:
    stale = sorted(set(_po_entries(language)) - all_messages())
    assert not stale, f"{language}: messages no longer used: {stale}"


def test_the_english_catalogue_translates_to_itself() -> None:
    changed = {m: t for m, t in catalogue("en").items() if t != m}
    assert not changed


def test_chinese_differs_from_english_where_it_should() -> None:
    # A "translation" copied from the msgid is a missing one in disguise. Proper names and unit
    # symbols legitimately stay as written.
    copied = sorted(
        m
        for m, t in catalogue("zh-CN").items()
        if t == m and re.search(r"[a-z]{3,}\s+[a-z]{3,}", m)
    )
    assert not copied, copied


# -- rendered pages -----------------------------------------------------------------------------


def _untranslated(page: str) -> list[str]:
    """English messages with a distinct Chinese translation that appear in the page."""
    chinese = catalogue("zh-CN")
    # Tag attributes count too (placeholders, aria-labels); the markup itself does not.
    visible = html.unescape(re.sub(r"<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", " ", page))
    attributes = html.unescape(
        " ".join(re.findall(r'(?:placeholder|aria-label|title)="([^"]*)"', page))
    )
    text = f"{visible} {attributes}"
    return sorted(
        message
        for message, translated in chinese.items()
        if len(message) > MIN_CHECKED_LENGTH
        and translated != message
        and not PLACEHOLDER.search(message)
        and message in text
    ) + sorted(
        # With placeholders, the fixed text before the first one must not show in English.
        message
        for message, translated in chinese.items()
        if PLACEHOLDER.search(message)
        and translated != message
        and len(prefix := PLACEHOLDER.split(message)[0].strip()) > MIN_CHECKED_LENGTH
        and prefix in text
    )


def _in_chinese(clinic: Clinic, role: str) -> tuple[TestClient, str]:
    browser, token = clinic.browser(role)
    # The check is not vacuous: the same user's page in English is full of such messages.
    assert _untranslated(browser.get("/account").text)
    switched = browser.post(
        "/account/language",
        data={"csrf_token": token, "language": "zh-CN", "next": "/account"},
    )
    assert switched.status_code == 200
    assert '<html lang="zh-CN">' in switched.text
    return browser, token


def _check(browser: TestClient, url: str, status: int = 200) -> str:
    response = browser.get(url)
    assert response.status_code == status, (url, response.status_code)
    assert '<html lang="zh-CN">' in response.text, url
    left = _untranslated(response.text)
    assert not left, f"{url} shows untranslated text: {left}"
    page: str = response.text
    return page


def test_clinician_pages_in_chinese_have_no_english_left(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    patient = add_patient(api, "Z1", "李华")
    for day, grip in (("2024-06-01", [24.0]), ("2025-01-10", [15.5, 16.0])):
        visit = add_visit(
            api,
            patient["id"],
            {
                "grip_kg_trials": grip,
                "gait_speed_m_s": 0.7,
                "height_cm": 150,
                "weight_kg": 48,
                "asm_kg": 11.9,
                "asm_method": "dxa",
                "chair_stand_unable": True,
                "sarc_f_strength": 1,
                "setting": "community",
            },
            day,
        )
    visit_id = visit["id"]
    browser, token = _in_chinese(sqlite_clinic, "clinician")
    for url in (
        "/patients",
        "/patients?q=nobody",
        "/patients/new",
        f"/patients/{patient['id']}",
        f"/patients/{patient['id']}/edit",
        f"/patients/{patient['id']}/visits/new",
        f"/visits/{visit_id}",
        f"/visits/{visit_id}/report",
        "/account",
    ):
        _check(browser, url)
    _check(browser, "/patients/9999", 404)
    _check(browser, "/admin", 403)
    # Pages shown again with problems, and the page after a new token.
    refused = browser.post(
        f"/patients/{patient['id']}/visits/new",
        data={"csrf_token": token, "visit_date": "2025-01-10", "height_m": "abc"},
    )
    assert refused.status_code == 422
    assert not _untranslated(refused.text)
    created = browser.post("/account/tokens", data={"csrf_token": token, "name": "t"})
    assert created.status_code == 200
    assert not _untranslated(created.text)


def test_admin_and_researcher_pages_in_chinese_have_no_english_left(sqlite_clinic: Clinic) -> None:
    admin, token = _in_chinese(sqlite_clinic, "admin")
    for url in ("/admin", "/admin/audit", "/account"):
        _check(admin, url)
    refused = admin.post(
        "/admin/users", data={"csrf_token": token, "username": "x", "password": "short"}
    )
    assert refused.status_code == 422
    assert not _untranslated(refused.text)
    researcher, _ = _in_chinese(sqlite_clinic, "researcher")
    for url in ("/research", "/account"):
        _check(researcher, url)


@pytest.fixture
def fresh_app(tmp_path: Path) -> Iterator[TestClient]:
    """A clinic with no account yet, on its own database (not the sqlite_clinic's)."""
    folder = tmp_path / "fresh"
    app = make_app(f"sqlite:///{(folder / 'fresh.db').as_posix()}", folder)
    yield TestClient(app)
    app.state.engine.dispose()


def test_anonymous_pages_in_chinese_have_no_english_left(
    fresh_app: TestClient, sqlite_clinic: Clinic
) -> None:
    fresh_app.get("/language/zh-CN")
    setup = _check(fresh_app, "/setup")
    assert 'name="setup_code"' in setup
    wrong = fresh_app.post(
        "/setup", data={"csrf_token": csrf_of(setup), "setup_code": "wrong", "language": "zh-CN"}
    )
    assert wrong.status_code == 400
    assert not _untranslated(wrong.text)
    visitor = sqlite_clinic.client()
    visitor.get("/language/zh-CN")
    login = _check(visitor, "/login")
    failed = visitor.post(
        "/login", data={"csrf_token": csrf_of(login), "username": "nobody", "password": "x"}
    )
    assert failed.status_code == 401
    assert not _untranslated(failed.text)
    assert "用户名" in failed.text


def test_a_refused_value_is_named_by_its_translated_label(sqlite_clinic: Clinic) -> None:
    browser, token = sqlite_clinic.browser("clinician")
    switched = browser.post(
        "/account/language", data={"csrf_token": token, "language": "zh-CN", "next": "/"}
    )
    assert switched.status_code == 200
    patient = add_patient(sqlite_clinic.api("clinician"), "ZH-ERR")
    url = f"/patients/{patient['id']}/visits/new"
    for field, value, message in (
        # 158 m is implausible; 158 cm is not (fields.toml: height 0.9-2.5 m).
        ("height_m", "158", "身高 158 m 不合理——是否应为 cm？"),
        ("sarc_f_falls", "3", "SARC-F 肌少症筛查问卷: 跌倒：“3”不是可选项之一。"),
    ):
        refused = browser.post(
            url,
            data={
                "csrf_token": token,
                "visit_date": "2026-01-10",
                field: value,
                "height_m__unit": "height_m",
            },
        )
        assert refused.status_code == 422
        problems = refused.text[refused.text.index('class="problems"') :]
        # In the summary at the top and beside the input itself.
        assert f'<li data-field="{field}">{message}</li>' in problems
        assert f'<p class="field-problem" data-field="{field}">{message}' in problems
