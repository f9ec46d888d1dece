"""The mapping as data: UCUM codes parse, conversions agree with UCUM, LOINC codes check."""

from __future__ import annotations

import math

import pytest

from sarcokit.fhir.codes import codesystem, concepts, sarc_f_questionnaire
from sarcokit.fhir.mapping import fhir_mapping, ucum_codes

ucumvert = pytest.importorskip("ucumvert")

# Accepted units whose conversion is not a UCUM unit conversion, each for a stated reason:
# dynamometers read kilogram-force and the field (and every consensus paper) calls it kg; a molar
# unit converts to a mass unit through the analyte's molar mass (fields.toml: creatinine ÷ 88.4,
# bilirubin ÷ 17.1); sodium is monovalent, so 1 meq = 1 mmol.
NOT_UCUM_CONVERSIONS = {
    ("grip_kg", "kg"),
    ("creatinine_mg_dl", "umol/L"),
    ("bilirubin_mg_dl", "umol/L"),
    ("sodium_mmol_l", "meq/L"),
}

# The LOINC codes issue 13 lists as verified against LOINC, plus the two molar variants added
# with their evidence in fhir.toml (14682-9 creatinine, 14631-6 bilirubin).
EXPECTED_LOINC = {
    "83174-3", "83173-5", "83172-7", "83169-3", "83170-1", "8302-2", "29463-7", "39156-5",
    "2160-0", "14682-9", "33863-2", "1975-2", "14631-6", "6301-6", "2951-2", "1751-7",
    "61151-7", "61152-5", "62292-8", "4548-4", "38263-0", "38267-1",
}  # fmt: skip


def test_every_ucum_code_parses_with_a_ucum_parser() -> None:
    parser = ucumvert.get_ucum_parser()
    for code in sorted(ucum_codes()):
        parser.parse(code)  # raises on a code outside the UCUM grammar


def test_the_parser_refuses_what_is_not_ucum() -> None:
    # The check above can fail: common non-UCUM spellings are refused by the same parser.
    parser = ucumvert.get_ucum_parser()
    for wrong in ("lbs", "kg/m^2", "µmol/L"):
        with pytest.raises(Exception):  # noqa: B017 - lark's error classes vary by version
            parser.parse(wrong)


def test_conversions_agree_with_ucum() -> None:
    registry = ucumvert.PintUcumRegistry()
    checked = 0
    for item in fhir_mapping().inputs:
        canonical = next((u for u, column in item.units.items() if column == item.field), None)
        for unit in item.units:
            if canonical is None:
                assert (item.field, unit) in NOT_UCUM_CONVERSIONS, (item.name, unit)
                continue
            if (item.field, unit) in NOT_UCUM_CONVERSIONS or unit == canonical:
                continue
            if {unit, canonical} <= {"1", "{score}", "{INR}", "{T-score}", "{SD}"}:
                # Dimensionless unity and its annotations: the same number.
                assert item.to_canonical(1.0, unit) == 1.0, (item.name, unit)
                continue
            expected = registry.from_ucum(unit).to(registry.from_ucum(canonical)).magnitude
            assert math.isclose(item.to_canonical(1.0, unit), expected, rel_tol=1e-12), (
                item.name,
                unit,
            )
            checked += 1
    assert checked >= 8


def test_emitted_units_round_trip() -> None:
    for item in fhir_mapping().inputs:
        canonical = item.to_canonical(123.0, item.emit)
        assert math.isclose(item.from_canonical(canonical), 123.0, rel_tol=1e-12), item.name


def _luhn_check_digit(number: str) -> int:
    # LOINC's Mod 10 check digit (LOINC Users' Guide): double every other digit from the right.
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10


def test_loinc_codes_are_the_verified_ones_with_valid_check_digits() -> None:
    mapping = fhir_mapping()
    loinc = mapping.systems["loinc"]
    used = {c.code for item in mapping.inputs for c in item.codes if c.system == loinc}
    used |= {o.code.code for o in mapping.outputs.values() if o.code.system == loinc}
    assert used == EXPECTED_LOINC
    for code in used:
        number, check = code.split("-")
        assert _luhn_check_digit(number) == int(check), code
    assert all(c.evidence for item in mapping.inputs for c in item.codes if c.system == loinc)


def test_luhn_check_can_fail() -> None:
    assert _luhn_check_digit("8302") == 2
    assert _luhn_check_digit("8302") != 3


def test_codesystem_is_generated_from_the_data_and_valid() -> None:
    from fhir.resources.R4B.codesystem import CodeSystem

    resource = codesystem()
    CodeSystem.model_validate(resource)
    codes = [c["code"] for c in resource["concept"]]
    assert len(codes) == len(set(codes)) == resource["count"]
    # Measurements without LOINC (issue 13) each have a project code.
    for code in (
        "chair-stand-5x", "sppb-total", "calf-circumference", "asm-dxa", "alm-dxa", "asmi",
        "l3-smi", "sarc-f-total",
    ):  # fmt: skip
        assert code in codes
    # Definitions and their categories come from the criteria files.
    assert {"ewgsop2", "probable_sarcopenia", "indeterminate", "strength", "low"} <= set(codes)
    # Every project code the mapping uses is a concept.
    project = fhir_mapping().codesystem_url
    for item in fhir_mapping().inputs:
        for coding in item.codes:
            if coding.system == project:
                assert coding.code in concepts()


def test_sarc_f_questionnaire_scores_by_item_weight() -> None:
    from fhir.resources.R4B.questionnaire import Questionnaire

    resource = sarc_f_questionnaire()
    Questionnaire.model_validate(resource)
    assert [i["linkId"] for i in resource["item"]] == [
        "sarc_f_strength",
        "sarc_f_assistance_walking",
        "sarc_f_rise_from_chair",
        "sarc_f_climb_stairs",
        "sarc_f_falls",
    ]
    for item in resource["item"]:
        weights = [
            next(
                e["valueDecimal"]
                for e in option["valueCoding"]["extension"]
                if e["url"] == "http://hl7.org/fhir/StructureDefinition/itemWeight"
            )
            for option in item["answerOption"]
        ]
        # Malmstrom 2013: each item scores 0, 1 or 2.
        assert weights == [0, 1, 2]


def test_docs_fhir_mappings_md_is_current() -> None:
    from pathlib import Path

    from sarcokit.fhir.mapping_doc import mappings_markdown

    committed = (Path(__file__).parents[2] / "docs" / "fhir-mappings.md").read_text("utf-8")
    assert committed == mappings_markdown(), "docs/fhir-mappings.md is stale: run `make docs`"


def test_the_mappings_document_lists_every_code_with_its_evidence() -> None:
    from sarcokit.fhir.mapping_doc import mappings_markdown

    text = mappings_markdown()
    # Codes the issue lists as verified, and the ICD-10-CM code, each with evidence.
    for code in ("83174-3", "83172-7", "8302-2", "39156-5", "62292-8", "38267-1", "M62.84"):
        assert f"`{code}`" in text
    assert "none recorded" not in text
    # The factor of pounds-force (from fields.toml) is written in full.
    assert "`[lbf_av]` × 0.45359237 (as `grip_lb`) → `grip_kg`" in text
