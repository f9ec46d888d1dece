"""Bulk Data NDJSON → one record per patient, by the same rules as a Bundle."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from interop.support import (
    LOINC,
    PROJECT,
    SARC_F,
    UCUM,
    assert_bulk_row_is_bundle_record,
    bundle,
    observation,
    patient,
    sarc_f,
    small_blocks,
)
from sarcokit.fhir.bulk import is_bulk_export, read_bulk
from sarcokit.fhir.inbound import read_bundle

AS_OF = date(2026, 12, 1)


def _of(pid: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {**resource, "subject": {"reference": f"Patient/{pid}"}}


def _export(tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    by_patient: dict[str, list[dict[str, Any]]] = {
        "p1": [
            patient(),
            observation("r1", "83174-3", 24.0, "kgf"),
            observation("l2", "83173-5", 60.0, "[lbf_av]"),
            observation("old", "83174-3", 40.0, "kgf", when="2026-10-01"),
            observation("w", "29463-7", 154.0, "lbs"),
            observation("h", "8302-2", 170.0, "cm"),
            observation("t1", "83169-3", 5.0, "s"),
            observation("t2", "83170-1", 4.5, "s"),
            observation("s", "sppb-total", 8.0, "{score}", system=PROJECT),
            observation("c", "14682-9", 88.4, "umol/L"),
            sarc_f("q", {"sarc_f_strength": 2, "sarc_f_falls": 1}),
        ],
        "p2": [
            {**patient(gender="female", birth="1944"), "id": "p2"},
            _of("p2", observation("x", "1234-5", 1.0, "1")),
            _of("p2", observation("e", "8302-2", 150.0, "cm", status="entered-in-error")),
            _of("p2", observation("t", "83169-3", 5.0, "s")),
            _of("p2", observation("gs", "83172-7", 0.7, "m/s")),
            _of("p2", observation("too", "29463-7", 50.0, "kg", when="2026-01-01")),
            _of("p2", observation("a", "asm-dxa", 14200.0, "g", system=PROJECT)),
        ],
        "p3": [{**patient(gender="other", birth="1930-01-31"), "id": "p3"}],
    }
    folder = tmp_path / "export"
    folder.mkdir()
    files: dict[str, list[str]] = {}
    for resources in by_patient.values():
        for resource in resources:
            files.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for kind, lines in files.items():
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
    return folder, by_patient


def _export_of(tmp_path: Path, resources: list[dict[str, Any]]) -> Path:
    """An export folder with one NDJSON file per resource type of `resources`."""
    folder = tmp_path / "export"
    folder.mkdir()
    for kind in ("Patient", "Observation", "QuestionnaireResponse"):
        lines = [json.dumps(r) for r in resources if r["resourceType"] == kind]
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
    return folder


# The reasons the bulk reader gives in the Bundle reader's words.
WORDED = {"entered_in_error", "status", "no_date", "future", "too_old", "superseded"}


def _worded(ignored: list[dict[str, Any]], pid: str | None = None) -> set[tuple[str, str, str]]:
    return {
        (i["resource"], i["reason"], i["detail"])
        for i in ignored
        if i["resource"].startswith("Observation/")
        and i["reason"] in WORDED
        and (pid is None or i["patient"] == pid)
    }


def _worded_in_bundle(ignored: Any) -> set[tuple[str, str, str]]:
    return {
        (i.resource, i.reason, i.detail)
        for i in ignored
        if i.resource.startswith("Observation/") and i.reason in WORDED
    }


def test_bulk_gives_the_same_records_and_reasons_as_bundles(tmp_path: Path) -> None:
    folder, by_patient = _export(tmp_path)
    assert is_bulk_export([folder])
    read = read_bulk([folder], AS_OF)
    rows = {r["id"]: r for r in read.records.collect().to_dicts()}
    ignored = read.ignored.collect().to_dicts()
    assert set(rows) == {"p1", "p2", "p3"}
    for pid, resources in by_patient.items():
        single = read_bundle(bundle(*resources), AS_OF)
        assert_bulk_row_is_bundle_record(rows[pid], single.record, pid)
        # Every observation, response and Patient element left out, with the same reason and,
        # for the Patient's gender and birth date, the same words.
        observed = {(i.resource, i.reason) for i in single.ignored}
        assert {(i["resource"], i["reason"]) for i in ignored if i["patient"] == pid} == observed
        said = {(i.resource, i.code, i.detail) for i in single.ignored if i.resource[0] == "P"}
        listed = {(i["resource"], i["code"], i["detail"]) for i in ignored if i["patient"] == pid}
        assert {row for row in listed if row[0].startswith("Patient/")} == said
        # And, for an observation refused for its status or date or superseded, the same words.
        assert _worded(ignored, pid) == _worded_in_bundle(single.ignored)


def test_bulk_values_by_hand(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    rows = {r["id"]: r for r in read_bulk([folder], AS_OF).records.collect().to_dicts()}
    p1, p2, p3 = rows["p1"], rows["p2"], rows["p3"]
    # 60 lbf × 0.45359237 = 27.2155422 kgf, the best trial that day.
    assert p1["grip_kg"] == pytest.approx(27.2155422)
    # 88.4 µmol/L ÷ 88.4 = 1 mg/dL; fastest 4 m trial 4.5 s.
    assert p1["creatinine_mg_dl"] == pytest.approx(1.0)
    assert (p1["walk_time_s"], p1["walk_distance_m"]) == (4.5, 4.0)
    assert (p1["sppb"], p1["sarc_f_strength"], p1["sarc_f_falls"]) == (8, 2, 1)
    assert p1["age"] == 76 and p1["weight_kg"] is None
    # p2: gait speed measured, so the trial is not used; 14200 g = 14.2 kg by DXA.
    assert p2["gait_speed_m_s"] == 0.7 and p2["walk_time_s"] is None
    assert (p2["asm_kg"], p2["asm_method"]) == (pytest.approx(14.2), "dxa")
    assert p2["age"] is None  # birthDate "1944" is not a full date
    assert p3["sex"] is None and p3["age"] == 96


def test_observation_of_an_unknown_patient_is_listed(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    with (folder / "Observation.ndjson").open("a") as out:
        out.write(json.dumps(_of("p9", observation("z", "8302-2", 160.0, "cm"))) + "\n")
    ignored = read_bulk([folder], AS_OF).ignored.collect().to_dicts()
    assert {"resource": "Observation/z", "patient": "p9", "code": "8302-2",
            "reason": "other_patient",
            "detail": "subject Patient/p9 is not a Patient in the export"} in ignored  # fmt: skip


def test_cohort_reads_a_bulk_export(tmp_path: Path) -> None:
    import polars as pl
    from typer.testing import CliRunner

    from sarcokit.cli import app

    folder, _ = _export(tmp_path)
    with (folder / "Observation.ndjson").open("a") as out:
        out.write('{"resourceType": "Observation", "id": \n')
    output = tmp_path / "out" / "results.parquet"
    output.parent.mkdir()
    result = CliRunner().invoke(
        app,
        ["cohort", str(folder), "--output", str(output), "--definitions", "ewgsop2",
         "--as-of", AS_OF.isoformat()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # The records scored are those of the export on the date asked for.
    records = pl.read_parquet(output.with_name("results.fhir-records.parquet"))
    assert records.equals(read_bulk([folder], AS_OF).records.collect())
    scored = pl.read_parquet(output)
    rejected = pl.read_csv(output.with_name("results.rejects.csv"))
    # Three patients read: each either scored or rejected with its reason, none lost.
    assert scored.height + rejected.height == 3
    ignored = output.with_name("results.fhir-ignored.parquet")
    assert f"FHIR resources left out: {ignored}" in result.output
    # Every reason is counted on the terminal, the malformed line (the file's last) among them.
    counts = pl.read_parquet(ignored)["reason"].value_counts()
    for reason, n in counts.iter_rows():
        assert f"  {reason}: {n:,}" in result.output
    assert "  malformed: 1" in result.output


def test_many_blocks_and_partitions_give_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import polars as pl

    from sarcokit.fhir import bulk

    folder, _ = _export(tmp_path)
    whole = read_bulk([folder], AS_OF)
    expected = pl.collect_all([whole.records, whole.ignored])
    # Blocks of a few hundred bytes (one or two resources each) and one partition per ~100 bytes
    # of export: a patient's observations are then spread over blocks and partitions.
    small_blocks(monkeypatch, 600)
    monkeypatch.setattr(bulk, "PARTITION_BYTES", 100)
    split = read_bulk([folder], AS_OF)
    records, ignored = pl.collect_all([split.records, split.ignored])
    assert records.equals(expected[0])  # the export's patient order is kept
    assert ignored.sort(pl.all()).equals(expected[1].sort(pl.all()))
    assert ignored.height == expected[1].height > 0


def test_a_response_of_an_unknown_patient_is_listed(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    with (folder / "QuestionnaireResponse.ndjson").open("a") as out:
        out.write(json.dumps(_of("p9", sarc_f("q9", {"sarc_f_falls": 2}))) + "\n")
    read = read_bulk([folder], AS_OF)
    ignored = read.ignored.collect().to_dicts()
    assert {"resource": "QuestionnaireResponse/q9", "patient": "p9", "code": "sarc-f",
            "reason": "other_patient",
            "detail": "subject Patient/p9 is not a Patient in the export"} in ignored  # fmt: skip
    assert "p9" not in read.records.collect()["id"].to_list()


HOSTILE_LINES = [
    ('{"resourceType": "Observation", "id": ', "not JSON: Expecting value: line 1 column 39"),
    ('["not", "a", "resource"]', "not a JSON object but an array"),
    (
        '{"resourceType": "Observation", "id": 5, "status": "final"}',
        "id is 5 (a number); expected a string",
    ),
    (
        '{"resourceType": "Observation", "id": "v", "valueQuantity": {"value": "24.0"}}',
        'valueQuantity.value is "24.0" (a string); expected a number',
    ),
    (
        '{"resourceType": "Observation", "id": "c", "code": {"coding": [{"code": 83174}]}}',
        "code.coding[0].code is 83174 (a number); expected a string",
    ),
    (
        '{"resourceType": "Observation", "id": "b", "valueQuantity": {"value": true}}',
        "valueQuantity.value is true (true or false); expected a number",
    ),
]


@pytest.mark.parametrize("block_bytes", [600, 1 << 25])
def test_each_malformed_line_is_refused_with_its_number_and_the_rest_is_read(
    tmp_path: Path, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:

    folder, _ = _export(tmp_path)
    clean = read_bulk([folder], AS_OF)
    path = folder / "Observation.ndjson"
    lines = path.read_text().splitlines()
    # The hostile lines between good ones, a blank line among them (skipped, as NDJSON allows).
    hostile = [line for line, _ in HOSTILE_LINES]
    mixed = lines[:3] + hostile[:3] + [""] + lines[3:] + hostile[3:]
    path.write_text("\n".join(mixed) + "\n")
    small_blocks(monkeypatch, block_bytes)
    read = read_bulk([folder], AS_OF)
    # The good lines give exactly what they gave alone.
    assert read.records.collect().equals(clean.records.collect())
    ignored = read.ignored.collect()
    malformed = ignored.filter(pl.col("reason") == "malformed")
    numbers = [mixed.index(line) + 1 for line in hostile]
    assert malformed["resource"].to_list() == [f"Observation.ndjson line {n}" for n in numbers]
    for detail, (_, expected) in zip(malformed["detail"], HOSTILE_LINES, strict=True):
        assert expected in detail
    assert malformed["patient"].null_count() == len(hostile)
    rest = ignored.filter(pl.col("reason") != "malformed")
    assert rest.sort(pl.all()).equals(clean.ignored.collect().sort(pl.all()))


def test_a_malformed_patient_line_leaves_its_observations_about_no_known_patient(
    tmp_path: Path,
) -> None:
    folder, _ = _export(tmp_path)
    path = folder / "Patient.ndjson"
    lines = path.read_text().splitlines()
    broken = lines[0].replace('"gender": "male"', '"gender": ["male"]')
    assert broken != lines[0]
    path.write_text("\n".join([broken, *lines[1:]]) + "\n")
    read = read_bulk([folder], AS_OF)
    assert sorted(read.records.collect()["id"]) == ["p2", "p3"]
    ignored = read.ignored.collect()
    row = ignored.filter(pl.col("reason") == "malformed").to_dicts()
    assert row == [
        {
            "resource": "Patient.ndjson line 1",
            "patient": None,
            "code": None,
            "reason": "malformed",
            "detail": 'gender is ["male"] (an array); expected a string',
        }
    ]
    # p1's observations are kept and listed as about a patient not in the export.
    assert set(ignored.filter(pl.col("patient") == "p1")["reason"]) <= {
        "other_patient",
        "unknown_code",
    }


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_value_json_does_not_have_is_no_value_in_bulk_and_in_a_bundle(
    tmp_path: Path, value: str
) -> None:
    folder, _ = _export(tmp_path)
    grip = observation("nan", "83174-3", 99.0, "kgf")
    line = json.dumps(grip).replace("99.0", value)
    with (folder / "Observation.ndjson").open("a") as out:
        out.write(line + "\n")
    rows = {r["id"]: r for r in read_bulk([folder], AS_OF).records.collect().to_dicts()}
    ignored = read_bulk([folder], AS_OF).ignored.collect()
    assert rows["p1"]["grip_kg"] == pytest.approx(27.2155422)  # as without the line
    assert ignored.filter(pl.col("resource") == "Observation/nan")["reason"].to_list() == [
        "no_value"
    ]
    single = read_bundle(bundle(patient(), json.loads(line)), AS_OF)
    assert "grip_kg" not in single.record
    assert [(i.resource, i.reason) for i in single.ignored] == [("Observation/nan", "no_value")]


def test_cohort_as_of_is_checked(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sarcokit.cli import app

    folder, _ = _export(tmp_path)
    bad = CliRunner().invoke(app, ["cohort", str(folder), "--as-of", "2026-13-01"])
    assert bad.exit_code == 2
    assert "--as-of '2026-13-01': expected a date YYYY-MM-DD" in bad.output
    table = tmp_path / "cohort.csv"
    table.write_text("id,sex,age\n1,male,70\n")
    not_fhir = CliRunner().invoke(app, ["cohort", str(table), "--as-of", "2026-12-01"])
    assert not_fhir.exit_code == 2
    assert "applies to a FHIR Bulk Data export only" in not_fhir.output


def test_a_resource_longer_than_a_parse_block_is_read(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    clean = read_bulk([folder], AS_OF)
    # A narrative of 3 MiB (a field sarcokit does not read) on one observation: longer than
    # Arrow's 1 MiB parse block, so that piece is read again line by line.
    path = folder / "Observation.ndjson"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["text"] = {"status": "generated", "div": "<div>" + "x" * (3 << 20) + "</div>"}
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    read = read_bulk([folder], AS_OF)
    assert read.records.collect().equals(clean.records.collect())
    assert read.ignored.collect().sort(pl.all()).equals(clean.ignored.collect().sort(pl.all()))


def test_an_integer_beyond_64_bits_is_refused_naming_the_element(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    line = json.dumps(
        {**observation("big", "sppb-total", 8.0, "{score}", system=PROJECT), "valueInteger": 1}
    ).replace('"valueInteger": 1', '"valueInteger": 100000000000000000000')
    with (folder / "Observation.ndjson").open("a") as out:
        out.write(line + "\n")
    number = len((folder / "Observation.ndjson").read_text().splitlines())
    ignored = read_bulk([folder], AS_OF).ignored.collect()
    malformed = ignored.filter(pl.col("reason") == "malformed")
    assert malformed["resource"].to_list() == [f"Observation.ndjson line {number}"]
    assert malformed["detail"].to_list() == [
        "valueInteger is 100000000000000000000 (a number); "
        "expected a whole number of at most 64 bits"
    ]


@pytest.mark.parametrize("block_bytes", [600, 1 << 25])
def test_references_absolute_or_versioned_name_the_same_patient(
    tmp_path: Path, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:

    folder, _ = _export(tmp_path)
    clean = read_bulk([folder], AS_OF)
    # The Bulk Data IG lets an export use relative or absolute references (rooted in the
    # server's base URL); either may carry a version. All four forms name p1 and p2.
    forms = [
        "Patient/{}",
        "https://ehr.example.org/fhir/Patient/{}",
        "Patient/{}/_history/3",
        "https://ehr.example.org/fhir/Patient/{}/_history/12",
    ]
    for name in ("Observation.ndjson", "QuestionnaireResponse.ndjson"):
        path = folder / name
        lines = []
        for index, line in enumerate(path.read_text().splitlines()):
            resource = json.loads(line)
            pid = resource["subject"]["reference"].removeprefix("Patient/")
            resource["subject"]["reference"] = forms[index % len(forms)].format(pid)
            lines.append(json.dumps(resource))
        path.write_text("\n".join(lines) + "\n")
    with (folder / "Observation.ndjson").open("a") as out:
        for n, reference in enumerate(["urn:uuid:3f1c", "Group/p1", "Patient/p1/extra"]):
            resource = observation(f"u{n}", "8302-2", 160.0, "cm")
            out.write(json.dumps({**resource, "subject": {"reference": reference}}) + "\n")
    small_blocks(monkeypatch, block_bytes)
    read = read_bulk([folder], AS_OF)
    assert read.records.collect().equals(clean.records.collect())
    ignored = read.ignored.collect()
    # A reference that names no patient this way is kept as given, about no patient known.
    strange = ignored.filter(pl.col("resource").str.starts_with("Observation/u"))
    assert sorted(strange.select("patient", "reason").rows()) == [
        ("Group/p1", "other_patient"),
        ("Patient/p1/extra", "other_patient"),
        ("urn:uuid:3f1c", "other_patient"),
    ]
    rest = ignored.filter(~pl.col("resource").str.starts_with("Observation/u"))
    assert rest.sort(pl.all()).equals(clean.ignored.collect().sort(pl.all()))


@pytest.mark.parametrize("block_bytes", [600, 1 << 25])
def test_a_patient_twice_in_the_export_gives_no_record_and_everything_is_listed(
    tmp_path: Path, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:

    folder, by_patient = _export(tmp_path)
    clean = read_bulk([folder], AS_OF)
    # p1 again, now a woman, at the end of the file: which one is right cannot be told.
    with (folder / "Patient.ndjson").open("a") as out:
        out.write(json.dumps(patient(gender="female")) + "\n")
    small_blocks(monkeypatch, block_bytes)
    read = read_bulk([folder], AS_OF)
    records = read.records.collect()
    assert records.equals(clean.records.collect().filter(pl.col("id") != "p1"))
    ignored = read.ignored.collect()
    about_p1 = ignored.filter(pl.col("patient") == "p1")
    copies = about_p1.filter(pl.col("resource") == "Patient/p1")
    assert copies["reason"].to_list() == ["duplicate_patient"] * 2
    detail = "Patient/p1 is in the export 2 times; none is used"
    assert copies["detail"].to_list() == [detail] * 2
    # Each of p1's observations and responses is listed once, as about a duplicated patient.
    resources = [r for r in by_patient["p1"] if r["resourceType"] != "Patient"]
    others = about_p1.filter(pl.col("resource") != "Patient/p1")
    assert sorted(others["resource"]) == sorted(f"{r['resourceType']}/{r['id']}" for r in resources)
    assert set(others["reason"]) == {"duplicate_patient"}
    # The other patients' rows are as before.
    rest = ignored.filter(pl.col("patient") != "p1")
    before = clean.ignored.collect()
    assert rest.sort(pl.all()).equals(before.filter(pl.col("patient") != "p1").sort(pl.all()))


def test_a_resource_of_another_type_or_without_id_is_refused_by_line(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    clean = read_bulk([folder], AS_OF)
    # JSON that Arrow reads without complaint: an Observation in Patient.ndjson (it would
    # otherwise become a patient), a Patient without id, and in Observation.ndjson a Patient
    # and an Observation without id.
    wrong = {
        "Patient.ndjson": [
            (json.dumps(observation("o9", "8302-2", 160.0, "cm")),
             'resourceType is "Observation"; expected "Patient", the type of this file'),
            (json.dumps({k: v for k, v in patient().items() if k != "id"}),
             "id is missing; every resource of an export has one"),
        ],
        "Observation.ndjson": [
            (json.dumps({**patient(), "id": "p7"}),
             'resourceType is "Patient"; expected "Observation", the type of this file'),
            (json.dumps({**observation("", "8302-2", 160.0, "cm")}),
             "id is missing; every resource of an export has one"),
        ],
    }  # fmt: skip
    expected = []
    for name, bad in wrong.items():
        path = folder / name
        lines = path.read_text().splitlines()
        mixed = [lines[0], bad[0][0], *lines[1:], bad[1][0]]
        path.write_text("\n".join(mixed) + "\n")
        expected += [(f"{name} line 2", bad[0][1]), (f"{name} line {len(mixed)}", bad[1][1])]
    read = read_bulk([folder], AS_OF)
    assert read.records.collect().equals(clean.records.collect())
    ignored = read.ignored.collect()
    malformed = ignored.filter(pl.col("reason") == "malformed")
    assert sorted(malformed.select("resource", "detail").rows()) == sorted(expected)
    rest = ignored.filter(pl.col("reason") != "malformed")
    assert rest.sort(pl.all()).equals(clean.ignored.collect().sort(pl.all()))


@pytest.mark.parametrize("block_bytes", [600, 1 << 25])
def test_a_resource_twice_is_not_used_in_bulk_nor_in_a_bundle(
    tmp_path: Path, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:

    folder, by_patient = _export(tmp_path)
    # p1's right-hand grip (24 kgf) twice, the same; the SARC-F twice, the second different.
    resources = by_patient["p1"]
    grip = next(r for r in resources if r.get("id") == "r1")
    response = next(r for r in resources if r.get("id") == "q")
    changed = {**response, "item": []}
    with (folder / "Observation.ndjson").open("a") as out:
        out.write(json.dumps(grip) + "\n")
    with (folder / "QuestionnaireResponse.ndjson").open("a") as out:
        out.write(json.dumps(changed) + "\n")
    small_blocks(monkeypatch, block_bytes)
    read = read_bulk([folder], AS_OF)
    rows = {r["id"]: r for r in read.records.collect().to_dicts()}
    single = read_bundle(bundle(*resources, grip, changed), AS_OF)
    assert_bulk_row_is_bundle_record(rows["p1"], single.record, "p1")
    # Neither copy is used: the left-hand trial (60 lbf) is the grip, and no SARC-F item is read.
    assert rows["p1"]["grip_kg"] == pytest.approx(27.2155422)
    assert rows["p1"]["sarc_f_strength"] is None and rows["p1"]["sarc_f_falls"] is None
    listed = read.ignored.collect().filter(pl.col("reason") == "duplicate")
    assert sorted(listed.select("resource", "detail").rows()) == [
        ("Observation/r1", "Observation/r1 is in the export 2 times; none is used"),
        ("Observation/r1", "Observation/r1 is in the export 2 times; none is used"),
        (
            "QuestionnaireResponse/q",
            "QuestionnaireResponse/q is in the export 2 times; none is used",
        ),
        (
            "QuestionnaireResponse/q",
            "QuestionnaireResponse/q is in the export 2 times; none is used",
        ),
    ]
    in_bundle = sorted((i.resource, i.detail) for i in single.ignored if i.reason == "duplicate")
    assert in_bundle == [
        ("Observation/r1", "Observation/r1 is in the Bundle 2 times; none is used"),
        ("Observation/r1", "Observation/r1 is in the Bundle 2 times; none is used"),
        (
            "QuestionnaireResponse/q",
            "QuestionnaireResponse/q is in the Bundle 2 times; none is used",
        ),
        (
            "QuestionnaireResponse/q",
            "QuestionnaireResponse/q is in the Bundle 2 times; none is used",
        ),
    ]
    # Nothing of them is listed as superseded as well.
    assert (
        "Observation/r1"
        not in read.ignored.collect().filter(pl.col("reason") == "superseded")["resource"].to_list()
    )


def test_an_export_in_several_files_per_type_reads_as_one(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    clean = read_bulk([folder], AS_OF)
    # A server may write more than one file per type, named as it likes (the Bulk Data IG):
    # the type is read from the name where it holds one, else from the first resource.
    patients = (folder / "Patient.ndjson").read_text().splitlines()
    observations = (folder / "Observation.ndjson").read_text().splitlines()
    responses = (folder / "QuestionnaireResponse.ndjson").read_text()
    for path in folder.iterdir():
        path.unlink()
    # Natural order of the names keeps the export's order: 2 before 10.
    for name, line in zip(["Patient.1", "Patient.2", "Patient.10"], patients, strict=True):
        (folder / f"{name}.ndjson").write_text(line + "\n")
    half = len(observations) // 2
    (folder / "1.Observation.ndjson").write_text("\n".join(observations[:half]) + "\n")
    (folder / "2.Observation.ndjson").write_text("\n".join(observations[half:]) + "\n")
    (folder / "b7e2c9.ndjson").write_text(responses)
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}
    (folder / "Condition.ndjson").write_text(json.dumps(condition) + "\n")
    (folder / "notes.ndjson").write_text("not json\n")
    assert is_bulk_export([folder])
    read = read_bulk([folder], AS_OF)
    assert read.records.collect().equals(clean.records.collect())
    ignored = read.ignored.collect()
    unread = ignored.filter(pl.col("reason") == "file_not_read")
    assert sorted(unread.select("resource", "detail").rows()) == [
        (
            "Condition.ndjson",
            "a file of Condition resources; sarcokit reads Patient, Observation, "
            "QuestionnaireResponse",
        ),
        ("notes.ndjson", "no resourceType in its first 100 lines, nor a type in its name"),
    ]
    rest = ignored.filter(pl.col("reason") != "file_not_read")
    assert rest.sort(pl.all()).equals(clean.ignored.collect().sort(pl.all()))


def test_an_export_without_patients_is_refused_naming_its_files(tmp_path: Path) -> None:
    folder, _ = _export(tmp_path)
    (folder / "Patient.ndjson").unlink()
    assert is_bulk_export([folder])  # read as one, to say what it lacks
    with pytest.raises(ValueError, match="needs a file of Patient resources; found "):
        read_bulk([folder], AS_OF)
    with pytest.raises(ValueError, match=r"Observation.ndjson \(Observation\)"):
        read_bulk([folder], AS_OF)


@pytest.mark.parametrize("partition_bytes", [100, 1 << 28])
def test_one_observation_id_for_two_patients_is_used_for_neither(
    tmp_path: Path, partition_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sarcokit.fhir import bulk

    folder, by_patient = _export(tmp_path)
    # p2's gait speed "gs" again, as an observation of p1: the same resource cannot be both.
    # With partitions of ~100 bytes the two patients' rows are read in different partitions.
    monkeypatch.setattr(bulk, "PARTITION_BYTES", partition_bytes)
    gait = next(r for r in by_patient["p2"] if r.get("id") == "gs")
    with (folder / "Observation.ndjson").open("a") as out:
        out.write(json.dumps({**gait, "subject": {"reference": "Patient/p1"}}) + "\n")
    read = read_bulk([folder], AS_OF)
    rows = {r["id"]: r for r in read.records.collect().to_dicts()}
    # Without gs, p2's 4 m walk (5.0 s) is used; p1 gets no gait speed.
    assert rows["p2"]["gait_speed_m_s"] is None and rows["p2"]["walk_time_s"] == 5.0
    assert rows["p1"]["gait_speed_m_s"] is None
    listed = read.ignored.collect().filter(pl.col("resource") == "Observation/gs")
    assert sorted(listed.select("patient", "reason", "detail").rows()) == [
        ("p1", "duplicate", "Observation/gs is in the export 2 times; none is used"),
        ("p2", "duplicate", "Observation/gs is in the export 2 times; none is used"),
    ]


def _panel(oid: str, **extra: Any) -> dict[str, Any]:
    """A panel of two grip trials (its own code unknown) and a component of unknown code."""
    panel = observation(oid, "9999-9", 0.0, "1", **extra)
    del panel["valueQuantity"]
    trial = {"system": "http://unitsofmeasure.org", "code": "kgf"}
    panel["component"] = [
        {"code": {"coding": [{"system": LOINC, "code": "83174-3"}]},
         "valueQuantity": {**trial, "value": 30.0}},
        {"code": {"coding": [{"system": LOINC, "code": "83173-5"}]},
         "valueQuantity": {**trial, "value": 31.0}},
        {"code": {"coding": [{"system": LOINC, "code": "0000-0"}]},
         "valueQuantity": {**trial, "value": 1.0}},
    ]  # fmt: skip
    return panel


def test_resources_refused_whole_are_listed_once_as_in_a_bundle(tmp_path: Path) -> None:
    other: dict[str, Any] = {"subject": {"reference": "Patient/p9"}}
    resources = [
        patient(),
        _panel("pg"),  # read through its components; the unknown one listed
        _panel("pp", status="preliminary"),
        _panel("pe", status="entered-in-error"),
        _panel("po", **other),
        observation("uk", "0000-0", 1.0, "1", status="preliminary"),  # status before code
        observation("ou", "0000-0", 1.0, "1", **other),  # patient before code
        {**sarc_f("qs", {"sarc_f_falls": 1}), "status": "in-progress"},
        {**sarc_f("qo", {"sarc_f_falls": 1}), "status": "in-progress", **other},
        {**sarc_f("qu", {"sarc_f_falls": 1}), "questionnaire": "http://x.org/q", **other},
    ]
    read = read_bulk([_export_of(tmp_path, resources)], AS_OF)
    single = read_bundle(bundle(*resources), AS_OF)
    assert_bulk_row_is_bundle_record(read.records.collect().to_dicts()[0], single.record, "p1")
    listed = read.ignored.collect().select("resource", "reason").rows()
    assert sorted(listed) == sorted((i.resource, i.reason) for i in single.ignored)
    worded = _worded(read.ignored.collect().to_dicts())
    assert worded == _worded_in_bundle(single.ignored)
    assert ("Observation/pp", "status", "status 'preliminary' is not final") in worded
    assert sorted(listed) == [
        ("Observation/ou", "other_patient"),
        ("Observation/pe", "entered_in_error"),
        ("Observation/pg#component[0]", "superseded"),  # 30 kgf; the 31 kgf trial is used
        ("Observation/pg#component[2]", "unknown_code"),
        ("Observation/po", "other_patient"),
        ("Observation/pp", "status"),
        ("Observation/uk", "status"),
        ("QuestionnaireResponse/qo", "status"),
        ("QuestionnaireResponse/qs", "status"),
        ("QuestionnaireResponse/qu", "unknown_code"),
    ]


@pytest.mark.parametrize("block_bytes", [600, 1 << 25])
def test_an_export_compressed_with_gzip_reads_the_same(
    tmp_path: Path, block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    folder, _ = _export(tmp_path)
    with (folder / "Observation.ndjson").open("a") as out:
        out.write('{"resourceType": "Observation", "id": \n')  # malformed: found by line
    clean = read_bulk([folder], AS_OF)
    for path in list(folder.iterdir()):
        (folder / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    small_blocks(monkeypatch, block_bytes)
    assert is_bulk_export([folder])
    assert is_bulk_export(sorted(folder.iterdir()))
    read = read_bulk([folder], AS_OF)
    assert read.records.collect().equals(clean.records.collect())
    ignored = read.ignored.collect()
    expected = clean.ignored.collect().with_columns(
        pl.col("resource").str.replace(".ndjson line", ".ndjson.gz line", literal=True)
    )
    assert ignored.sort(pl.all()).equals(expected.sort(pl.all()))
    assert "Observation.ndjson.gz line " in " ".join(ignored["resource"])


def _hostile_resources() -> list[dict[str, Any]]:
    """Patient/p1 with observations and responses refused for every reason that has words."""
    quantity = {"system": UCUM, "code": "cm"}
    unknown_panel = {"coding": [{"system": LOINC, "code": "1234-9"}]}
    return [
        patient(),
        observation("h", "8302-2", 170.0, "cm"),
        observation("frac", "sppb-total", 7.5, "{score}", system=PROJECT),
        observation("lbs", "29463-7", 154.0, "lbs"),
        {**observation("sys", "29463-7", 70.0, "kg"),
         "valueQuantity": {"value": 70.0, "unit": "kilo", "system": "http://other", "code": "k"}},
        {**observation("nocode", "8302-2", 170.0, "cm"),
         "valueQuantity": {"value": 170.0, "unit": "centimetre"}},
        {**observation("cmp", "8302-2", 170.0, "cm"),
         "valueQuantity": {**quantity, "value": 170.0, "comparator": "<"}},
        {**observation("dar", "8302-2", 170.0, "cm"), "dataAbsentReason": {"text": "refused"}},
        {**observation("none", "8302-2", 170.0, "cm"), "valueQuantity": quantity},
        {**observation("int", "8302-2", 170.0, "cm"), "valueInteger": 170},
        {**observation("unk", "1234-5", 1.0, "1"),
         "code": {"coding": [{"system": "http://x", "code": "a"}, {"code": "no-system"},
                             {"system": LOINC, "code": "1234-5"}]}},
        {**observation("uncoded", "1234-5", 1.0, "1"), "code": {"text": "free text"}},
        {**observation("panel", "1234-9", 1.0, "1"), "code": unknown_panel, "component": [
            {"code": {"coding": [{"system": LOINC, "code": "83174-3"}]},
             "valueQuantity": {"value": 30.0, "system": UCUM, "code": "lbs"}},
            {"code": {"coding": [{"system": LOINC, "code": "9999-1"}]},
             "valueQuantity": {"value": 1.0, "system": UCUM, "code": "1"}},
        ]},
        sarc_f("new", {"sarc_f_strength": 1}),
        sarc_f("older", {"sarc_f_strength": 2}, authored="2026-10-01"),
        sarc_f("ancient", {"sarc_f_strength": 2}, authored="2025-10-01"),
        sarc_f("later", {"sarc_f_strength": 2}, authored="2027-10-01"),
        {**sarc_f("year", {"sarc_f_strength": 2}), "authored": "2026"},
        {**sarc_f("draft", {"sarc_f_strength": 2}), "status": "in-progress"},
        {**sarc_f("void", {"sarc_f_strength": 2}), "status": "entered-in-error"},
        {**sarc_f("other", {"sarc_f_strength": 2}), "questionnaire": "http://other|1"},
        {k: v for k, v in sarc_f("unnamed", {"sarc_f_strength": 2}).items()
         if k != "questionnaire"},
    ]  # fmt: skip


def test_bulk_says_why_in_the_bundle_readers_words(tmp_path: Path) -> None:
    resources = _hostile_resources()
    single = read_bundle(bundle(*resources), AS_OF)
    read = read_bulk([_export_of(tmp_path, resources)], AS_OF)
    (row,) = read.records.collect().to_dicts()
    assert_bulk_row_is_bundle_record(row, single.record, "p1")
    listed = read.ignored.collect().select("resource", "code", "reason", "detail").rows()
    said = [(i.resource, i.code, i.reason, i.detail) for i in single.ignored]
    assert sorted(listed, key=str) == sorted(said, key=str)
    # Every reason listed has its words (a response naming no questionnaire is not a SARC-F).
    assert {reason for _, _, reason, _ in listed} == {
        "unknown_code", "unit", "no_value", "too_old", "future", "no_date", "status",
        "entered_in_error", "superseded",
    }  # fmt: skip
    assert all(detail for *_, detail in listed)
    assert ("QuestionnaireResponse/unnamed", None, "unknown_code",
            f"questionnaire None is not {SARC_F}") in listed  # fmt: skip
    assert ("Observation/frac", "sppb-total", "no_value",
            "sppb: value 7.5 is not a whole number") in listed  # fmt: skip


def test_a_resource_without_a_subject_is_listed_saying_so(tmp_path: Path) -> None:
    # An export holds many patients: a resource that names none is about no one it can tell.
    lost = {k: v for k, v in observation("o", "8302-2", 170.0, "cm").items() if k != "subject"}
    unsigned = {k: v for k, v in sarc_f("q", {"sarc_f_falls": 1}).items() if k != "subject"}
    read = read_bulk([_export_of(tmp_path, [patient(), lost, unsigned])], AS_OF)
    listed = read.ignored.collect().select("resource", "reason", "detail").rows()
    why = "no subject: which patient it is about cannot be told"
    assert sorted(listed) == [
        ("Observation/o", "other_patient", why),
        ("QuestionnaireResponse/q", "other_patient", why),
    ]


def test_the_same_export_read_twice_lists_the_same_rows_in_the_same_order(
    tmp_path: Path,
) -> None:
    # Enough patients that Polars joins on several threads: a join that does not keep its left
    # side's order listed the left-out rows in a different order on each run.
    resources: list[dict[str, Any]] = []
    for i in range(20_000):
        pid = f"p{i}"
        resources += [
            {**patient(), "id": pid},
            _of(pid, observation(f"{pid}-r", "83174-3", 20.0 + i % 7, "kgf")),
            _of(pid, observation(f"{pid}-l", "83173-5", 21.0 + i % 5, "kgf")),
            _of(pid, observation(f"{pid}-o", "83174-3", 30.0, "kgf", when="2024-01-01")),
            _of(pid, observation(f"{pid}-t", "83169-3", 5.0, "s")),
            _of(pid, observation(f"{pid}-g", "83172-7", 0.9, "m/s")),
            _of(pid, observation(f"{pid}-x", "1234-5", 1.0, "1")),
            _of(pid, sarc_f(f"{pid}-q1", {"sarc_f_falls": 1})),
            _of(pid, sarc_f(f"{pid}-q2", {"sarc_f_falls": 2}, authored="2026-10-01")),
        ]
    folder = _export_of(tmp_path, resources)
    first = read_bulk([folder], AS_OF)
    records, ignored = first.records.collect(), first.ignored.collect()
    assert ignored.height == 20_000 * 5  # superseded grip and response, too old, walk, code
    for _ in range(3):
        again = read_bulk([folder], AS_OF)
        assert again.records.collect().equals(records)
        assert again.ignored.collect().equals(ignored)
