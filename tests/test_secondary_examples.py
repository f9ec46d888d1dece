"""The cirrhosis, oncology and osteoporosis examples end to end through `sarcokit assess`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from sarcokit.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "secondary.json"


def run() -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["assess", "--json", str(EXAMPLES), "--definitions", "ewgsop2,awgs2019"]
    )
    assert result.exit_code == 0, result.output
    return {r["id"]: r for r in json.loads(result.output)}


def test_cirrhosis_example() -> None:
    patient = run()["cirrhosis"]
    secondary = patient["secondary"]
    # L3 SMI = 130 cm² / 1.75² m² = 42.45; BMI 70 / 1.75² = 22.9 (< 25): Martin 2013 men < 43
    # → low; Carey 2017 men < 50 → low; Prado 2008 men ≤ 52.4 → low; attenuation 35 HU < 41 HU
    # (BMI < 25) → myosteatosis.
    assert secondary["ct_muscle"]["l3_smi_cm2_m2"] == 42.45
    assert secondary["ct_muscle"]["martin2013"] == {"low_smi": True, "myosteatosis": True}
    assert secondary["ct_muscle"]["carey2017"]["low_smi"] is True
    # MELD(i) = 0.957 ln 1.2 + 0.378 ln 2.0 + 1.120 ln 1.5 + 0.643 = 1.5336 → ×10 → 15.
    # MELD-Na = 15 + 1.32 × (137 − 130) − 0.033 × 15 × 7 = 20.775 → 21 (OPTN policy 9.1).
    # MELD-Sarcopenia = MELD + 10.35 (Montano-Loza 2015) = 25.35 with CT muscle low by Martin.
    assert secondary["liver"]["meld"] == 15
    assert secondary["liver"]["meld_na"] == 21
    assert secondary["liver"]["meld_sarcopenia"] == 25.35
    assert secondary["liver"]["meld_sarcopenia_base"] == "meld"
    assert secondary["conditions"]["recognised"] == ["cirrhosis"]
    # Grip 24 kg < 27 kg (EWGSOP2, men) is low strength; with asm_method = ct and the cirrhosis
    # cut-offs (Carey 2017: 42.45 < 50) CT confirms low muscle quantity; gait 0.9 > 0.8 m/s.
    ewgsop2 = patient["definitions"]["ewgsop2"]
    assert ewgsop2["category"] == "sarcopenia"
    assert any(
        r.startswith("muscle by CT at L3 ct_reference carey2017") for r in ewgsop2["reasons"]
    )


def test_oncology_example() -> None:
    patient = run()["oncology"]
    ct = patient["secondary"]["ct_muscle"]
    # SMI 100 / 1.6² = 39.06; BMI 70 / 2.56 = 27.3: Martin women < 41 at any BMI → low;
    # Prado women ≤ 38.5 → not low; Carey women < 39 → not low; 30 HU < 33 HU (BMI ≥ 25).
    assert ct["l3_smi_cm2_m2"] == 39.06
    assert ct["martin2013"] == {"low_smi": True, "myosteatosis": True}
    assert ct["prado2008"]["low_smi"] is False
    assert ct["carey2017"]["low_smi"] is False
    # GLIM: weight loss 7% > 5% within 6 months (phenotypic) and reduced intake (etiologic).
    glim = patient["secondary"]["glim"]
    assert glim["phenotypic_met"] is True and glim["malnutrition"] is True
    assert patient["secondary"]["conditions"]["recognised"] == ["cancer"]


def test_osteoporosis_example() -> None:
    patient = run()["osteoporosis"]
    # AWGS 2019: grip 15 < 18 kg, gait 0.7 < 1.0 m/s, DXA ASMI 11.0 / 1.52² = 4.76 < 5.4.
    assert patient["definitions"]["awgs2019"]["category"] == "severe_sarcopenia"
    secondary = patient["secondary"]
    # WHO: T-score −2.8 ≤ −2.5 → osteoporosis; every osteosarcopenia variant holds.
    assert secondary["bone_category"] == "osteoporosis"
    assert secondary["osteosarcopenia"]["t_minus2_5_severe_awgs2019"] is True
    assert secondary["osteosarcopenia"]["t_below_minus1_sarcopenia_awgs2019"] is True
    # Vitamin D 15 ng/mL < 20 ng/mL: deficient (Holick 2011).
    assert secondary["factors"]["vitamin_d"] == {"value": 15.0, "flag": "deficient"}
    reasons = patient["definitions"]["awgs2019"]["reasons"]
    assert any(r.startswith("secondary sarcopenia: with osteoporosis") for r in reasons)
