"""Cohort readers: every format from a file the test writes, encodings, and joins on a key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pyreadstat
import pytest

from sarcokit.cohort.readers import ReadError, read_inputs, read_table


def write_workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> None:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)


# ---------------------------------------------------------------------------------------------
# CSV and TSV, encodings


def test_csv_with_bom_reads_its_first_column_name_clean(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfrecord_id,grip\n1,25.5\n2,\n")
    frame = read_table(path)
    assert isinstance(frame, pl.LazyFrame)
    assert frame.collect().to_dict(as_series=False) == {"record_id": [1, 2], "grip": [25.5, None]}


def test_tsv_is_split_on_tabs(tmp_path: Path) -> None:
    path = tmp_path / "cohort.tsv"
    path.write_text("id\theight_cm\na\t165.2\n", encoding="utf-8")
    assert read_table(path).collect().rows() == [("a", 165.2)]


def test_gb18030_csv_with_chinese_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "hospital.csv"
    path.write_bytes("编号,性别,握力\n张三,男,25.5\n李四,女,17.0\n".encode("gb18030"))
    for encoding in ("gb18030", "gbk"):
        frame = read_table(path, encoding=encoding).collect()
        assert frame.columns == ["编号", "性别", "握力"]
        assert frame.rows() == [("张三", "男", 25.5), ("李四", "女", 17.0)]


def test_gb18030_file_read_as_utf8_names_the_file_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "hospital.csv"
    data = "id,sex\n1,男\n".encode("gb18030")
    path.write_bytes(data)
    with pytest.raises(ReadError) as caught:
        read_table(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"byte offset {data.index(0xC4)}" in message  # 男 is C4 D0 in GB18030
    assert "gb18030" in message


def test_undecodable_byte_far_into_the_file_is_found_at_its_offset(tmp_path: Path) -> None:
    # The reader decodes in 1 MiB chunks: put a two-byte character across the first boundary
    # (张 starts at offset 2**20 - 1) and the bad byte after it.
    head = b"id,name\n1," + b"a" * (2**20 - 14) + b"\n2,"
    assert len(head) == 2**20 - 1
    data = head + "张".encode("gb18030") + b"\n3,\xff\n"
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    offset = data.index(b"\xff")
    with pytest.raises(ReadError, match=f"byte 0xff at byte offset {offset} cannot be decoded"):
        read_table(path, encoding="gb18030")


def test_unknown_encoding_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id\n1\n", encoding="utf-8")
    with pytest.raises(ReadError, match="unknown encoding 'gb-nonsense'"):
        read_table(path, encoding="gb-nonsense")


def test_repeated_column_name_is_an_error_not_a_renamed_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,grip,grip\n1,20,22\n", encoding="utf-8")
    with pytest.raises(ReadError, match=r"a\.csv: column name 'grip' appears more than once"):
        read_table(path)


def test_text_columns_keep_identifiers_as_written(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("patient,age\n007,70\n120,81\n", encoding="utf-8")
    assert read_table(path).collect()["patient"].to_list() == [7, 120]
    frame = read_table(path, text_columns=["patient"]).collect()
    assert frame["patient"].to_list() == ["007", "120"]
    assert frame["age"].to_list() == [70, 81]
    with pytest.raises(ReadError, match="text column 'patiend' is not in the file; did you mean"):
        read_table(path, text_columns=["patiend"])


def test_types_are_inferred_from_every_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,grip\n" + "".join(f"{i},20\n" for i in range(500)) + "500,20.5\n")
    assert read_table(path).collect()["grip"].dtype == pl.Float64


def test_redcap_raw_export_checkboxes_are_read_as_columns(tmp_path: Path) -> None:
    path = tmp_path / "redcap.csv"
    path.write_text(
        "record_id,sex,grip_kg,unable___1,unable___2\n1,1,25.5,0,1\n2,2,,1,0\n", encoding="utf-8"
    )
    frame = read_table(path).collect()
    assert frame.columns[0] == "record_id"
    assert frame["unable___1"].to_list() == [0, 1]
    assert frame["unable___2"].to_list() == [1, 0]


# ---------------------------------------------------------------------------------------------
# Parquet, Excel, SAS, Stata, SPSS


def test_parquet_is_scanned_lazily(tmp_path: Path) -> None:
    path = tmp_path / "cohort.parquet"
    pl.DataFrame({"id": ["a", "b"], "grip_kg": [25.0, None]}).write_parquet(path)
    frame = read_table(path)
    plan = frame.explain()
    assert "PARQUET" in plan.upper()
    assert frame.collect().rows() == [("a", 25.0), ("b", None)]


def test_xlsx_is_read_with_its_types(tmp_path: Path) -> None:
    path = tmp_path / "clinic.xlsx"
    write_workbook(
        path, {"患者": [["id", "sex", "grip_kg"], ["p1", "女", 17.5], ["p2", "男", None]]}
    )
    frame = read_table(path).collect()
    assert frame.rows() == [("p1", "女", 17.5), ("p2", "男", None)]


def test_xlsx_with_several_sheets_needs_a_sheet_named(tmp_path: Path) -> None:
    path = tmp_path / "clinic.xlsx"
    write_workbook(path, {"notes": [["read me"]], "data": [["id", "age"], ["p1", 70]]})
    with pytest.raises(ReadError, match="has sheets 'notes', 'data'; pass sheet="):
        read_table(path)
    assert read_table(path, sheet="data").collect().rows() == [("p1", 70)]
    with pytest.raises(ReadError, match="no sheet 'Data'"):
        read_table(path, sheet="Data")


def test_xlsx_repeated_column_name_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "clinic.xlsx"
    write_workbook(path, {"data": [["id", "grip", "grip"], ["p1", 20, 22]]})
    with pytest.raises(ReadError, match="column name 'grip' appears more than once"):
        read_table(path)


@pytest.mark.parametrize(
    ("suffix", "write"),
    [
        (".xpt", pyreadstat.write_xport),
        (".dta", pyreadstat.write_dta),
        (".sav", pyreadstat.write_sav),
    ],
)
def test_statistical_formats_read_codes_and_missing_values(
    tmp_path: Path, suffix: str, write: Any
) -> None:
    path = tmp_path / f"demo{suffix}"
    source = pl.DataFrame(
        {"SEQN": [62161.0, 62162.0, 62163.0], "RIAGENDR": [1.0, 2.0, None], "NOTE": ["a", "", "b"]}
    )
    write(source, str(path))
    frame = read_table(path).collect()
    assert frame["SEQN"].to_list() == [62161.0, 62162.0, 62163.0]
    assert frame["RIAGENDR"].to_list() == [1.0, 2.0, None]  # missing is null, not NaN
    assert frame["NOTE"].to_list() == ["a", None, "b"]  # an empty string is their missing text


def test_file_type_and_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"unknown file type '\.json'"):
        read_table(tmp_path / "a.json")
    with pytest.raises(ReadError, match="no such file"):
        read_table(tmp_path / "absent.csv")
    path = tmp_path / "a.parquet"
    pl.DataFrame({"id": ["a"]}).write_parquet(path)
    with pytest.raises(ReadError, match=r"encoding='gb18030' is given but \.parquet"):
        read_table(path, encoding="gb18030")
    with pytest.raises(ReadError, match="only Excel workbooks have sheets"):
        read_table(path, sheet="data")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(ReadError, match=r"broken\.parquet: cannot be read as \.parquet"):
        read_table(broken)


# ---------------------------------------------------------------------------------------------
# Joining several files on a key


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_join_keeps_every_row_of_the_first_file_in_its_order(tmp_path: Path) -> None:
    demo = write_csv(tmp_path / "demo.csv", "SEQN,sex\n30,1\n10,2\n20,1\n40,2\n")
    exam = write_csv(tmp_path / "exam.csv", "SEQN,height\n20,170\n99,150\n10,160\n98,155\n")
    grip = write_csv(tmp_path / "grip.csv", "SEQN,grip\n40,30\n30,25\n")
    frame, report = read_inputs([demo, exam, grip], "SEQN")
    assert frame.collect().rows() == [
        (30, 1, None, 25),
        (10, 2, 160, None),
        (20, 1, 170, None),
        (40, 2, None, 30),
    ]
    assert report.key == "SEQN" and report.anchor == demo and report.rows == 4
    exam_report, grip_report = report.files
    assert (exam_report.rows, exam_report.matched, exam_report.unmatched) == (4, 2, 2)
    assert exam_report.unmatched_keys == (99, 98)
    assert exam_report.absent == 2
    assert (grip_report.rows, grip_report.matched, grip_report.unmatched) == (2, 2, 0)
    assert grip_report.absent == 2


def test_key_repeated_within_a_file_is_an_error_naming_file_key_and_value(tmp_path: Path) -> None:
    demo = write_csv(tmp_path / "demo.csv", "SEQN,sex\n1,1\n2,2\n")
    exam = write_csv(tmp_path / "exam.csv", "SEQN,height\n1,170\n2,160\n2,161\n")
    with pytest.raises(ReadError) as caught:
        read_inputs([demo, exam], "SEQN")
    message = str(caught.value)
    assert "exam.csv" in message and "SEQN" in message and "value 2" in message
    assert "rows 2, 3" in message


def test_empty_key_is_an_error(tmp_path: Path) -> None:
    demo = write_csv(tmp_path / "demo.csv", "SEQN,sex\n1,1\n,2\n")
    exam = write_csv(tmp_path / "exam.csv", "SEQN,height\n1,170\n")
    with pytest.raises(ReadError, match=r"demo\.csv: key column SEQN is empty in row 2"):
        read_inputs([demo, exam], "SEQN")


def test_join_refuses_what_it_would_have_to_guess(tmp_path: Path) -> None:
    demo = write_csv(tmp_path / "demo.csv", "SEQN,sex\n1,1\n")
    shared = write_csv(tmp_path / "exam.csv", "SEQN,sex\n1,2\n")
    with pytest.raises(ReadError, match=r"exam\.csv: column sex is also in .*demo\.csv"):
        read_inputs([demo, shared], "SEQN")
    text_key = write_csv(tmp_path / "text.csv", "SEQN,grip\nA1,20\n")
    with pytest.raises(ReadError, match="key column SEQN has the value 'A1', which is not a whole"):
        read_inputs([demo, text_key], "SEQN")
    no_key = write_csv(tmp_path / "nokey.csv", "seqn,grip\n1,20\n")
    with pytest.raises(
        ReadError, match="key column 'SEQN' is not in the file; did you mean 'seqn'"
    ):
        read_inputs([demo, no_key], "SEQN")


def test_join_across_formats(tmp_path: Path) -> None:
    demo = tmp_path / "demo.xpt"
    pyreadstat.write_xport(pl.DataFrame({"SEQN": [2.0, 1.0], "RIAGENDR": [1.0, 2.0]}), str(demo))
    exam = tmp_path / "exam.parquet"
    pl.DataFrame({"SEQN": [1.0, 2.0], "BMXHT": [160.0, 175.0]}).write_parquet(exam)
    frame, report = read_inputs([demo, exam], "SEQN")
    assert frame.collect().rows() == [(2.0, 1.0, 175.0), (1.0, 2.0, 160.0)]
    assert report.files[0].unmatched == 0
