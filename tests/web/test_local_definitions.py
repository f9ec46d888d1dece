"""Local definitions in the clinic: an administrator uploads a file, the clinic assesses under
the exact text, every version is kept, and a local definition is marked wherever it is named."""

from __future__ import annotations

import hashlib
import io
from importlib.resources import files
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from sarcokit.web.audit import verify
from sarcokit.web.db import transaction
from sarcokit.web.models import AuditEvent, LocalDefinition
from web.support import Clinic, add_patient, add_visit, csrf_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "local_definition.toml"
LOCAL = "example_local_bia"
BADGE_EN = "local definition"
BADGE_ZH = "本院定义"

# A woman, grip 15 kg < 16 kg (EWGSOP2 Table 3, the example file's grip cut-off: low), BIA ASM
# 13.0 kg at 1.60 m: ASMI = 13.0 / 1.6² = 13.0 / 2.56 = 5.078 kg/m².
# Under the example file (women < 5.6 by BIA): 5.078 < 5.6, low muscle -> sarcopenia.
# Under version 2 below (women < 5.0): 5.078 >= 5.0, normal muscle -> probable_sarcopenia.
WOMAN: dict[str, Any] = {
    "grip_kg": 15.0,
    "height_cm": 160,
    "asm_kg": 13.0,
    "asm_method": "bia",
}


def _example() -> bytes:
    return EXAMPLE.read_bytes()


def _version_2() -> bytes:
    changed = EXAMPLE.read_text("utf-8").replace("female = 5.6", "female = 5.0")
    assert changed != EXAMPLE.read_text("utf-8")
    return changed.encode("utf-8")


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _builtin_sha(definition_id: str) -> str:
    raw = files("sarcokit").joinpath(f"criteria/{definition_id}.toml").read_bytes()
    return _sha(raw)


def _upload(api: TestClient, raw: bytes, name: str = "local.toml") -> Any:
    return api.post("/api/v1/definitions", files={"file": (name, raw, "application/toml")})


def _use(api: TestClient, *ids: str) -> None:
    response = api.put("/api/v1/settings", json={"definitions": list(ids)})
    assert response.status_code == 200, response.text


def _stored_rows(clinic: Clinic) -> int:
    with transaction(clinic.app.state.sessions) as db:
        return db.scalar(select(func.count()).select_from(LocalDefinition)) or 0


def _actions(clinic: Clinic) -> list[str]:
    with transaction(clinic.app.state.sessions) as db:
        return [e.action for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))]


def test_an_uploaded_definition_assesses_visits_with_its_hash_and_badge(clinic: Clinic) -> None:
    admin = clinic.api("admin")
    uploaded = _upload(admin, _example())
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    # The stored hash is that of the file's bytes, as `sha256sum` gives it.
    assert body["sha256"] == _sha(_example())
    assert (body["definition_id"], body["local"], body["in_use"]) == (LOCAL, True, True)
    assert body["uploaded_by"] == clinic.usernames["admin"]
    _use(admin, LOCAL, "ewgsop2")

    api = clinic.api("clinician")
    patient = add_patient(api, "LOC-1")
    visit = add_visit(api, patient["id"], WOMAN)
    local = visit["result"]["definitions"][LOCAL]
    assert local["category"] == "sarcopenia"
    assert local["local"] is True
    assert local["sha256"] == _sha(_example())
    assert "local" not in visit["result"]["definitions"]["ewgsop2"]
    # definitions_sha256 covers the exact texts used: "id:sha256\n" per definition, in order.
    expected = hashlib.sha256(
        f"{LOCAL}:{_sha(_example())}\newgsop2:{_builtin_sha('ewgsop2')}\n".encode()
    ).hexdigest()
    assert visit["result"]["definitions_sha256"] == expected

    page = clinic.browser("clinician")[0].get(f"/visits/{visit['id']}")
    assert page.status_code == 200
    assert BADGE_EN in page.text and _sha(_example()) in page.text
    history = clinic.browser("clinician")[0].get(f"/patients/{patient['id']}")
    assert history.status_code == 200 and BADGE_EN in history.text
    # The stateless assessment takes the uploaded id too, in the version in use.
    record = {**WOMAN, "sex": "female", "age": 80}
    assessed = api.post(f"/api/v1/assess?definitions={LOCAL}", json=record)
    assert assessed.status_code == 200, assessed.text
    assert assessed.json()["definitions"][LOCAL]["sha256"] == _sha(_example())
    assert api.post("/api/v1/assess?definitions=no_such_id", json=record).status_code == 422
    assert [a for a in _actions(clinic) if a.startswith("definition.")] == ["definition.upload"]


