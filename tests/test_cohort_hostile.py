"""Hostile cohort files: one per failure of issue 10, each of which the old reader got wrong.

Every test checks the accounting too: rows read = scored + rejected + excluded.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pyreadstat
import pytest
from typer.testing import CliRunner

from sarcokit.cli import app
from sarcokit.cohort.readers import ReadError
from sarcokit.cohort.run import ROW, CohortRun, StrictError, run_cohort

HEADER = "id,sex,age,height_m,weight_kg,grip_kg,gait_speed_m_s,asm_kg,asm_method"
GOOD = [
    "p1,male,72,1.70,70,25.0,0.7,17.0,dxa",
    "p2,female,68,1.58,55,14.0,0.6,11.0,dxa",
    "p3,male,81,1.72,74,35.0,1.1,22.0,dxa",
    "p4,female,75,1.60,60,20.0,0.9,14.5,bia",
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def run(tmp_path: Path, source: Path, **options: object) -> CohortRun:
    result = run_cohort([source], tmp_path / "out.parquet", definitions=["ewgsop2"], **options)  # type: ignore[arg-type]
    flow = result.flow
    assert flow.rows_read == flow.rows_scored + flow.rows_rejected + flow.rows_excluded
    return result


def rejects(result: CohortRun) -> list[tuple[int, str, str | None]]:
    table = pl.read_csv(result.rejects, schema_overrides={"value": pl.String, "id": pl.String})
    return [(r[ROW], r["field"], r["value"]) for r in table.iter_rows(named=True)]


def test_na_is_missing_and_bad_cells_reject_their_row_not_the_run(tmp_path: Path) -> None:
    rows = [*GOOD, "p5,male,70,1.7,70,NA,1.0,20,dxa", "p6,male,70,1.7,70,abc,1.0,20,dxa"]
    rows.append("p7,male,70,1.7,70,17.5 kg,1.0,20,dxa")
    result = run(tmp_path, write(tmp_path / "a.csv", "\n".join([HEADER, *rows]) + "\n"))
    assert (result.flow.rows_read, result.flow.rows_scored, result.flow.rows_rejected) == (7, 5, 2)
    assert rejects(result) == [(6, "grip_kg", "abc"), (7, "grip_kg", "17.5 kg")]
    scored = pl.read_parquet(result.results)
    assert scored.filter(pl.col("id") == "p5")["grip_kg"].to_list() == [None]


def test_bad_cells_in_an_excel_sheet_reject_their_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    for line in GOOD:
        sheet.append([float(v) if v.replace(".", "").isdigit() else v for v in line.split(",")])
    sheet.append(["p5", "male", 70, 1.7, 70, "NA", 1.0, 20, "dxa"])
    sheet.append(["p6", "male", 70, 1.7, 70, "17.5 kg", 1.0, 20, "dxa"])
    path = tmp_path / "a.xlsx"
    workbook.save(path)
    result = run(tmp_path, path)
    assert (result.flow.rows_scored, result.flow.rows_rejected) == (5, 1)
    assert rejects(result) == [(6, "grip_kg", "17.5 kg")]


def test_declared_missing_codes_and_comma_decimals(tmp_path: Path) -> None:
    rows = [*GOOD, "p5,male,70,1.7,70,-999,1.0,20,dxa", "p6,male,70,1.7,70,17,5,1.0,20,dxa"]
    text = "\n".join([HEADER.replace(",", ";"), *(r.replace(",", ";") for r in rows)]) + "\n"
    source = write(tmp_path / "a.csv", text.replace("17;5", "17,5"))
    plain = run(tmp_path, source, delimiter=";")
    # -999 is a number until declared; 17,5 is not a number until the locale is declared.
    assert [r[1:] for r in rejects(plain)] == [("grip_kg", "-999.0"), ("grip_kg", "17,5")]
    assert "comma decimal" in pl.read_csv(plain.rejects)["reason"][1]
    declared = run(tmp_path, source, delimiter=";", na_values=["NA", "-999"], decimal=",")
    assert declared.flow.rows_rejected == 0
    grips = pl.read_parquet(declared.results)["grip_kg"].to_list()
    assert grips[4:] == [None, 17.5]


def test_ids_are_read_as_written(tmp_path: Path) -> None:
    rows = ["007" + GOOD[0][2:], "7" + GOOD[1][2:], "0012" + GOOD[2][2:]]
    result = run(tmp_path, write(tmp_path / "a.csv", "\n".join([HEADER, *rows]) + "\n"))
    assert result.flow.rows_rejected == 0
    assert pl.read_parquet(result.results)["id"].to_list() == ["007", "7", "0012"]


def test_repeated_ids_are_rejected_unless_a_visit_column_is_declared(tmp_path: Path) -> None:
    rows = [*GOOD, "p2" + GOOD[1][2:]]
    result = run(tmp_path, write(tmp_path / "a.csv", "\n".join([HEADER, *rows]) + "\n"))
    assert [r[:3] for r in rejects(result)] == [(2, "id", "p2"), (5, "id", "p2")]
    assert "is on 2 rows" in pl.read_csv(result.rejects)["reason"][0]
    waves = [f"{line},{wave}" for line, wave in zip(rows, [1, 1, 1, 1, 2], strict=True)]
    source = write(tmp_path / "b.csv", "\n".join([HEADER + ",wave", *waves]) + "\n")
    assert run(tmp_path, source, visit="wave").flow.rows_rejected == 0


def test_ragged_blank_and_empty_rows_are_rejected_with_their_line(tmp_path: Path) -> None:
    rows = [GOOD[0], "p9,male,70", "", ",,,,,,,,", GOOD[1], GOOD[2] + ",extra"]
    result = run(tmp_path, write(tmp_path / "a.csv", "\n".join([HEADER, *rows]) + "\n"))
    assert (result.flow.rows_read, result.flow.rows_scored) == (6, 2)
    reasons = pl.read_csv(result.rejects)
    assert reasons[ROW].to_list() == [2, 3, 4, 6]
    assert reasons["reason"].to_list() == [
        "row: the row has 3 fields but the header has 9 columns",
        "row: the line is blank",
        "row: the row has no value in any column",
        "row: the row has 10 fields but the header has 9 columns",
    ]


def test_another_delimiter_is_a_named_error(tmp_path: Path) -> None:
    text = "\n".join(line.replace(",", ";") for line in [HEADER, *GOOD]) + "\n"
    with pytest.raises(ReadError, match="looks separated by ';'"):
        run(tmp_path, write(tmp_path / "a.csv", text))


def test_unused_columns_are_listed_and_strict_fails_on_them(tmp_path: Path) -> None:
    rows = [f"{line},{lbs}" for line, lbs in zip(GOOD, [55, 30, 77, 44], strict=True)]
    source = write(tmp_path / "a.csv", "\n".join([HEADER + ",grip_lbs", *rows]) + "\n")
    result = run(tmp_path, source)
    assert result.flow.unused_columns == ("grip_lbs",)
    with pytest.raises(StrictError, match=r"grip_lbs \(did you mean grip_lb\?\)"):
        run(tmp_path, source, strict=True)
    # The input's own columns are in the results unless asked otherwise.
    assert "grip_lbs" in pl.read_parquet(result.results).columns
    dropped = run(tmp_path, source, keep_input=False)
    assert "grip_lbs" not in pl.read_parquet(dropped.results).columns


def test_a_header_over_two_rows_with_merged_cells(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["id", "sex", "age", "grip (kg)", None, "gait_speed_m_s"])
    sheet.append([None, None, None, "trial 1", "trial 2", None])
    sheet.merge_cells("D1:E1")
    sheet.append(["a", "female", 70, 14.0, 15.5, 0.7])
    sheet.append(["b", "male", 75, 30.0, 29.0, 1.2])
    path = tmp_path / "a.xlsx"
    workbook.save(path)
    mapping = write(
        tmp_path / "m.toml",
        '[mapping]\nname = "two rows"\nid = "id"\nheader_rows = 2\n\n'
        '[fields.sex]\ncolumn = "sex"\n\n[fields.age]\ncolumn = "age"\n\n'
        '[fields.grip_kg]\nmax_of = ["grip (kg) trial 1", "grip (kg) trial 2"]\n\n'
        '[fields.gait_speed_m_s]\ncolumn = "gait_speed_m_s"\n',
    )
    result = run(tmp_path, path, mapping=mapping)
    assert (result.flow.rows_read, result.flow.rows_scored) == (2, 2)
    assert pl.read_parquet(result.results)["grip_kg"].to_list() == [15.5, 30.0]


def test_utf8_file_declared_gb18030_is_an_error_not_garbled(tmp_path: Path) -> None:
    # 张三 in UTF-8 decodes as GB18030 without error, into 寮犱笁: the old reader garbled it.
    text = "\n".join([HEADER + ",name", GOOD[0] + ",张三", GOOD[1] + ",李四"]) + "\n"
    source = write(tmp_path / "a.csv", text)
    with pytest.raises(ReadError, match=r"valid UTF-8.*declared gb18030"):
        run(tmp_path, source, encoding="gb18030")
    # A UTF-8 file that GB18030 cannot decode says it is UTF-8.
    other = write(tmp_path / "c.csv", text.replace("张三", "女"))
    with pytest.raises(ReadError, match="the file is valid UTF-8"):
        run(tmp_path, other, encoding="gb18030")
    # A real GB18030 file still reads.
    real = write(tmp_path / "b.csv", text, encoding="gb18030")
    assert run(tmp_path, real, encoding="gb18030").flow.rows_scored == 2


def test_a_csv_integer_key_joins_an_xpt_float_key(tmp_path: Path) -> None:
    demo = write(tmp_path / "demo.csv", "SEQN,sex,age\n62161,male,70\n62162,female,66\n")
    exam = tmp_path / "exam.xpt"
    frame = pl.DataFrame({"SEQN": [62162.0, 62161.0], "grip_kg": [15.0, 31.0]})
    pyreadstat.write_xport(frame.to_pandas(), str(exam))
    result = run_cohort([demo, exam], tmp_path / "o.parquet", key="SEQN", definitions=["sdoc2020"])
    assert result.join is not None and result.join.files[0].unmatched == 0
    scored = pl.read_parquet(result.results)
    assert scored.select("SEQN", "grip_kg").rows() == [("62161", 31.0), ("62162", 15.0)]
    big = write(tmp_path / "big.csv", "SEQN,sex\n9007199254740993,male\n")
    with pytest.raises(ReadError, match=r"9007199254740993.*lose precision"):
        run_cohort([big, exam], tmp_path / "p.parquet", key="SEQN")


def test_sex_labels_in_any_case_and_codes_only_when_declared(tmp_path: Path) -> None:
    rows = [GOOD[0].replace("male", "Male"), GOOD[1].replace("female", "F")]
    rows += [GOOD[3].replace("female", "女"), GOOD[2].replace("male", "1")]
    result = run(tmp_path, write(tmp_path / "a.csv", "\n".join([HEADER, *rows]) + "\n"))
    assert pl.read_parquet(result.results)["sex"].to_list() == ["male", "female", "female"]
    assert [r[1:] for r in rejects(result)] == [("sex", "1")]


def test_children_are_excluded_by_the_study_scope_not_implausible(tmp_path: Path) -> None:
    rows = [*GOOD, GOOD[0].replace("p1,male,72", "p5,male,3")]
    rows.append(GOOD[0].replace("p1,male,72", "p6,male,250"))
    source = write(tmp_path / "a.csv", "\n".join([HEADER, *rows]) + "\n")
    result = run(tmp_path, source)
    flow = result.flow
    assert (flow.rows_scored, flow.rows_rejected, flow.rows_excluded) == (4, 1, 1)
    assert flow.excluded_by == (("age under 18", 1),)
    assert rejects(result)[0][1:] == ("age", "250.0")  # no person is 250: a data error
    from sarcokit.cohort.run import Scope  # new in issue 10; imported here so that the old
    # code fails this test rather than the whole file

    older = run(tmp_path, source, scope=Scope(age_min=70, age_max=80))
    assert dict(older.flow.excluded_by) == {"age under 70": 2, "age over 80": 1}


def test_progress_reports_rows_done_and_every_row_is_kept(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    rows = [*GOOD, GOOD[0].replace("p1,male,72", "p5,male,3"), "p6,male,70,1.7,70,abc,1,20,dxa"]
    source = write(tmp_path / "a.csv", "\n".join([HEADER, *rows]) + "\n")
    result = run(tmp_path, source, progress=lambda done, total: calls.append((done, total)))
    # Rows are reported as they stream through: from none to all, never backwards.
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert (result.flow.rows_scored, result.flow.rows_rejected, result.flow.rows_excluded) == (
        4,
        1,
        1,
    )
    assert pl.read_parquet(result.results)[ROW].to_list() == [1, 2, 3, 4]


def test_cli_declares_reading_options(tmp_path: Path) -> None:
    rows = [*GOOD, "p5,male,70,1.7,70,-999,1.0,20,dxa"]
    source = write(tmp_path / "a.csv", "\n".join([HEADER + ",extra", *(r + ",x" for r in rows)]))
    output = tmp_path / "cli.csv"
    args = ["cohort", str(source), "--output", str(output), "--na", "NA,-999", "--no-keep-input"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "rows read 5 = scored 5 + rejected 0 + excluded 0" in result.output
    assert "columns not used: extra" in result.output
    assert "extra" not in pl.read_csv(output).columns
    strict = CliRunner().invoke(app, [*args, "--strict"])
    assert strict.exit_code == 2 and "extra" in strict.output


def test_quoted_delimiters_and_newlines_are_not_ragged(tmp_path: Path) -> None:
    # A quoted field may hold the delimiter or a line break: one field, not two, and one row.
    rows = [
        GOOD[0] + ',"Smith, John"',
        GOOD[1] + ',"first line\nsecond line"',
        GOOD[2] + ',"said ""yes, later"""',
        GOOD[3] + ",plain",
    ]
    source = write(tmp_path / "a.csv", "\n".join([HEADER + ",notes", *rows]) + "\n")
    result = run(tmp_path, source)
    assert (result.flow.rows_read, result.flow.rows_scored, result.flow.rows_rejected) == (4, 4, 0)
    notes = pl.read_parquet(result.results)["notes"].to_list()
    assert notes == ["Smith, John", "first line\nsecond line", 'said "yes, later"', "plain"]


@pytest.mark.parametrize("note", ["first line\nsecond line", "one line"])
def test_a_ragged_row_among_quoted_fields_is_rejected_with_its_row(
    tmp_path: Path, note: str
) -> None:
    # A line break inside row 2's quotes makes lines and rows differ: row 4 is then on line 6.
    rows = [
        GOOD[0] + ',"Smith, John"',
        GOOD[1] + f',"{note}"',
        GOOD[2] + ',"a, b"',
        'p9,male,70,1.7,70,30,1.0,20,dxa,"x, y",surplus',
        GOOD[3] + ",plain",
    ]
    source = write(tmp_path / "a.csv", "\n".join([HEADER + ",notes", *rows]) + "\n")
    result = run(tmp_path, source)
    assert (result.flow.rows_read, result.flow.rows_scored, result.flow.rows_rejected) == (5, 4, 1)
    reasons = pl.read_csv(result.rejects)
    assert reasons[ROW].to_list() == [4]
    assert reasons["reason"].to_list() == [
        "row: the row has 11 fields but the header has 10 columns"
    ]
    assert pl.read_parquet(result.results)["id"].to_list() == ["p1", "p2", "p3", "p4"]
