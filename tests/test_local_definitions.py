"""Definitions as user input: a local file runs everywhere a built-in one does, is checked whole
on load, and every result records the hash of the definition files that produced it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import sarcokit
from sarcokit.cli import app
from sarcokit.definitions import DefinitionError, definitions_hash

EXAMPLE = Path(__file__).parent.parent / "examples" / "local_definition.toml"
M = "male"


def test_example_local_definition_runs() -> None:
    loaded = sarcokit.load_definition(EXAMPLE)
    assert loaded.local
    assert loaded.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    # Man, grip 25 < 27 (EWGSOP2), BIA ASM 17.0 at 1.6 m: 17 / 2.56 = 6.64 < 6.8 (the example
    # file's cut-off) -> sarcopenia.
    low = {"sex": M, "grip_kg": 25.0, "height_m": 1.6, "asm_kg": 17.0, "asm_method": "bia"}
    payload = sarcokit.assess(low, definitions=["example_local_bia", "ewgsop2"]).to_dict()
    local = payload["definitions"]["example_local_bia"]
    assert local["category"] == "sarcopenia"
    assert local["local"] is True
    assert "local" not in payload["definitions"]["ewgsop2"]
    assert payload["definitions_sha256"] == definitions_hash(["example_local_bia", "ewgsop2"])
    # 17.92 / 2.56 = 7.0 exactly: >= 6.8, normal locally -> probable sarcopenia
    normal = {**low, "asm_kg": 17.92}
    result = sarcokit.assess(normal, definitions=["example_local_bia"]).to_dict()
    assert result["definitions"]["example_local_bia"]["category"] == "probable_sarcopenia"
    frame = sarcokit.evaluate(pl.DataFrame([low]), ["example_local_bia"])
    assert frame["example_local_bia_category"].cast(pl.String).to_list() == ["sarcopenia"]


def test_hash_changes_with_a_cut_off(tmp_path: Path) -> None:
    first = definitions_hash(["ewgsop2"])
    path = tmp_path / "mine.toml"
    path.write_text(EXAMPLE.read_text("utf-8").replace("example_local_bia", "mine"), "utf-8")
    sarcokit.load_definition(path)
    before = sarcokit.assess({"sex": M}, definitions=["mine"]).definitions_sha256
    path.write_text(
        EXAMPLE.read_text("utf-8")
        .replace("example_local_bia", "mine")
        .replace("male = 6.8", "male = 6.9"),
        "utf-8",
    )
    sarcokit.load_definition(path)
    after = sarcokit.assess({"sex": M}, definitions=["mine"]).definitions_sha256
    assert before != after
    assert definitions_hash(["ewgsop2"]) == first


BROKEN = """schema = 1
id = "broken"
name = "Broken"
title = "A file with several mistakes"
citation = "None"
population = "None"

[components.strength]
next_step = "assess_muscle_strength"

[components.muscle_quantity]
next_step = "assess_muscle_mass"

[[tests]]
id = "grip"
component = "strength"
input = "grip_strength"
low_when = "<"
cutoff = { male = 27, female = 16 }
source = "EWGSOP2 Table 3"

[[tests]]
id = "asmi"
component = "muscle"
input = "asmi_kg_m2"
low_when = "<"
cutoff = { male = 7.0, female = 5.5 }
source = "EWGSOP2 Table 3"

[[tests]]
id = "gait"
component = "strength"
input = "gait_speed_m_s"
low_when = "=<"
cutoff = { any = 0.8 }
source = "EWGSOP2 Table 3"

[[tests]]
id = "asmi_bands"
component = "muscle_quantity"
input = "asmi_kg_m2"
low_when = "<"
cutoffs = [
  { age_from = 50, age_below = 70, male = 7.2, female = 5.5 },
  { age_from = 65, male = 7.0, female = 5.4 },
]
source = ""

[[categories]]
id = "sarcopenia"
sarcopenia = true
when = "strength and muscle_quantity"
source = "EWGSOP2"