def test_a_file_with_several_mistakes_is_refused_whole_and_nothing_is_stored(
    clinic: Clinic,
) -> None:
    lines = _example().decode("utf-8").splitlines()
    broken_text = (
        "\n".join(lines)
        .replace('input = "grip_kg"', 'input = "grip_strength"')
        .replace('low_when = "<"\ncutoff = { male = 6.8', 'low_when = "=<"\ncutoff = { male = 6.8')
        .replace('source = "EWGSOP2 Table 3"', 'source = ""')
        .replace('when = "not strength"', 'when = "not strength and frailty"')
    )
    broken = broken_text.splitlines()

    def line_of(fragment: str) -> int:
        return next(n for n, row in enumerate(broken, 1) if fragment in row)

    response = _upload(clinic.api("admin"), broken_text.encode())
    assert response.status_code == 422, response.text
    problems = response.json()["error"]["problems"]
    by_line = {p["value"]: p["message"] for p in problems}
    # Each mistake is reported on its own line (the loader, as `sarcokit criteria check`).
    assert "unknown input field 'grip_strength'" in by_line[line_of("grip_strength")]
    assert "'=<'" in by_line[line_of('low_when = "=<"')]
    assert "empty source" in by_line[line_of('source = ""')]
    assert "'frailty'" in by_line[line_of("frailty")]
    assert len(problems) >= 4
    assert all(p["field"] == "file" for p in problems)
    assert _stored_rows(clinic) == 0
    assert not [a for a in _actions(clinic) if a.startswith("definition.")]

    # In Chinese: the same problems, each on its line.
    response = clinic.api("admin").post(
        "/api/v1/definitions?lang=zh-CN",
        files={"file": ("broken.toml", broken_text.encode(), "application/toml")},
    )
    assert response.status_code == 422
    chinese = {p["value"]: p["message"] for p in response.json()["error"]["problems"]}
    assert chinese.keys() == by_line.keys()
    grip = chinese[line_of("grip_strength")]
    assert grip.startswith(f"第 {line_of('grip_strength')} 行：")
    assert "未知的输入字段 'grip_strength'" in grip
    assert "source 为空" in chinese[line_of('source = ""')]

    # The settings page shows the same list, every problem with its line.
    browser, csrf = clinic.browser("admin")
    page = browser.post(
        "/admin/definitions",
        data={"csrf_token": csrf},
        files={"file": ("broken.toml", broken_text.encode(), "application/toml")},
    )
    assert page.status_code == 422
    for fragment in ("grip_strength", "=&lt;", "empty source", "frailty"):
        assert fragment in page.text
    assert f"line {line_of('frailty')}:" in page.text
    assert "broken.toml was refused; nothing was stored." in page.text
    assert _stored_rows(clinic) == 0


def test_only_administrators_upload_and_a_refusal_is_audited(clinic: Clinic) -> None:
    for role in ("clinician", "researcher"):
        response = _upload(clinic.api(role), _example())
        assert response.status_code == 403
    browser, csrf = clinic.browser("clinician")
    page = browser.post(
        "/admin/definitions",
        data={"csrf_token": csrf},
        files={"file": ("local.toml", _example(), "application/toml")},
    )
    assert page.status_code == 403
    assert _stored_rows(clinic) == 0
    assert _actions(clinic).count("access.denied") == 3


