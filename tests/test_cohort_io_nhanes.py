"""Real NHANES 2011-2012 files (DEMO_G, BMX_G) through mappings/nhanes.toml and the engine."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
import pyreadstat
import pytest

import sarcokit
from sarcokit.cohort.mapping import PROBLEMS, MappingError, apply_mapping, load_mapping
from sarcokit.cohort.readers import read_inputs, read_table

REPO = Path(__file__).resolve().parents[1]
NHANES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nhanes"
pytestmark = pytest.mark.skipif(
    not NHANES.is_dir(), reason=f"the NHANES public-use files are not at {NHANES}"
)
DEMO_ROWS = 9756


@pytest.fixture(scope="module")
def mapped() -> pl.DataFrame:
    frame, report = read_inputs([NHANES / "DEMO_G.XPT", NHANES / "BMX_G.XPT"], "SEQN")
    assert report.rows == DEMO_ROWS
    (bmx,) = report.files
    assert (bmx.rows, bmx.unmatched, bmx.absent) == (9338, 0, DEMO_ROWS - 9338)
    return apply_mapping(frame, load_mapping(REPO / "mappings" / "nhanes.toml")).collect()


def independent(columns: list[str]) -> dict[str, list[float]]:
    """DEMO_G columns read by pyreadstat alone, without sarcokit's readers, join or mapping."""
    data, _ = pyreadstat.read_xport(
        str(NHANES / "DEMO_G.XPT"), usecols=columns, output_format="dict"
    )
    return {name: [float(v) for v in data[name]] for name in columns}


def test_every_demo_row_is_kept_in_seqn_order(mapped: pl.DataFrame) -> None:
    assert mapped.height == DEMO_ROWS
    seqn = independent(["SEQN"])["SEQN"]
    assert mapped["id"].to_list() == [str(int(s)) for s in seqn]


def test_sex_counts_match_riagendr(mapped: pl.DataFrame) -> None:
    codes = Counter(independent(["RIAGENDR"])["RIAGENDR"])
    sexes = Counter(mapped["sex"].to_list())
    assert sexes == {"male": codes[1.0], "female": codes[2.0]}
    assert mapped[PROBLEMS].null_count() == DEMO_ROWS


def test_heights_arrive_in_centimetres_for_the_engine_to_convert(mapped: pl.DataFrame) -> None:
    adults = mapped.filter(pl.col("age") >= 18)
    mean_height = adults["height_cm"].mean()
    assert isinstance(mean_height, float) and 150 < mean_height < 175
    assert "height_m" not in mapped.columns


def test_design_columns_pass_through_and_absent_exams_are_left_out(mapped: pl.DataFrame) -> None:
    assert mapped.columns == [
        "id",
        "sex",
        "age",
        "height_cm",
        "weight_kg",
        "asm_method",
        "WTMEC2YR",
        "SDMVSTRA",
        "SDMVPSU",
        "RIDRETH3",
        PROBLEMS,
    ]
    mapping = load_mapping(REPO / "mappings" / "nhanes.toml")
    assert mapping.skipped(read_table(NHANES / "DEMO_G.XPT").collect_schema().names()) == (
        "grip_kg",
        "asm_kg",
    )


def test_the_engine_loses_no_row(mapped: pl.DataFrame) -> None:
    result = sarcokit.evaluate(mapped.lazy(), ["ewgsop2", "awgs2019"]).collect()
    assert result.height == DEMO_ROWS
    assert result["id"].to_list() == mapped["id"].to_list()
    # Children stay in their rows, rejected by age with the reason; every adult is assessed.
    children = (mapped["age"] < 18).to_list()
    invalid = result["invalid_fields"].to_list()
    assert all(
        ("age" in (why or "").split()) == child
        for why, child in zip(invalid, children, strict=True)
    )
    assert sum(children) < DEMO_ROWS


def test_demo_alone_lacks_the_body_measures_and_says_which() -> None:
    mapping = load_mapping(REPO / "mappings" / "nhanes.toml")
    with pytest.raises(MappingError) as caught:
        apply_mapping(read_table(NHANES / "DEMO_H.XPT"), mapping)
    message = str(caught.value)
    assert "nhanes.toml" in message
    assert "[fields.height_cm] column 'BMXHT' is not in the input" in message
    assert "[fields.weight_kg] column 'BMXWT' is not in the input" in message