[[categories]]
id = "no_sarcopenia"
sarcopenia = false
when = "not sarcopenia and not severe"
source = "EWGSOP2"
"""


def test_loader_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, "utf-8")
    with pytest.raises(DefinitionError) as caught:
        sarcokit.load_definition(path)
    problems = caught.value.problems
    found = {message: line for line, message in problems}

    def line_of(text: str) -> int:
        return next(i for i, row in enumerate(BROKEN.splitlines(), 1) if row.startswith(text))

    def at(fragment: str) -> int | None:
        return next(line for message, line in found.items() if fragment in message)

    # unknown input field, on the input line of test grip
    assert at("unknown input field 'grip_strength'") == line_of('input = "grip_strength"')
    # unknown component, on the component line of test asmi
    assert at("unknown component 'muscle'") == line_of('component = "muscle"')
    # an inequality not allowed
    assert at("low_when = '=<'") == line_of('low_when = "=<"')
    # a cut-off without a source
    assert at("empty source") == line_of('source = ""')
    # overlapping strata: ages 65-69 are in both bands
    assert at("overlapping strata") is not None
    # a rule naming a category (not a component), and one naming nothing declared
    assert at("names category 'sarcopenia'") == line_of('when = "not sarcopenia')
    assert at("'severe', which is no declared component") == line_of('when = "not sarcopenia')
    assert len(problems) >= 7
    # The message is a compiler-style listing: path:line: message, one per problem.
    assert str(caught.value).splitlines()[1].startswith(f"{path}:")


def test_a_local_file_may_not_take_a_built_in_id(tmp_path: Path) -> None:
    path = tmp_path / "ewgsop2.toml"
    path.write_text(EXAMPLE.read_text("utf-8").replace("example_local_bia", "ewgsop2"), "utf-8")
    with pytest.raises(DefinitionError, match="built-in definition"):
        sarcokit.load_definition(path)


def test_every_built_in_file_declares_the_schema() -> None:
    for definition_id in sarcokit.DEFINITION_IDS:
        assert sarcokit.definition(definition_id).schema == 1
        assert len(sarcokit.definition(definition_id).sha256) == 64


def test_cli_assess_with_criteria(tmp_path: Path) -> None:
    record = tmp_path / "p.json"
    record.write_text(
        json.dumps(
            {
                "id": "p",
                "sex": M,
                "grip_kg": 25.0,
                "height_m": 1.6,
                "asm_kg": 17.0,
                "asm_method": "bia",
            }
        ),
        "utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["assess", "--json", str(record), "--definitions", "ewgsop2", "--criteria", str(EXAMPLE)],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert set(payload["definitions"]) == {"ewgsop2", "example_local_bia"}
    assert payload["definitions_sha256"] == definitions_hash(["ewgsop2", "example_local_bia"])


def test_cli_criteria_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, "utf-8")
    result = CliRunner().invoke(app, ["criteria", "check", str(path)])
    assert result.exit_code == 2
    assert "unknown input field 'grip_strength'" in result.output
    assert "overlapping strata" in result.output


def test_cli_cohort_with_criteria_records_the_hash(tmp_path: Path) -> None:
    cohort = tmp_path / "c.csv"
    pl.DataFrame(
        {
            "id": ["a", "b"],
            "sex": [M, "female"],
            "age": [70, 75],
            # a: 25 < 27 and BIA 17 / 2.56 = 6.64 < 6.8 -> sarcopenia; b: 15 < 16 (women) and
            # 14 / 2.25 = 6.22 >= 5.6 -> probable sarcopenia
            "grip_kg": [25.0, 15.0],
            "height_m": [1.6, 1.5],
            "asm_kg": [17.0, 14.0],
            "asm_method": ["bia", "bia"],
        }
    ).write_csv(cohort)
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(
        app,
        [
            "cohort",
            str(cohort),
            "--output",
            str(out),
            "--definitions",
            "ewgsop2",
            "--criteria",
            str(EXAMPLE),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    assert frame["example_local_bia_category"].to_list() == ["sarcopenia", "probable_sarcopenia"]
    metadata = json.loads(pl.read_parquet_metadata(out)["sarcokit.definitions"])
    expected = definitions_hash(["ewgsop2", "example_local_bia"])
    assert metadata["definitions_sha256"] == expected
    summary = json.loads((tmp_path / "r.summary" / "definitions.json").read_text("utf-8"))
    assert summary["definitions_sha256"] == expected
    assert [d["local"] for d in summary["definitions"]] == [False, True]


def test_the_loader_lists_its_problems_in_chinese_too(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, "utf-8")
    with pytest.raises(DefinitionError) as caught:
        sarcokit.load_definition(path)
    english = caught.value.in_language("en")
    chinese = caught.value.in_language("zh")
    # The same problems on the same lines; the English ones are the messages as raised.
    assert [line for line, _ in chinese] == [line for line, _ in english]
    assert [message for _, message in english] == [m for _, m in caught.value.problems]
    line = next(i for i, row in enumerate(BROKEN.splitlines(), 1) if "grip_strength" in row)
    assert (
        line,
        "检测 'grip' 读取未知的输入字段 'grip_strength'（不是受检者记录字段、派生值或评分）",
    ) in chinese
    # A rule's problem inside a category's: both parts translated.
    assert any(m.startswith("类别 'no_sarcopenia'：规则 ") for _, m in chinese)


def test_a_test_lacking_a_key_is_listed_not_a_crash(tmp_path: Path) -> None:
    # "lacks 'source'" was a TypeError: the message's value named `key` collided with text()'s
    # own parameter.
    lines = EXAMPLE.read_text("utf-8").splitlines()
    first = next(i for i, row in enumerate(lines) if row.startswith("source = "))
    path = tmp_path / "lacking.toml"
    path.write_text("\n".join(lines[:first] + lines[first + 1 :]), "utf-8")
    with pytest.raises(DefinitionError, match="lacks 'source'"):
        sarcokit.load_definition(path)


def test_values_of_the_wrong_type_are_named_with_their_lines(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text("utf-8").splitlines()
    sources = [i for i, row in enumerate(lines) if row.startswith("source = ")]
    lines[sources[-1]] = "source = 5"  # the last source: a category's
    cutoff = next(i for i, row in enumerate(lines) if row.startswith("cutoff = {"))
    lines[cutoff] = lines[cutoff].replace("male = ", 'male = "x", was = ', 1)
    population = next(i for i, row in enumerate(lines) if row.startswith("population = "))
    lines[population] = "population = [65]"
    path = tmp_path / "typed.toml"
    path.write_text("\n".join(lines), "utf-8")
    with pytest.raises(DefinitionError) as caught:
        sarcokit.load_definition(path)
    found = dict((message.split(":")[0], line) for line, message in caught.value.problems)
    last_category = sum(1 for row in lines if row.strip() == "[[categories]]") - 1
    assert found == {
        "population": population + 1,
        "tests[0].cutoff.male": cutoff + 1,
        f"categories[{last_category}].source": sources[-1] + 1,
    }
    chinese = caught.value.in_language("zh")
    assert any("类型不对" in message for _, message in chinese)


# Values of every TOML type, put in place of a key's value in the built-in files.
HOSTILE_VALUES = ["5", "-1.5", '"x"', '""', "true", "[]", "{}", "[1, 2]", "{ a = 1 }", "nan"]


def test_hostile_values_anywhere_are_listed_never_a_crash() -> None:
    import random
    import re
    from importlib.resources import files

    from sarcokit.definitions import local_from_text

    criteria = sorted(
        (p for p in files("sarcokit").joinpath("criteria").iterdir() if p.name.endswith(".toml")),
        key=lambda p: p.name,
    )
    assignment = re.compile(r"^(\s*[A-Za-z0-9_]+\s*=\s*)(.+)$")
    outcomes = {"refused": 0, "loaded": 0}
    for seed in range(300):
        chosen = random.Random(seed)
        source = criteria[seed % len(criteria)].read_text("utf-8")
        lines = []
        for row in source.splitlines():
            match = assignment.match(row)
            if row.startswith("id ="):
                row = 'id = "local_hostile"'
            elif match and not match.group(2).rstrip().endswith(("[", "{")):
                if chosen.random() < 0.06:
                    row = match.group(1) + chosen.choice(HOSTILE_VALUES)
                elif chosen.random() < 0.03:
                    continue
            lines.append(row)
        try:
            local_from_text("\n".join(lines), f"hostile-{seed}.toml")
            outcomes["loaded"] += 1
        except DefinitionError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 200  # nearly every mutation is caught, none crashes
