"""`sarcokit assess --fhir BUNDLE.json`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from interop.support import bundle, observation, patient
from sarcokit.cli import app


def test_assess_fhir_prints_result_and_sources_and_writes_back(tmp_path: Path) -> None:
    source = tmp_path / "bundle.json"
    source.write_text(
        json.dumps(bundle(patient(gender="female"), observation("g", "83174-3", 15.0, "kgf")))
    )
    out = tmp_path / "result.json"
    result = CliRunner().invoke(
        app,
        ["assess", "--fhir", str(source), "--as-of", "2026-12-01", "--definitions", "ewgsop2",
         "--fhir-out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["definitions"]["ewgsop2"]["category"] == "probable_sarcopenia"
    assert printed["fhir"]["used"][1]["resource"] == "Observation/g"
    written = json.loads(out.read_text())
    assert written["type"] == "transaction"


def test_assess_fhir_refuses_a_non_bundle(tmp_path: Path) -> None:
    source = tmp_path / "patient.json"
    source.write_text(json.dumps(patient()))
    result = CliRunner().invoke(app, ["assess", "--fhir", str(source)])
    assert result.exit_code != 0
    assert "resourceType" in result.output
