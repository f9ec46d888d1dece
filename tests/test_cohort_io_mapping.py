"""Mapping files: validation, value maps, derivations, units, and the shipped CHARLS-style file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

import sarcokit
from sarcokit.cohort.mapping import PROBLEMS, MappingError, apply_mapping, load_mapping
from sarcokit.cohort.readers import read_table

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def write_mapping(tmp_path: Path, fields: str, header: str = 'name = "test"\nid = "pid"') -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(f"[mapping]\n{header}\n\n{fields}", encoding="utf-8")
    return path


def mapped(tmp_path: Path, fields: str, data: dict[str, list[Any]]) -> pl.DataFrame:
    mapping = load_mapping(write_mapping(tmp_path, fields))
    frame = apply_mapping(pl.LazyFrame(data), mapping)
    assert isinstance(frame, pl.LazyFrame)
    return frame.collect()


def mapping_error(tmp_path: Path, fields: str, header: str = 'name = "test"\nid = "pid"') -> str:
    path = write_mapping(tmp_path, fields, header)
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert str(path) in message
    return message


# ---------------------------------------------------------------------------------------------
# The mapping file is checked against the subject record


def test_typo_in_a_target_names_the_field_and_suggests_the_closest(tmp_path: Path) -> None:
    message = mapping_error(tmp_path, '[fields.grip]\ncolumn = "g"\n')
    assert "[fields.grip]" in message and "did you mean grip_kg?" in message
    message = mapping_error(tmp_path, '[fields.hieght_cm]\ncolumn = "h"\n')
    assert "did you mean height_cm?" in message


def test_every_problem_of_a_mapping_file_is_listed(tmp_path: Path) -> None:
    message = mapping_error(
        tmp_path,
        '[fields.sex]\ncolumn = "s"\nvalues = { 1 = "man" }\n\n'
        '[fields.age]\ncolumn = "a"\nmax_of = ["a", "b"]\n\n'
        '[fields.weight_kg]\ncolum = "w"\n\n'
        "[fields.id]\nconstant = 1\n",
        header='name = "test"',
    )
    assert "[mapping] id = None; expected a non-empty text" in message
    assert "[fields.sex] values.1 = 'man'; expected one of male, female" in message
    assert "[fields.age]: expected exactly one of column" in message
    assert "found column, max_of" in message
    assert "[fields.weight_kg]: unknown key 'colum'; did you mean column?" in message
    assert "[fields.id]: the record id is set by id" in message


def test_two_sources_for_one_field_are_an_error(tmp_path: Path) -> None:
    message = mapping_error(
        tmp_path, '[fields.height_m]\ncolumn = "a"\n\n[fields.height_cm]\ncolumn = "b"\n'
    )
    assert "[fields.height_cm] and [fields.height_m] both supply height_m" in message
    message = mapping_error(tmp_path, '[fields.walk_time_s]\ncolumn = "t"\n')
    assert "[fields.walk_time_s] needs [fields.walk_distance_m]" in message


def test_missing_source_column_names_mapping_file_field_and_column(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, '[fields.grip_kg]\nmax_of = ["grip1", "grip2"]\n')
    mapping = load_mapping(path)
    with pytest.raises(MappingError) as caught:
        apply_mapping(pl.LazyFrame({"pid": ["a"], "grip1": [20.0], "Grip2": [22.0]}), mapping)
    message = str(caught.value)
    assert str(path) in message
    assert "[fields.grip_kg] column 'grip2' is not in the input; did you mean 'Grip2'?" in message
    with pytest.raises(MappingError, match=r"\[mapping\] id: column 'pid' is not in the input"):
        apply_mapping(pl.LazyFrame({"grip1": [20.0], "grip2": [22.0]}), mapping)


def test_a_column_of_the_wrong_type_is_an_error_naming_it(tmp_path: Path) -> None:
    mapping = load_mapping(write_mapping(tmp_path, '[fields.sex]\ncolumn = "gender"\n'))
    with pytest.raises(
        MappingError, match="column gender has type Int64; expected text, or declare"
    ):
        apply_mapping(pl.LazyFrame({"pid": ["a"], "gender": [1]}), mapping)


def test_optional_field_is_left_out_only_when_all_its_columns_are_absent(tmp_path: Path) -> None:
    fields = '[fields.grip_kg]\nmax_of = ["g1", "g2"]\noptional = true\n'
    mapping = load_mapping(write_mapping(tmp_path, fields))
    frame = apply_mapping(pl.LazyFrame({"pid": ["a"]}), mapping)
    assert frame.collect_schema().names() == ["id", PROBLEMS]
    assert mapping.skipped(["pid"]) == ("grip_kg",)
    with pytest.raises(MappingError, match=r"column 'g2' is not in the input.*optional"):
        apply_mapping(pl.LazyFrame({"pid": ["a"], "g1": [20.0]}), mapping)


# ---------------------------------------------------------------------------------------------
# Values, derivations and units, as columns


def test_value_not_in_map_is_a_row_problem_not_a_silent_null(tmp_path: Path) -> None:
    frame = mapped(
        tmp_path,
        '[fields.sex]\ncolumn = "RIAGENDR"\nvalues = { 1 = "male", 2 = "female" }\n',
        {"pid": ["a", "b", "c", "d"], "RIAGENDR": [1.0, 2.0, 3.0, None]},
    )
    assert frame["sex"].to_list() == ["male", "female", None, None]
    assert frame[PROBLEMS].to_list() == [None, None, "sex: 3.0 not in map", None]


def test_text_codes_and_booleans_from_a_redcap_checkbox(tmp_path: Path) -> None:
    frame = mapped(
        tmp_path,
        '[fields.sex]\ncolumn = "性别"\nvalues = { "男" = "male", "女" = "female" }\n\n'
        '[fields.chair_stand_unable]\ncolumn = "unable___1"\nvalues = { 0 = false, 1 = true }\n',
        {"pid": ["a", "b"], "性别": ["女", "M"], "unable___1": [1, 0]},
    )
    assert frame["sex"].to_list() == ["female", None]
    assert frame["chair_stand_unable"].to_list() == [True, False]
    assert frame[PROBLEMS].to_list() == [None, "sex: M not in map"]


def test_max_of_is_the_best_trial_done_and_null_only_when_none_was(tmp_path: Path) -> None:
    frame = mapped(
        tmp_path,
        '[fields.grip_kg]\nmax_of = ["t1", "t2", "t3"]\n',
        {
            "pid": ["a", "b", "c"],
            "t1": [20.5, None, None],
            "t2": [None, None, 31.0],
            "t3": [22.0, None, 30.0],
        },
    )
    assert frame["grip_kg"].to_list() == [22.0, None, 31.0]


def test_sum_of_is_null_when_any_part_is_missing(tmp_path: Path) -> None:
    frame = mapped(
        tmp_path,
        '[fields.asm_kg]\nsum_of = ["la", "ra", "ll", "rl"]\nunit = "g"\n',
        {
            "pid": ["a", "b"],
            "la": [2100.3, 2000.0],
            "ra": [2200.1, None],
            "ll": [7000.5, 7000.0],
            "rl": [7199.1, 7100.0],
        },
    )
    assert frame.columns == ["id", "asm_g", PROBLEMS]  # grams: the engine converts asm_g
    assert frame["asm_g"][1] is None
    # Through the engine, grams become kilograms exactly.
    explained = sarcokit.evaluate(frame.lazy(), ["ewgsop2"], explain=True).collect()
    assert explained["asm_kg"].to_list() == [18.5, None]


def test_unit_fields_toml_does_not_know_is_converted_with_the_stated_factor(
    tmp_path: Path,
) -> None:
    frame = mapped(
        tmp_path,
        '[fields.height_m]\ncolumn = "height"\nunit = "mm"\nfactor = 0.001\n',
        {"pid": ["a", "b"], "height": [1655.0, 1702.5]},
    )
    assert frame["height_m"].to_list() == [1.655, 1.7025]  # not 1.6550000000000002


def test_a_unit_fields_toml_knows_goes_to_its_column(tmp_path: Path) -> None:
    frame = mapped(
        tmp_path,
        '[fields.height_m]\ncolumn = "h"\nunit = "cm"\n\n'
        '[fields.weight_kg]\ncolumn = "w"\nunit = "lb"\n',
        {"pid": ["a"], "h": [165.0], "w": [154.0]},
    )
    assert frame.columns == ["id", "height_cm", "weight_lb", PROBLEMS]


def test_unit_mistakes_are_named(tmp_path: Path) -> None:
    message = mapping_error(tmp_path, '[fields.asm_kg]\ncolumn = "a"\nunit = "mg"\n')
    assert "unit 'mg' is not one sarcokit converts for asm_kg (it knows kg, g)" in message
    message = mapping_error(tmp_path, '[fields.asm_kg]\ncolumn = "a"\nunit = "g"\nfactor = 0.001\n')
    assert "sarcokit converts g itself (as asm_g); remove factor" in message
    message = mapping_error(tmp_path, '[fields.height_cm]\ncolumn = "a"\nunit = "in"\n')
    assert "unit = 'in' contradicts it" in message
    message = mapping_error(tmp_path, '[fields.sex]\ncolumn = "a"\nunit = "cm"\n')
    assert "unit = 'cm'; expected a unit name, on a number field" in message


def test_text_that_is_not_a_number_is_a_row_problem(tmp_path: Path) -> None:
    frame = mapped(
        tmp_path,
        '[fields.grip_kg]\ncolumn = "grip"\n\n[fields.calf_cm]\ncolumn = "calf"\n',
        {"pid": ["a", "b", "c"], "grip": ["25.5", "abc", None], "calf": [None, None, None]},
    )
    assert frame["grip_kg"].to_list() == [25.5, None, None]
    assert frame[PROBLEMS].to_list() == [None, "grip_kg: grip = 'abc' is not a number", None]
    assert frame["calf_cm"].dtype == pl.Float64  # an empty column has no type to object to


def test_numeric_ids_read_as_codebooks_print_them(tmp_path: Path) -> None:
    frame = mapped(
        tmp_path, '[fields.age]\ncolumn = "age"\n', {"pid": [62161.0, 2.5], "age": [70, 80]}
    )
    assert frame["id"].to_list() == ["62161", "2.5"]


def test_keep_passes_columns_through_and_a_clash_is_an_error(tmp_path: Path) -> None:
    header = 'name = "test"\nid = "pid"\nkeep = ["weight"]'
    path = write_mapping(tmp_path, '[fields.age]\ncolumn = "age"\n', header)
    frame = apply_mapping(
        pl.LazyFrame({"pid": ["a"], "age": [70], "weight": [1234.5], "row": [1]}),
        load_mapping(path),
        keep=["row"],
    ).collect()
    assert frame.columns == ["id", "age", "weight", "row", PROBLEMS]
    clash = 'name = "test"\nid = "pid"\nkeep = ["age"]'
    message = mapping_error(tmp_path, '[fields.age]\ncolumn = "age"\n', clash)
    assert "[mapping] keep: 'age' is also a column the mapping writes" in message


# ---------------------------------------------------------------------------------------------
# The shipped CHARLS-style mapping on a synthetic CHARLS-style file


CHARLS_CSV = """\
ID,ragender,age,qi002,ql002,qc003,qc004,qc005,qc006,qg003,qg004
094004101001,1,68,165.5,60.2,30.0,31.5,29.0,,3.10,3.30
094004101002,2,72,151.0,50.0,,,,,4.0,
010104101001,2,81,148.2,45.5,15.0,16.5,17.0,16.0,,
010104101002,3,66,170.0,70.0,35.0,36.0,34.0,33.5,2.5,2.7
"""


def test_charls_style_mapping_on_a_synthetic_file(tmp_path: Path) -> None:
    path = tmp_path / "charls_2015.csv"
    path.write_text(CHARLS_CSV, encoding="utf-8")
    mapping = load_mapping(MAPPINGS / "charls.toml")
    frame = apply_mapping(read_table(path, text_columns=[mapping.id]), mapping).collect()
    assert frame["id"].to_list() == ["094004101001", "094004101002", "010104101001", "010104101002"]
    assert frame["sex"].to_list() == ["male", "female", "female", None]
    assert frame[PROBLEMS].to_list() == [None, None, None, "sex: 3 not in map"]
    assert frame["height_cm"].to_list() == [165.5, 151.0, 148.2, 170.0]
    assert frame["grip_kg"].to_list() == [31.5, None, 17.0, 36.0]
    assert frame["walk_distance_m"].to_list() == [2.5] * 4
    times = [None if t is None else round(t, 9) for t in frame["walk_time_s"].to_list()]
    assert times == [3.2, 4.0, None, 2.6]  # the trials done, averaged
    explained = sarcokit.evaluate(frame.lazy(), ["awgs2019"], explain=True).collect()
    assert explained["id"].to_list() == frame["id"].to_list()
    assert explained["gait_speed_m_s"].to_list()[:3] == [0.78125, 0.625, None]
    assert explained["height_m"].to_list()[0] == 1.655


def test_shipped_mappings_load() -> None:
    nhanes = load_mapping(MAPPINGS / "nhanes.toml")
    assert nhanes.key == nhanes.id == "SEQN"
    grip = next(f for f in nhanes.fields if f.target == "grip_kg")
    assert grip.source == "max_of" and "MGDCGSZ" not in grip.columns
    asm = next(f for f in nhanes.fields if f.target == "asm_kg")
    assert (asm.source, asm.output, asm.optional) == ("sum_of", "asm_g", True)


def test_mapped_fields_stream_batch_by_batch(tmp_path: Path) -> None:
    # Code maps, yes/no answers and sex labels: none may become a whole-column step in the
    # streaming plan (replace_strict did, and the cohort run then held every row in memory).
    mapping = load_mapping(
        write_mapping(
            tmp_path,
            '[fields.sex]\ncolumn = "RIAGENDR"\nvalues = { 1 = "male", 2 = "female" }\n\n'
            '[fields.chair_stand_unable]\ncolumn = "unable"\n\n'
            '[fields.age]\ncolumn = "age"\n',
        )
    )
    source = pl.LazyFrame({"pid": ["a"], "RIAGENDR": [1.0], "unable": ["Yes"], "age": [70.0]})
    frame = apply_mapping(source, mapping)
    graph = frame.show_graph(engine="streaming", plan_stage="physical", raw_output=True)
    assert "columnar-function" not in str(graph)
    assert frame.collect()["chair_stand_unable"].to_list() == [True]