def test_a_built_in_id_too_large_or_not_utf8_file_is_refused_by_name(clinic: Clinic) -> None:
    admin = clinic.api("admin")
    clash = _example().replace(LOCAL.encode(), b"ewgsop2")
    refused = _upload(admin, clash)
    assert refused.status_code == 422
    assert "'ewgsop2' is a built-in definition" in refused.json()["error"]["message"]

    latin1 = _example() + "# Müller\n".encode("latin-1")
    refused = _upload(admin, latin1)
    assert refused.status_code == 422
    assert refused.json()["error"]["expected"] == "text in UTF-8"

    # 128 KiB is the limit (store.MAX_DEFINITION_BYTES); a comment pads the file past it.
    padded = _example() + b"#" * (128 * 1024)
    refused = _upload(admin, padded)
    assert refused.status_code == 422
    assert refused.json()["error"]["expected"] == f"a file of at most {128 * 1024} bytes"

    # The same file as JSON text is accepted; sending it again is a conflict, not a version.
    accepted = admin.post("/api/v1/definitions", json={"text": _example().decode("utf-8")})
    assert accepted.status_code == 201, accepted.text
    again = _upload(admin, _example())
    assert again.status_code == 409
    assert _stored_rows(clinic) == 1


def test_a_new_version_is_used_for_new_visits_and_old_visits_keep_theirs(clinic: Clinic) -> None:
    admin = clinic.api("admin")
    first = _upload(admin, _example()).json()
    _use(admin, LOCAL)
    api = clinic.api("clinician")
    patient = add_patient(api, "LOC-2")
    old = add_visit(api, patient["id"], WOMAN, visit_date="2026-01-10")
    assert old["result"]["definitions"][LOCAL]["category"] == "sarcopenia"

    second = _upload(admin, _version_2())
    assert second.status_code == 201, second.text
    assert second.json()["upload_id"] != first["upload_id"]
    new = add_visit(api, patient["id"], WOMAN, visit_date="2026-02-10")
    assert new["result"]["definitions"][LOCAL]["category"] == "probable_sarcopenia"
    assert new["result"]["definitions"][LOCAL]["sha256"] == _sha(_version_2())

    # The old visit, read and rendered again, is assessed under the text it was saved with.
    again = api.get(f"/api/v1/visits/{old['id']}").json()
    assert again["result"]["definitions"][LOCAL]["category"] == "sarcopenia"
    assert again["result"]["definitions"][LOCAL]["sha256"] == _sha(_example())
    assert again["result"]["definitions_sha256"] == old["result"]["definitions_sha256"]
    page = clinic.browser("clinician")[0].get(f"/visits/{old['id']}")
    assert _sha(_example()) in page.text and _sha(_version_2()) not in page.text

    listed = {d["upload_id"]: d for d in admin.get("/api/v1/definitions").json()}
    assert listed[first["upload_id"]]["in_use"] is False
    assert listed[second.json()["upload_id"]]["in_use"] is True

    # Retiring the newest version brings the previous one back into use; both stay stored.
    retired = admin.post(f"/api/v1/definitions/{second.json()['upload_id']}/retire")
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired_at"] is not None
    back = add_visit(api, patient["id"], WOMAN, visit_date="2026-03-10")
    assert back["result"]["definitions"][LOCAL]["sha256"] == _sha(_example())
    # The last version in use of a definition the clinic reports cannot be retired.
    refused = admin.post(f"/api/v1/definitions/{first['upload_id']}/retire")
    assert refused.status_code == 409
    assert _stored_rows(clinic) == 2
    actions = [a for a in _actions(clinic) if a.startswith("definition.")]
    assert actions == ["definition.upload", "definition.upload", "definition.retire"]
    with transaction(clinic.app.state.sessions) as db:
        assert verify(db).intact


def test_stored_versions_cannot_be_rewritten_or_removed(clinic: Clinic) -> None:
    assert _upload(clinic.api("admin"), _example()).status_code == 201
    engine: Engine = clinic.app.state.engine
    for statement in (
        "UPDATE local_definitions SET text = 'x'",
        "UPDATE local_definitions SET sha256 = 'x'",
        "DELETE FROM local_definitions",
    ):
        with pytest.raises(DBAPIError, match="keeps every version"), engine.begin() as db:
            db.execute(text(statement))
    with engine.begin() as db:
        db.execute(text("UPDATE local_definitions SET retired_at = CURRENT_TIMESTAMP"))
    # Retired once, it stays retired.
    with pytest.raises(DBAPIError, match="keeps every version"), engine.begin() as db:
        db.execute(text("UPDATE local_definitions SET retired_at = NULL"))
    assert _stored_rows(clinic) == 1


