"""The `sarcokit` command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sarcokit.cli import app

runner = CliRunner()
RECORD = {"id": "p1", "sex": "male", "grip_kg": 25.0, "gait_speed_m_s": 0.9}


def test_assess_json_object_prints_one_object(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(RECORD))
    result = runner.invoke(app, ["assess", "--json", str(path), "--definitions", "ewgsop2"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["definitions"]["ewgsop2"]["category"] == "probable_sarcopenia"


def test_assess_json_array_and_lines_keep_their_shape(tmp_path: Path) -> None:
    array = tmp_path / "many.json"
    array.write_text(json.dumps([RECORD, {**RECORD, "id": "p2", "grip_kg": 40}]))
    result = runner.invoke(app, ["assess", "--json", str(array), "--definitions", "ewgsop2"])
    assert [r["id"] for r in json.loads(result.output)] == ["p1", "p2"]
    lines = tmp_path / "many.jsonl"
    lines.write_text(json.dumps(RECORD) + "\n" + json.dumps({**RECORD, "id": "p2"}) + "\n")
    result = runner.invoke(app, ["assess", "--json", str(lines), "--definitions", "ewgsop2"])
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == ["p1", "p2"]


def test_assess_reads_stdin() -> None:
    result = runner.invoke(
        app, ["assess", "--json", "-", "--definitions", "sdoc2020"], input=json.dumps(RECORD)
    )
    assert result.exit_code == 0
    # SDOC 2020: weakness (grip < 35.5 kg men) and slowness (gait < 0.8 m/s); 0.9 m/s is not slow.
    assert json.loads(result.output)["definitions"]["sdoc2020"]["category"] == "no_sarcopenia"


def test_rejected_record_exits_1_with_the_error_in_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([RECORD, {"id": "bad", "height_m": 160}]))
    result = runner.invoke(app, ["assess", "--json", str(path)])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload[1]["error"]["field"] == "height_m"


def test_malformed_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"id": 1,\n')
    result = runner.invoke(app, ["assess", "--json", str(path)])
    assert result.exit_code == 2
    assert "line 1" in result.output


def test_flags_give_the_terminal_view_in_english_and_chinese() -> None:
    args = ["assess", "--sex", "female", "--age", "78", "--grip-kg", "17.5", "--gait-speed", "0.9"]
    args += [
        "--height-cm",
        "150",
        "--asm-kg",
        "12.6",
        "--asm-method",
        "bia",
        "--definitions",
        "awgs2019",
    ]
    english = runner.invoke(app, args)
    assert english.exit_code == 0, english.output
    # AWGS 2019: grip < 18 kg (women), gait < 1.0 m/s, BIA ASMI 12.6/1.5² = 5.6 < 5.7 → severe.
    assert "severe sarcopenia" in english.output
    chinese = runner.invoke(app, [*args, "--lang", "zh"])
    assert "严重肌少症" in chinese.output


def test_set_passes_any_field() -> None:
    result = runner.invoke(
        app,
        [
            "assess",
            "--sex",
            "male",
            "--set",
            "chair_stand_unable=true",
            "--definitions",
            "ewgsop2",
            "--output",
            "json",
        ],
    )
    assert json.loads(result.output)["definitions"]["ewgsop2"]["components"]["strength"] == "low"


def test_unknown_definition_is_named() -> None:
    result = runner.invoke(app, ["assess", "--sex", "male", "--definitions", "ewgsop3"])
    assert result.exit_code == 2
    assert "ewgsop3" in result.output


def test_criteria_list_and_show_print_citations() -> None:
    listing = runner.invoke(app, ["criteria", "list"])
    assert listing.exit_code == 0 and "awgs2019_community" in listing.output
    shown = runner.invoke(app, ["criteria", "show", "ewgsop2"])
    assert shown.exit_code == 0
    assert "Age Ageing 2019" in shown.output
    assert "EWGSOP2 Table 3" in shown.output


def test_a_json_line_that_is_not_an_object_is_answered_in_place(tmp_path: Path) -> None:
    lines = tmp_path / "mixed.jsonl"
    lines.write_text(json.dumps(RECORD) + "\n42\n" + json.dumps({**RECORD, "id": "p3"}) + "\n")
    result = runner.invoke(app, ["assess", "--json", str(lines), "--definitions", "ewgsop2"])
    assert result.exit_code == 1
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert answers[0]["id"] == "p1" and answers[2]["id"] == "p3"
    assert answers[1]["error"]["field"] == "record"
    assert "expected a JSON object" in answers[1]["error"]["message"]
