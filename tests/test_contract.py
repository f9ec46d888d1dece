"""The public result contract of DESIGN.md and the frame/record equivalence."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import sarcokit
from sarcokit.definitions import DEFINITION_IDS

DESIGN_CATEGORIES = {
    "ewgsop2010": {"no_sarcopenia", "presarcopenia", "sarcopenia", "severe_sarcopenia"},
    "ewgsop2": {"no_sarcopenia", "probable_sarcopenia", "sarcopenia", "severe_sarcopenia"},
    "awgs2014": {"no_sarcopenia", "sarcopenia"},
    "awgs2019": {"no_sarcopenia", "sarcopenia", "severe_sarcopenia"},
    "awgs2019_community": {
        "case_finding_negative",
        "no_possible_sarcopenia",
        "possible_sarcopenia",
    },
    # DESIGN.md: ages >= 50 in two bands; not_applicable under 50 (a definition with a scope)
    "awgs2025": {
        "no_sarcopenia",
        "at_risk",
        "possible_sarcopenia",
        "sarcopenia",
        "not_applicable",
    },
    "cn2021": {"no_sarcopenia", "possible_sarcopenia", "sarcopenia", "severe_sarcopenia"},
    "iwgs2011": {"no_sarcopenia", "sarcopenia"},
    "fnih2014": {
        "no_sarcopenia",
        "weakness_with_low_lean_mass",
        "weakness_slowness_low_lean_mass",
    },
    "sdoc2020": {"no_sarcopenia", "sarcopenia"},
    "sdoc2020_grip_bmi": {"no_sarcopenia", "sarcopenia"},
}


def test_definition_ids_and_categories_are_those_of_the_design() -> None:
    assert set(DEFINITION_IDS) == set(DESIGN_CATEGORIES)
    for definition_id, categories in DESIGN_CATEGORIES.items():
        assert set(sarcokit.definition(definition_id).category_ids) == categories | {
            "indeterminate"
        }


def test_result_has_exactly_the_design_shape() -> None:
    payload = sarcokit.assess(
        {"id": "p1", "sex": "male", "age": 75, "grip_kg": 25.0, "gait_speed_m_s": 0.9}
    ).to_dict()
    # DESIGN.md: every result records the hash of the definition files that produced it
    assert set(payload) == {
        "id",
        "contract_version",
        "lang",
        "derived",
        "screening",
        "definitions",
        "secondary",
        "definitions_sha256",
    }
    assert len(payload["definitions_sha256"]) == 64
    assert {
        "bmi_kg_m2",
        "asmi_kg_m2",
        "alm_bmi",
        "grip_bmi",
        "gait_speed_m_s",
        "sarcopenia_index",
    } <= set(payload["derived"])
    assert set(payload["screening"]) == {"sarc_f", "sarc_calf", "calf", "ishii", "msra7", "msra5"}
    assert set(payload["screening"]["sarc_f"]) == {"total", "positive"}
    assert set(payload["screening"]["msra7"]) == {"total", "at_risk"}
    assert set(payload["definitions"]) == set(DEFINITION_IDS)
    for definition_id, outcome in payload["definitions"].items():
        # AWGS 2025 reports its outcome measures and case-finding beside the components
        extra = {"outcomes", "case_finding"} if definition_id == "awgs2025" else set()
        assert (
            set(outcome)
            == {
                "category",
                "components",
                "reasons",
                "explanations",
                "next_steps",
                "next_step_sources",
            }
            | extra
        )
        assert set(outcome["components"].values()) <= {
            "low",
            "normal",
            "unknown",
            "positive",
            "negative",
            "present",
            "absent",
        }


def test_the_design_example_ewgsop2_probable_sarcopenia() -> None:
    payload = sarcokit.assess(
        {"id": "p1", "sex": "male", "grip_kg": 25.0, "gait_speed_m_s": 0.9}, definitions=["ewgsop2"]
    ).to_dict()
    outcome = payload["definitions"]["ewgsop2"]
    assert outcome["category"] == "probable_sarcopenia"
    assert outcome["components"] == {
        "strength": "low",
        "muscle_quantity": "unknown",
        "physical_performance": "normal",
    }
    assert outcome["reasons"][0] == "grip 25.0 kg < 27 kg (men) → low strength [EWGSOP2 Table 3]"
    assert outcome["next_steps"][0] == "confirm_muscle_quantity"


def test_reported_derived_values_are_rounded_half_up() -> None:
    # ASMI = 18.0 / 1.7² = 6.2283 → 6.23; BMI = 70 / 1.7² = 24.2214 → 24.22;
    # ALM/BMI = 18.0 / 24.2214 = 0.74314 → 0.743 (3 dp).
    payload = sarcokit.assess({"height_m": 1.7, "weight_kg": 70, "asm_kg": 18.0}).to_dict()
    assert payload["derived"]["asmi_kg_m2"] == 6.23
    assert payload["derived"]["bmi_kg_m2"] == 24.22
    assert payload["derived"]["alm_bmi"] == 0.743


def test_frame_api_returns_public_columns_in_the_frame_type() -> None:
    frame = pl.DataFrame({"id": ["a", "b"], "sex": ["male", "female"], "grip_kg": [20.0, 20.0]})
    out = sarcokit.evaluate(frame, ["ewgsop2"])
    assert isinstance(out, pl.DataFrame)
    assert out["id"].to_list() == ["a", "b"]
    # EWGSOP2 Table 3: grip < 27 kg men, < 16 kg women.
    assert out["ewgsop2_strength"].to_list() == ["low", "normal"]
    assert out["ewgsop2_category"].to_list() == ["probable_sarcopenia", "no_sarcopenia"]


def test_frame_api_flags_invalid_rows_and_keeps_them() -> None:
    frame = pl.DataFrame(
        {"sex": ["male", "female"], "height_m": [170.0, 1.6], "grip_kg": [20.0, 20.0]}
    )
    out = sarcokit.evaluate(frame, ["ewgsop2"])
    assert out["invalid_fields"].to_list() == ["height_m", None]
    assert out["ewgsop2_category"].to_list() == [None, "no_sarcopenia"]


def test_estimated_asm_is_opt_in_and_disclosed() -> None:
    record = {"sex": "female", "age": 80, "height_cm": 150, "weight_kg": 40, "grip_kg": 14}
    plain = sarcokit.assess(record, definitions=["ewgsop2"]).to_dict()["definitions"]["ewgsop2"]
    assert plain["components"]["muscle_quantity"] == "unknown"
    estimated = sarcokit.assess(record, definitions=["ewgsop2"], estimate_asm="wen2011").to_dict()
    outcome = estimated["definitions"]["ewgsop2"]
    # Wen 2011, women coded 2: 0.193×40 + 0.107×150 − 4.157×2 − 0.037×80 − 2.631 = 7.815 kg
    # → ASM < 15 kg (EWGSOP2 Table 3) → low muscle quantity.
    assert outcome["components"]["muscle_quantity"] == "low"
    assert any("Wen 2011" in reason for reason in outcome["reasons"])


def test_frame_with_a_column_of_the_wrong_type_is_named() -> None:
    frame = pl.DataFrame({"sex": [1, 2], "grip_kg": ["25", "30"]})
    try:
        sarcokit.evaluate(frame)
    except sarcokit.InputError as error:
        fields = {p.field: p.value for p in error.problems}
        assert fields == {"sex": "Int64", "grip_kg": "String"}
    else:
        raise AssertionError("a numeric sex column and a text grip column were accepted")


def test_ewgsop2010_asks_for_a_classified_mass_not_a_raw_one() -> None:
    record = {"sex": "male", "grip_kg": 25.0, "gait_speed_m_s": 0.9}
    outcome = sarcokit.assess(record, definitions=["ewgsop2010"]).to_dict()
    assert outcome["definitions"]["ewgsop2010"]["next_steps"] == ["classify_muscle_mass"]


def test_sarcopenia_column_marks_diagnoses_only() -> None:
    frame = pl.DataFrame(
        {
            "sex": ["female", "female", "female", "female"],
            # AWGS 2019: grip < 18 kg, gait < 1.0 m/s, BIA ASMI < 5.7 kg/m² (women).
            "grip_kg": [17.0, 17.0, 25.0, 17.0],
            "gait_speed_m_s": [0.9, 1.2, 1.2, 0.9],
            "height_m": [1.5, 1.5, 1.5, 1.5],
            "asm_kg": [12.6, 14.4, 14.4, None],  # ASMI 5.6, 6.4, 6.4, unknown
            "asm_method": ["bia", "bia", "bia", None],
        }
    )
    out = sarcokit.evaluate(frame, ["awgs2019", "awgs2019_community"], keep=["sex"])
    assert out["awgs2019_category"].to_list() == [
        "severe_sarcopenia",
        "no_sarcopenia",
        "no_sarcopenia",
        "indeterminate",
    ]
    assert out["awgs2019_sarcopenia"].to_list() == [True, False, False, None]
    # The primary-care pathway diagnoses no sarcopenia, so it has no such column.
    assert "awgs2019_community_sarcopenia" not in out.columns
    assert out["sex"].to_list() == ["female"] * 4


def test_keep_rejects_unknown_and_clashing_columns() -> None:
    frame = pl.DataFrame({"sex": ["male"], "weight_survey": [1.5]})
    assert sarcokit.evaluate(frame, ["ewgsop2"], keep=["weight_survey"])["weight_survey"][0] == 1.5
    for bad in (["nope"], ["ewgsop2_category"]):
        try:
            sarcokit.evaluate(frame, ["ewgsop2"], keep=bad)
        except ValueError as error:
            assert bad[0] in str(error)
        else:
            raise AssertionError(f"keep={bad} was accepted")


def test_conditions_make_a_diagnosis_read_as_secondary_sarcopenia() -> None:
    # AWGS 2019: grip 15 < 18 kg, gait 0.7 < 1.0 m/s, DXA ASMI 12 / 1.55² = 4.99 < 5.4 (women).
    record = {
        "sex": "female",
        "grip_kg": 15,
        "gait_speed_m_s": 0.7,
        "height_m": 1.55,
        "asm_kg": 12,
        "asm_method": "dxa",
        "conditions": "K74.60; COPD; I10",
    }
    payload = sarcokit.assess(record, definitions=["awgs2019"]).to_dict()
    assert payload["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"
    assert payload["secondary"]["conditions"]["recognised"] == ["cirrhosis", "copd"]
    assert payload["secondary"]["conditions"]["not_recognised"] == ["I10"]
    reasons = payload["definitions"]["awgs2019"]["reasons"]
    assert any(r.startswith("secondary sarcopenia: with cirrhosis") for r in reasons)
    # COPD is among the chronic diseases AWGS 2019 names as hospital case-finding triggers.
    assert any("COPD: AWGS 2019" in r for r in reasons)


def test_conditions_do_not_turn_no_sarcopenia_into_secondary() -> None:
    record = {"sex": "male", "grip_kg": 40, "conditions": ["E11.9"]}
    outcome = sarcokit.assess(record, definitions=["ewgsop2"]).to_dict()["definitions"]["ewgsop2"]
    assert outcome["category"] == "no_sarcopenia"
    assert not any("secondary" in r for r in outcome["reasons"])


# -- reasons as data (contract version 2) ----------------------------------------------------


def test_a_reason_is_data_beside_its_sentence() -> None:
    # DESIGN's example: grip 25.0 kg in a man is low under EWGSOP2 (Table 3: grip < 27 kg men).
    payload = sarcokit.assess(
        {"id": "p1", "sex": "male", "grip_kg": 25.0, "gait_speed_m_s": 0.9}, definitions=["ewgsop2"]
    ).to_dict()
    assert payload["contract_version"] == 2
    outcome = payload["definitions"]["ewgsop2"]
    grip = outcome["explanations"][0]
    assert {k: grip[k] for k in ("code", "test", "input", "value", "unit", "op", "low")} == {
        "code": "test",
        "test": "grip",
        "input": "grip_kg",
        "value": 25.0,
        "unit": "kg",
        "op": "<",
        "low": True,
    }
    assert grip["cutoffs"] == [
        {
            "value": 27.0,
            "op": "<",
            "sex": "male",
            "age_from": None,
            "age_below": None,
            "methods": None,
        }
    ]
    assert (grip["component"], grip["state"]) == ("strength", "low")
    assert (grip["source"], grip["source_text"]) == ("ewgsop2/tests/grip", "EWGSOP2 Table 3")
    # One sentence per structured reason, in the same order.
    assert len(outcome["reasons"]) == len(outcome["explanations"])
    category = outcome["explanations"][-2]
    assert category["code"] == "category" and category["category"] == "probable_sarcopenia"


def test_age_band_and_method_that_applied_are_data() -> None:
    # AWGS 2025 Table 2: women ≥65, ASM/height² by BIA < 5.7 kg/m² (12.6 / 1.5² = 5.6).
    record = {
        "sex": "female",
        "age": 78,
        "grip_kg": 17.5,
        "height_cm": 150,
        "asm_kg": 12.6,
        "asm_method": "bia",
    }
    outcome = sarcokit.assess(record, definitions=["awgs2025"]).to_dict()["definitions"]
    asmi = next(r for r in outcome["awgs2025"]["explanations"] if r["test"] == "asmi")
    [cutoff] = asmi["cutoffs"]
    assert (cutoff["value"], cutoff["op"], cutoff["sex"]) == (5.7, "<", "female")
    assert (cutoff["age_from"], cutoff["age_below"], cutoff["methods"]) == (65, None, ["bia"])


def test_a_stored_result_renders_in_another_language_without_the_engine() -> None:
    from sarcokit.result import Result

    record = {"id": "p2", "sex": "female", "age": 78, "grip_kg": 17.5, "gait_speed_m_s": 0.9}
    english = sarcokit.assess(record, definitions=["awgs2019", "awgs2025"]).to_dict()
    chinese = sarcokit.assess(record, definitions=["awgs2019", "awgs2025"], lang="zh").to_dict()
    stored = Result.from_dict(english, lang="zh").to_dict()
    assert stored == chinese
    # Sources come from the criteria file's Chinese labels, not its English text.
    assert any("AWGS 2019 摘要及图1" in r for r in chinese["definitions"]["awgs2019"]["reasons"])
    assert not any("Figure" in r for r in chinese["definitions"]["awgs2019"]["reasons"])


def test_a_version_1_result_keeps_its_recorded_reasons() -> None:
    from sarcokit.result import Result

    sentence = "grip 25.0 kg < 27 kg (men) → low strength [EWGSOP2 Table 3]"
    recorded: dict[str, Any] = {
        "id": "p3",
        "derived": {},
        "screening": {},
        "definitions": {
            "ewgsop2": {
                "category": "probable_sarcopenia",
                "components": {"strength": "low"},
                "reasons": [sentence],
                "next_steps": ["confirm_muscle_quantity"],
            }
        },
        "secondary": {},
        "definitions_sha256": None,
    }
    shown = Result.from_dict(recorded, lang="zh")
    assert shown.contract_version == 1
    assert shown.definitions["ewgsop2"].reasons == [sentence]


def test_every_shipped_source_and_name_has_a_chinese_label() -> None:
    for definition_id in DEFINITION_IDS:
        found = sarcokit.definition(definition_id)
        labels = found.labels["zh"]
        assert labels["name"]
        keys = {f"source.tests.{t.threshold.id}" for t in found.tests}
        keys |= {f"source.categories.{c.id}" for c in found.categories}
        if found.scope_source:
            keys.add("source.scope")
        assert keys <= set(labels), (definition_id, sorted(keys - set(labels)))


# -- next steps at the point of diagnosis ----------------------------------------------------

# A woman of 78 with grip 15 kg, gait 0.7 m/s and DXA ASM 11.9 kg at 150 cm (ASMI 5.29 kg/m²):
# severe sarcopenia under EWGSOP2 (grip < 16, ASMI < 5.5, gait ≤ 0.8) and AWGS 2019 (grip < 18,
# DXA ASMI < 5.4, gait < 1.0), sarcopenia under AWGS 2025 (age ≥ 65: grip < 18, DXA < 5.4).
CONFIRMED = {
    "sex": "female",
    "age": 78,
    "grip_kg": 15,
    "gait_speed_m_s": 0.7,
    "height_cm": 150,
    "asm_kg": 11.9,
    "asm_method": "dxa",
}


@pytest.mark.parametrize(
    ("definition_id", "category", "steps"),
    [
        # EWGSOP2: low strength triggers assessment of causes and intervention; Table 2 names
        # medication-related anorexia among the causes.
        (
            "ewgsop2",
            "severe_sarcopenia",
            ["identify_causes", "review_medication", "resistance_exercise", "nutrition_protein"],
        ),
        # AWGS 2019 and 2025: treatment by resistance exercise and protein nutrition.
        (
            "awgs2019",
            "severe_sarcopenia",
            ["identify_causes", "resistance_exercise", "nutrition_protein"],
        ),
        ("awgs2025", "sarcopenia", ["identify_causes", "resistance_exercise", "nutrition_protein"]),
    ],
)
def test_a_confirmed_diagnosis_has_cited_next_steps(
    definition_id: str, category: str, steps: list[str]
) -> None:
    outcome = sarcokit.assess(CONFIRMED, definitions=[definition_id]).to_dict()["definitions"][
        definition_id
    ]
    assert outcome["category"] == category
    assert outcome["next_steps"] == steps
    for step in steps:
        cited = outcome["next_step_sources"][step]
        assert cited["source"] == f"{definition_id}/categories/{category}/next_steps"
        assert cited["source_text"].startswith(sarcokit.definition(definition_id).name[:8])


def test_plain_sarcopenia_under_ewgsop2_has_the_same_steps() -> None:
    record = {**CONFIRMED, "gait_speed_m_s": 1.2}  # normal performance: not severe
    outcome = sarcokit.assess(record, definitions=["ewgsop2"]).to_dict()["definitions"]["ewgsop2"]
    assert outcome["category"] == "sarcopenia"
    assert "resistance_exercise" in outcome["next_steps"]


def test_cited_steps_render_in_chinese() -> None:
    result = sarcokit.assess(CONFIRMED, definitions=["awgs2019"], lang="zh")
    [(_, label), *_] = result.definitions["awgs2019"].cited_steps
    assert label is not None and label.startswith("AWGS 2019（肌少症诊断与治疗共识更新）")
