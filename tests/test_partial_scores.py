"""Screening flags decided by partial answers (criteria.md §10.10).

A total with a missing item stays null, but its flag is decided whenever every possible value of
the missing items gives the same answer. Item ranges and cut-offs are from the instruments'
sources (criteria.md §3): SARC-F items 0-2, positive at a total >= 4 (Malmstrom 2013);
SARC-CalF = SARC-F + 10 when calf is low (< 34 cm men, < 33 cm women, the AWGS 2019
adaptation), positive >= 11; MSRA-7 at risk <= 30 of 40 and MSRA-5 <= 45 of 60 (Rossi 2017,
points as criteria.md §3.4).
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sarcokit

M = "male"
F = "female"
ITEMS = (
    "sarc_f_strength",
    "sarc_f_assistance_walking",
    "sarc_f_rise_from_chair",
    "sarc_f_climb_stairs",
    "sarc_f_falls",
)


def _items(*points: int | None) -> dict[str, Any]:
    return {k: v for k, v in zip(ITEMS, points, strict=False) if v is not None}


def _screening(record: dict[str, Any]) -> dict[str, Any]:
    payload = sarcokit.assess(record).to_dict()
    assert "error" not in payload, payload.get("error")
    value: dict[str, Any] = payload["screening"]
    return value


@pytest.mark.parametrize(
    ("items", "positive"),
    [
        # criteria.md §10.10's own example: 2 + 2 + 1 = 5 answered, stairs and falls missing:
        # the total is 5..9, >= 4 either way -> positive
        pytest.param(_items(2, 2, 1), True, id="known-5-positive"),
        # 1 + 1 + 1 + 1 = 4 with falls missing: 4..6 -> positive
        pytest.param(_items(1, 1, 1, 1), True, id="known-exactly-4"),
        # all four answered 0, falls missing: 0..2 < 4 -> negative
        pytest.param(_items(0, 0, 0, 0), False, id="max-2-negative"),
        # 1 + 0 + 0 answered, two missing: 1..5 -> could be either: null
        pytest.param(_items(1, 0, 0), None, id="open"),
        # 0 + 0 + 1 + 0 answered, falls missing: 1..3 < 4 -> negative
        pytest.param(_items(0, 0, 1, 0), False, id="max-3-negative"),
        # 1 + 1 + 0 + 0 answered, falls missing: 2..4 -> open
        pytest.param(_items(1, 1, 0, 0), None, id="max-exactly-4-open"),
        # nothing answered: 0..10 -> open
        pytest.param({}, None, id="none-answered"),
    ],
)
def test_sarc_f_flag_from_partial_answers(items: dict[str, Any], positive: bool | None) -> None:
    sarc_f = _screening({"sex": F, **items})["sarc_f"]
    assert sarc_f["total"] is None
    assert sarc_f["positive"] is positive


@pytest.mark.parametrize(
    ("record", "positive"),
    [
        # SARC-F 1 + 0 answered (1..7) and calf 30 < 33 (woman): 11..17 >= 11 -> positive
        pytest.param({"sex": F, "calf_cm": 30.0, **_items(1, 0)}, True, id="calf-low-1-known"),
        # nothing of SARC-F answered, calf low: 10..20 -> open
        pytest.param({"sex": F, "calf_cm": 30.0}, None, id="calf-low-no-items"),
        # calf normal (35 >= 34, man): SARC-F 0..10 + 0 < 11 -> negative whatever the items
        pytest.param({"sex": M, "calf_cm": 35.0}, False, id="calf-normal"),
        # SARC-F complete 0 and calf missing: 0..10 < 11 -> negative
        pytest.param({"sex": M, **_items(0, 0, 0, 0, 0)}, False, id="sarc-f-0-no-calf"),
        # SARC-F complete 1 and calf missing: 1..11 -> open
        pytest.param({"sex": M, **_items(1, 0, 0, 0, 0)}, None, id="sarc-f-1-no-calf"),
        # calf 33.5 with sex unknown: < 34 (men) but >= 33 (women), so calf is undecided:
        # SARC-F 2 + 2 complete = 4..14 -> open; with SARC-F 0 -> 0..10 -> negative
        pytest.param({"calf_cm": 33.5, **_items(2, 2, 0, 0, 0)}, None, id="calf-sex-unknown"),
        pytest.param({"calf_cm": 33.5, **_items(0, 0, 0, 0, 0)}, False, id="calf-sex-unknown-0"),
    ],
)
def test_sarc_calf_flag_from_partial_answers(record: dict[str, Any], positive: bool | None) -> None:
    screening = _screening(record)
    assert screening["sarc_calf"]["total"] is None
    assert screening["sarc_calf"]["positive"] is positive


MSRA_ALL = {
    "msra_hospitalised_last_year": "none",
    "msra_walks_1000m": True,
    "msra_three_meals_daily": True,
    "msra_dairy_daily": True,
    "msra_protein_daily": True,
    "msra_weight_loss_over_2kg": False,
}


def test_msra_flags_from_partial_answers() -> None:
    # Age missing (5 or 0 points), every other item the healthy answer:
    # MSRA-7 = 10 + 5 + 5 + 5 + 5 + 5 = 35 plus 0..5 -> 35..40 > 30 -> not at risk;
    # MSRA-5 = 15 + 15 + 15 + 10 = 55 plus 0..5 -> 55..60 > 45 -> not at risk.
    screening = _screening({"sex": F, **MSRA_ALL})
    assert screening["msra7"] == {"total": None, "at_risk": False}
    assert screening["msra5"] == {"total": None, "at_risk": False}
    # Age 75 (0 points), hospitalised more than once (0), does not walk 1000 m (0), three meals
    # and dairy missing: MSRA-7 = 0 + 0 + 0 + (0..5) + (0..5) + 5 (protein) + 5 (no loss)
    # = 10..20 <= 30 -> at risk; MSRA-5 = 0 + 0 + 0 + (0..15) + 10 = 10..25 <= 45 -> at risk.
    record = {
        "sex": F,
        "age": 75,
        "msra_hospitalised_last_year": "more_than_once",
        "msra_walks_1000m": False,
        "msra_protein_daily": True,
        "msra_weight_loss_over_2kg": False,
    }
    screening = _screening(record)
    assert screening["msra7"] == {"total": None, "at_risk": True}
    assert screening["msra5"] == {"total": None, "at_risk": True}
    # Age 75 (0), everything else healthy but hospitalisation missing:
    # MSRA-7 = 0 + (0..10) + 20 + 5 = 25..35 -> open; MSRA-5 = 0 + (0..15) + 30 + 10 = 40..55
    # -> open.
    open_record = {"sex": F, "age": 75, **MSRA_ALL}
    del open_record["msra_hospitalised_last_year"]
    screening = _screening(open_record)
    assert screening["msra7"] == {"total": None, "at_risk": None}
    assert screening["msra5"] == {"total": None, "at_risk": None}


def test_ishii_flag_with_sex_unknown() -> None:
    # Age 70, grip 10 kg, calf 30 cm, sex not given (criteria.md §3.3 equations):
    # men   0.62×6 − 3.09×(10−50) − 4.64×(30−42) = 3.72 + 123.6 + 55.68 = 183.0 >= 105
    # women 0.80×6 − 5.09×(10−34) − 3.28×(30−42) = 4.8 + 122.16 + 39.36 = 166.32 >= 120
    # -> positive under either sex; the score itself is unknown.
    ishii = _screening({"age": 70, "grip_kg": 10.0, "calf_cm": 30.0})["ishii"]
    assert ishii["score"] is None
    assert ishii["positive"] is True
    # Age 70, grip 40, calf 36: men 3.72 + 30.9 + 27.84 = 62.46 < 105; women 4.8 − 30.54
    # + 19.68 = −6.06 < 120 -> negative either way.
    assert _screening({"age": 70, "grip_kg": 40.0, "calf_cm": 36.0})["ishii"]["positive"] is False
    # Age 70, grip 25, calf 33: men 3.72 + 77.25 + 41.76 = 122.73 >= 105; women 4.8 + 45.81
    # + 29.52 = 80.13 < 120 -> the sexes disagree: unknown.
    assert _screening({"age": 70, "grip_kg": 25.0, "calf_cm": 33.0})["ishii"]["positive"] is None


def test_awgs2019_community_case_finding_uses_partial_sarc_f() -> None:
    # SARC-F 2 + 2 + 1 answered (total >= 5 whatever the rest), no calf, grip 30 kg >= 28 (man,
    # normal): case-finding positive and the assessment normal -> no possible sarcopenia.
    record = {"sex": M, "grip_kg": 30.0, **_items(2, 2, 1)}
    result = sarcokit.assess(record, definitions=["awgs2019_community"]).to_dict()
    community = result["definitions"]["awgs2019_community"]
    assert community["components"]["case_finding"] == "positive"
    assert any("between 5 and 9" in reason for reason in community["reasons"])
    # All SARC-F items but falls answered 0 (0..2 < 4), calf 35 >= 34 (negative), SARC-CalF
    # 0..2 < 11: case-finding negative with no grip -> case_finding_negative (§10.4). Before
    # §10.10 the missing item left SARC-F and SARC-CalF open and the answer indeterminate.
    record = {"sex": M, "calf_cm": 35.0, **_items(0, 0, 0, 0)}
    result = sarcokit.assess(record, definitions=["awgs2019_community"]).to_dict()
    assert result["definitions"]["awgs2019_community"]["category"] == "case_finding_negative"


def _partial_cohort() -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for i in range(3**5 * 2):
        points = [(i // 3**k) % 3 for k in range(5)]
        record: dict[str, Any] = {"id": f"r{i}", "sex": M if i % 2 else F}
        # Every pattern of answered/missing items over the 0-2 points: an item is missing
        # where its points are 0 and the row number's last bit says so.
        for k, (item, value) in enumerate(zip(ITEMS, points, strict=True)):
            record[item] = None if (i >> k) % 2 and value == 0 else value
        record["calf_cm"] = None if i % 5 == 0 else 30.0 + (i % 7)
        record["age"] = None if i % 3 == 0 else 65 + (i % 10)
        record["msra_walks_1000m"] = None if i % 4 == 0 else bool(i % 2)
        record["msra_hospitalised_last_year"] = [None, "none", "once", "more_than_once"][i % 4]
        rows.append(record)
    return pl.DataFrame(rows)


def test_partial_flags_identical_on_duckdb() -> None:
    cohort = _partial_cohort()
    expected = sarcokit.evaluate(cohort, ["awgs2019_community"])
    got = (
        sarcokit.evaluate(duckdb.from_arrow(cohort.to_arrow()), ["awgs2019_community"])
        .pl()
        .select(expected.columns)
    )
    assert expected["sarc_f_positive"].null_count() < cohort.height
    assert_frame_equal(got.sort("id"), expected.sort("id"), check_dtypes=False)
