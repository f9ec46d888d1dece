"""A visit's result is stored with it (reasons as data): reading it never re-runs the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

import sarcokit.api
import sarcokit.engine
import sarcokit.web.batching
from sarcokit.web import security
from sarcokit.web.db import transaction
from sarcokit.web.models import Visit
from web.support import Clinic, add_patient, add_visit


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


# Every way into the engine: the frame evaluator, the record entry points, and the names the
# clinic's engine queue and the record API imported them under.
ENTRY_POINTS = (
    (sarcokit.engine, "evaluate"),
    (sarcokit.api, "evaluate"),
    (sarcokit.api, "assess_many"),
    (sarcokit.api, "assess"),
    (sarcokit.web.batching, "assess_many"),
)


def _count_engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    for module, name in ENTRY_POINTS:
        original = getattr(module, name)

        def counted(
            *args: Any, _original: Callable[..., Any] = original, _name: str = name, **kw: Any
        ) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(module, name, counted)
    return calls


def test_reading_a_visit_makes_no_engine_call(
    sqlite_clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_engine_calls(monkeypatch)
    api = sqlite_clinic.api("clinician")
    patient = add_patient(api)
    visit = add_visit(api, patient["id"])
    # Saving assesses: the counter sees the engine, so a zero below means something.
    assert calls
    calls.clear()

    reads = [
        f"/api/v1/visits/{visit['id']}",
        f"/api/v1/visits/{visit['id']}/result",
        f"/api/v1/visits/{visit['id']}/result?lang=zh-CN",
        f"/api/v1/patients/{patient['id']}/visits",
        f"/api/v1/visits/{visit['id']}/report.pdf",
    ]
    for path in reads:
        assert api.get(path).status_code == 200, path
    browser, _ = sqlite_clinic.browser("clinician")
    for path in (
        f"/visits/{visit['id']}",
        f"/visits/{visit['id']}/report",
        f"/patients/{patient['id']}",
    ):
        assert browser.get(path).status_code == 200, path
    assert sqlite_clinic.api("researcher").get("/api/v1/export").status_code == 200
    assert calls == []

    # A correction is a new assessment.
    corrected = api.put(
        f"/api/v1/visits/{visit['id']}",
        json={"visit_date": "2026-01-10", "measurements": {"grip_kg": 25}, "reason": "typo"},
    )
    assert corrected.status_code == 200, corrected.text
    assert calls


def test_the_stored_reasons_render_in_the_reader_language(sqlite_clinic: Clinic) -> None:
    api = sqlite_clinic.api("clinician")
    visit = add_visit(api, add_patient(api)["id"])
    english = api.get(f"/api/v1/visits/{visit['id']}/result").json()
    chinese = api.get(
        f"/api/v1/visits/{visit['id']}/result", headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    ).json()
    assert english["lang"] == "en" and chinese["lang"] == "zh"
    # The data is one; only the sentences change.
    for answer in ("awgs2019", "ewgsop2"):
        assert (
            chinese["definitions"][answer]["explanations"]
            == (english["definitions"][answer]["explanations"])
        )
    reasons = chinese["definitions"]["awgs2019"]["reasons"]
    assert any("严重肌少症" in r for r in reasons)
    assert any("AWGS 2019 图1" in r for r in reasons)


def test_a_visit_saved_before_reasons_were_data_shows_them_as_recorded(
    sqlite_clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = sqlite_clinic.api("clinician")
    patient = add_patient(api)
    visit = add_visit(api, patient["id"])
    recorded = "grip 16.0 kg < 18 kg (women) → low strength [as recorded in 2025]"
    # A result as contract version 1 stored it: reasons as English text, no explanations.
    old = dict(visit["result"])
    for key in ("contract_version", "lang"):
        old.pop(key)
    old["definitions"] = {
        name: {
            "category": answer["category"],
            "components": answer["components"],
            "reasons": [recorded],
            "next_steps": answer["next_steps"],
        }
        for name, answer in visit["result"]["definitions"].items()
    }
    with transaction(sqlite_clinic.app.state.sessions) as db:
        db.execute(update(Visit).where(Visit.id == visit["id"]).values(result=old))
    calls = _count_engine_calls(monkeypatch)

    chinese = api.get(f"/api/v1/visits/{visit['id']}/result?lang=zh-CN").json()
    assert chinese["contract_version"] == 1
    assert chinese["definitions"]["awgs2019"]["reasons"] == [recorded]
    assert chinese["definitions"]["awgs2019"]["explanations"] == []
    assert chinese["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"
    browser, _ = sqlite_clinic.browser("clinician")
    page = browser.get(f"/visits/{visit['id']}").text
    assert "before reasons were kept as data" in page
    assert "[as recorded in 2025]" in page
    assert calls == []