def _pdf_text(content: bytes) -> str:
    pages = pypdf.PdfReader(io.BytesIO(content)).pages
    # Line breaks fall anywhere in extracted text, so white space is dropped.
    return "".join("".join(page.extract_text() for page in pages).split())


def test_the_badge_in_the_pdf_report_and_the_settings_page_in_both_languages(
    clinic: Clinic,
) -> None:
    admin = clinic.api("admin")
    assert _upload(admin, _example()).status_code == 201
    _use(admin, "ewgsop2", LOCAL)
    api = clinic.api("clinician")
    visit = add_visit(api, add_patient(api, "LOC-3")["id"], WOMAN)
    english = _pdf_text(api.get(f"/api/v1/visits/{visit['id']}/report.pdf").content)
    assert "localdefinition" in english
    chinese = _pdf_text(api.get(f"/api/v1/visits/{visit['id']}/report.pdf?lang=zh-CN").content)
    assert BADGE_ZH in chinese

    browser, csrf = clinic.browser("admin")
    settings = browser.get("/admin")
    row = settings.text.split(f'data-upload="{_upload_id(admin)}"')[1].split("</tr>")[0]
    assert BADGE_EN in row and clinic.usernames["admin"] in row
    assert "in use" in row
    browser.post("/account/language", data={"csrf_token": csrf, "language": "zh-CN"})
    assert BADGE_ZH in browser.get("/admin").text


def _upload_id(admin: TestClient) -> int:
    [listed] = admin.get("/api/v1/definitions").json()
    upload_id: int = listed["upload_id"]
    return upload_id


def test_the_settings_form_offers_an_uploaded_definition(clinic: Clinic) -> None:
    browser, csrf = clinic.browser("admin")
    uploaded = browser.post(
        "/admin/definitions",
        data={"csrf_token": csrf},
        files={"file": ("local.toml", _example(), "application/toml")},
    )
    assert uploaded.status_code == 200, uploaded.text  # the redirect to /admin is followed
    assert f'name="definition_{LOCAL}"' in uploaded.text
    saved = browser.post(
        "/admin/settings",
        data={"csrf_token": csrf_of(uploaded.text), "lead": LOCAL, "definition_ewgsop2": "on"},
    )
    assert saved.status_code == 200, saved.text
    assert clinic.api("admin").get("/api/v1/settings").json()["definitions"] == [LOCAL, "ewgsop2"]
    # A forged form (no CSRF token) stores nothing.
    forged = browser.post(
        "/admin/definitions", files={"file": ("v2.toml", _version_2(), "application/toml")}
    )
    assert forged.status_code == 403
    assert _stored_rows(clinic) == 1


def test_a_file_with_values_of_the_wrong_type_is_a_422_naming_them(clinic: Clinic) -> None:
    # A test lacking its source and a cut-off given as text: both listed, nothing stored (the
    # first was a 500: the loader's own message raised TypeError).
    text = _example().decode("utf-8").replace('source = "EWGSOP2 Table 3"\n', "", 1)
    text = text.replace("cutoff = { male = 6.8", 'cutoff = { male = "6.8"', 1)
    response = _upload(clinic.api("admin"), text.encode())
    assert response.status_code == 422, response.text
    messages = [p["message"] for p in response.json()["error"]["problems"]]
    assert any("cutoff.male: '6.8' has the wrong type; expected a number" in m for m in messages)
    assert _stored_rows(clinic) == 0
    fixed = text.replace('cutoff = { male = "6.8"', "cutoff = { male = 6.8", 1)
    response = _upload(clinic.api("admin"), fixed.encode())
    assert response.status_code == 422, response.text
    assert any("lacks 'source'" in p["message"] for p in response.json()["error"]["problems"])
