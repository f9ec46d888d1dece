"""`sarcokit cohort` end to end: nothing lost, rejects explained, summary and report written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyreadstat
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from sarcokit.cli import app
from sarcokit.cohort.run import ROW, StrictError, run_cohort
from sarcokit.cohort.summary import SurveyDesign

NHANES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nhanes"


def synthetic(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["male", "female"], rows)
    male = sex == "male"
    grip = np.where(male, rng.normal(30, 8, rows), rng.normal(19, 5, rows)).clip(5, 60)
    height = np.where(male, rng.normal(1.70, 0.07, rows), rng.normal(1.57, 0.06, rows))
    asmi = np.where(male, rng.normal(7.2, 0.9, rows), rng.normal(5.7, 0.7, rows))
    return pl.DataFrame(
        {
            "id": [f"p{i:04d}" for i in range(rows)],
            "sex": sex,
            "age": rng.integers(60, 95, rows).astype(float),
            "height_m": height.round(3),
            "weight_kg": (height**2 * rng.normal(24, 3, rows)).round(1),
            "grip_kg": grip.round(1),
            "gait_speed_m_s": rng.normal(1.0, 0.25, rows).clip(0.2, 2).round(2),
            "chair_stand_5x_s": rng.normal(12, 3, rows).clip(5, 40).round(1),
            "asm_kg": (asmi * height**2).round(2),
            "asm_method": rng.choice(["dxa", "bia"], rows),
            "calf_cm": np.where(male, rng.normal(35, 3, rows), rng.normal(33, 3, rows)).round(1),
            "sarc_f_strength": rng.integers(0, 3, rows),
            "sarc_f_assistance_walking": rng.integers(0, 3, rows),
            "sarc_f_rise_from_chair": rng.integers(0, 3, rows),
            "sarc_f_climb_stairs": rng.integers(0, 3, rows),
            "sarc_f_falls": rng.integers(0, 3, rows),
            "psu": rng.integers(1, 3, rows),
            "stratum": rng.integers(1, 6, rows),
            "w": rng.uniform(500, 3000, rows).round(1),
        }
    )


@pytest.fixture
def cohort_csv(tmp_path: Path) -> Path:
    frame = synthetic(400, seed=11)
    # Three bad rows: height in cm under height_m (row 3), an impossible grip (row 10), an
    # unknown sex label (row 20; M or F would be read as male or female); every other row must
    # be scored.
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(165.0).otherwise("height_m").alias("height_m"),
        pl.when(pl.int_range(pl.len()) == 9).then(250.0).otherwise("grip_kg").alias("grip_kg"),
        pl.when(pl.int_range(pl.len()) == 19).then(pl.lit("X")).otherwise("sex").alias("sex"),
    )
    path = tmp_path / "cohort.csv"
    frame.write_csv(path)
    return path


def test_every_row_is_scored_or_rejected_with_a_reason(cohort_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "results.parquet"
    run = run_cohort([cohort_csv], output, reference="ewgsop2")
    assert (run.flow.rows_read, run.flow.rows_scored, run.flow.rows_rejected) == (400, 397, 3)
    results = pl.read_parquet(output)
    assert results.height == 397
    assert results["invalid_fields"].null_count() == 397
    assert 3 not in results[ROW].to_list() and 1 in results[ROW].to_list()
    rejects = pl.read_csv(run.rejects)
    assert rejects[ROW].to_list() == [3, 10, 20]
    assert rejects["field"].to_list() == ["height_m", "grip_kg", "sex"]
    assert rejects["value"].to_list() == ["165.0", "250.0", "X"]
    assert "height_cm" in rejects["reason"][0]


def test_summary_tables_match_an_independent_count(cohort_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "results.parquet"
    run = run_cohort([cohort_csv], output, definitions=["ewgsop2", "sdoc2020"])
    results = pl.read_parquet(output)
    prevalence = pl.read_csv(run.summary_folder / "prevalence.csv")
    sdoc = prevalence.filter(pl.col("definition") == "sdoc2020").row(0, named=True)
    categories = results["sdoc2020_category"]
    assert sdoc["n"] == (categories != "indeterminate").sum()
    assert sdoc["events"] == (categories == "sarcopenia").sum()
    assert sdoc["estimate"] == pytest.approx(sdoc["events"] / sdoc["n"])
    assert sdoc["ci_low"] < sdoc["estimate"] < sdoc["ci_high"]
    flow = pl.read_csv(run.summary_folder / "flow.csv").row(0, named=True)
    assert flow == {
        "rows_read": 397 + 3,
        "rows_scored": 397,
        "rows_rejected": 3,
        "rows_excluded": 0,
    }


def test_strict_fails_on_any_rejection(cohort_csv: Path, tmp_path: Path) -> None:
    design = SurveyDesign(weight="w", strata="stratum", psu="psu")
    with pytest.raises(StrictError, match="3 of 400 rows were rejected"):
        run_cohort([cohort_csv], tmp_path / "out.parquet", strict=True, design=design)
    # Without the design its three columns are used by nothing: strict names them first.
    with pytest.raises(StrictError, match=r"3 input column.*psu, stratum, w"):
        run_cohort([cohort_csv], tmp_path / "out.parquet", strict=True)


def test_report_is_self_contained_and_has_every_section(cohort_csv: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    design = SurveyDesign(weight="w", strata="stratum", psu="psu")
    run_cohort(
        [cohort_csv], tmp_path / "r.parquet", report=report, reference="ewgsop2", design=design
    )
    page = report.read_text("utf-8")
    for section in (
        "Participant flow",
        "Prevalence of sarcopenia by definition",
        "Prevalence by sex",
        "Prevalence by age band",
        "Agreement between definitions",
        "Overlap",
        "Screening accuracy against ewgsop2",
        "Cut-offs and citations used",
    ):
        assert section in page, section
    assert page.count("data:image/png;base64,") >= 6
    assert 'src="http' not in page and 'href="http' not in page
    assert "Age Ageing 2019;48(1):16-31" in page


def test_polars_and_duckdb_engines_agree(cohort_csv: Path, tmp_path: Path) -> None:
    polars_run = run_cohort([cohort_csv], tmp_path / "p.parquet", engine="polars")
    duckdb_run = run_cohort([cohort_csv], tmp_path / "d.parquet", engine="duckdb")
    expected = pl.read_parquet(polars_run.results)
    got = pl.read_parquet(duckdb_run.results).select(expected.columns)
    assert_frame_equal(got, expected, check_dtypes=False)


def test_cohort_command_prints_the_flow(cohort_csv: Path, tmp_path: Path) -> None:
    output = tmp_path / "cli.csv"
    result = CliRunner().invoke(
        app, ["cohort", str(cohort_csv), "--output", str(output), "--definitions", "awgs2019"]
    )
    assert result.exit_code == 0, result.output
    assert "rows read 400 = scored 397 + rejected 3 + excluded 0" in result.output
    assert pl.read_csv(output).height == 397


def test_nhanes_demo_and_body_measures_through_the_shipped_mapping(tmp_path: Path) -> None:
    if not NHANES.is_dir():
        pytest.skip(f"NHANES files not found at {NHANES}")
    mapping = Path(__file__).resolve().parents[1] / "mappings" / "nhanes.toml"
    output = tmp_path / "nhanes.parquet"
    run = run_cohort(
        [NHANES / "DEMO_G.XPT", NHANES / "BMX_G.XPT"],
        output,
        key="SEQN",
        mapping=mapping,
        design=SurveyDesign(weight="WTMEC2YR", strata="SDMVSTRA", psu="SDMVPSU"),
    )
    demo, _ = pyreadstat.read_xport(str(NHANES / "DEMO_G.XPT"), output_format="dict")
    ages = np.asarray(demo["RIDAGEYR"])
    assert run.flow.rows_read == len(ages) == 9756
    flow = run.flow
    assert flow.rows_read == flow.rows_scored + flow.rows_rejected + flow.rows_excluded
    # Every participant under 18 is excluded (outside the study's scope), not rejected ...
    children = {i + 1 for i, age in enumerate(ages) if age < 18}
    excluded = pl.read_csv(run.excluded) if run.excluded else pl.DataFrame()
    assert set(excluded[ROW].to_list()) == children
    assert flow.excluded_by == (("age under 18", len(children)),)
    # ... and no adult is rejected for age.
    rejects = pl.read_csv(run.rejects, schema_overrides={"value": pl.String})
    assert rejects.filter(pl.col("field") == "age").is_empty()
    scored = pl.read_parquet(output)
    assert scored["WTMEC2YR"].null_count() == 0
    json.dumps(run.summary.flow.__dict__)


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_every_engine_writes_what_polars_writes(
    cohort_csv: Path, tmp_path: Path, engine: str
) -> None:
    # Column for column and type for type (through pandas, Spark's whole-number scores came back
    # as floats wherever one was missing), and the same summary tables: categories in their
    # definition's order, not alphabetically as text would sort them.
    polars_run = run_cohort([cohort_csv], tmp_path / "p.parquet")
    other_run = run_cohort([cohort_csv], tmp_path / "o.parquet", engine=engine)  # type: ignore[arg-type]
    expected = pl.read_parquet(polars_run.results)
    got = pl.read_parquet(other_run.results)
    assert got.columns == expected.columns
    assert_frame_equal(got, expected, check_exact=True)  # floats to the last bit
    tables = sorted(p.name for p in polars_run.summary_folder.iterdir())
    assert tables == sorted(p.name for p in other_run.summary_folder.iterdir())
    for name in tables:
        want = (polars_run.summary_folder / name).read_bytes()
        assert (other_run.summary_folder / name).read_bytes() == want, name


def test_secondary_sarcopenia_by_condition(tmp_path: Path) -> None:
    frame = synthetic(300, seed=3)
    conditions = ["K74.6; E11.9", "COPD", None, "I10", "肝硬化"] * 60
    path = tmp_path / "with_conditions.parquet"
    frame.with_columns(pl.Series("conditions", conditions)).write_parquet(path)
    run = run_cohort([path], tmp_path / "out.parquet", definitions=["awgs2019"])
    results = pl.read_parquet(run.results)
    # K74.6 and 肝硬化 are cirrhosis; I10 (hypertension) is no recognised cause; no text: unknown.
    assert results["condition_cirrhosis"].to_list()[:5] == [True, False, None, False, True]
    assert results["condition_diabetes"].to_list()[:5] == [True, False, None, False, False]
    table = pl.read_csv(run.summary_folder / "secondary_sarcopenia_by_condition.csv")
    row = table.filter(pl.col("condition") == "cirrhosis").row(0, named=True)
    cirrhosis = results.filter(pl.col("condition_cirrhosis"))
    assert row["n"] == cirrhosis["awgs2019_sarcopenia"].count()
    assert row["events"] == cirrhosis["awgs2019_sarcopenia"].sum()


def test_readme_nhanes_example_weighted_table1_against_r_survey(tmp_path: Path) -> None:
    """The README's NHANES command: Table 1 weighted as R's survey weights it, gaps explained."""
    from rreference import run_r

    assert NHANES.is_dir(), f"NHANES files not found at {NHANES} (the repository's ../shared)"
    mapping = Path(__file__).resolve().parents[1] / "mappings" / "nhanes.toml"
    report = tmp_path / "nhanes.html"
    run = run_cohort(
        [NHANES / "DEMO_G.XPT", NHANES / "BMX_G.XPT"],
        tmp_path / "nhanes.parquet",
        key="SEQN",
        mapping=mapping,
        design=SurveyDesign(weight="WTMEC2YR", strata="SDMVSTRA", psu="SDMVPSU"),
        standard="us2000",
        age_breaks=(60, 70, 80),
        report=report,
    )
    table1 = run.summary.table1
    assert table1 is not None
    cells = {(r["variable"], r["level"]): r["Overall"] for r in table1.iter_rows(named=True)}
    # The same adults from the CDC file itself, weighted by R's survey package.
    demo, _ = pyreadstat.read_xport(str(NHANES / "DEMO_G.XPT"), output_format="polars")
    design = demo.select("RIAGENDR", "RIDAGEYR", "WTMEC2YR", "SDMVSTRA", "SDMVPSU")
    expected = run_r(
        """
        library(survey)
        d <- read.csv("demo.csv")
        d <- d[d$WTMEC2YR > 0, ]  # a zero weight adds nothing to a weighted mean or share
        des <- svydesign(ids = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE,
                         data = d)
        adults <- subset(des, RIDAGEYR >= 18)
        out <- c(age = unname(coef(svymean(~RIDAGEYR, adults))),
                 female = unname(coef(svymean(~I(RIAGENDR == 2), adults))[2]))
        """,
        {"demo": design},
    )
    age_mean = float(cells[("Age, years", "mean ± SD")].split(" ± ")[0])
    assert age_mean == pytest.approx(expected["age"], abs=0.005)
    female = float(cells[("Sex", "female")].split("(")[1].rstrip("%)"))
    assert female == pytest.approx(100 * expected["female"], abs=0.05)
    assert "(weighted " in cells[("n", "")]
    # Nothing is evaluable from DEMO and BMX: every section says so, and why, in words.
    text = report.read_text("utf-8")
    assert "EWGSOP2 cannot be evaluated: no row has a measurement of strength" in text
    assert "The survey design was given, but no definition has an evaluable row" in text
    assert "nothing could be standardised to us2000" in text
    assert text.count("No definition could classify any analysed row") >= 3
