"""The cohort report: weighted and standardised tables equal `sarcokit.stats` run directly,
Table 1 equals numpy's arithmetic on the same rows, and the page renders in a browser."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from sarcokit.cohort.run import CohortRun, run_cohort
from sarcokit.cohort.summary import SurveyDesign
from sarcokit.stats import age_standardised_prevalence, survey_prevalence
from test_cohort_run import synthetic

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
DESIGN = SurveyDesign(weight="w", strata="stratum", psu="psu")


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory: pytest.TempPathFactory) -> CohortRun:
    folder = tmp_path_factory.mktemp("weighted")
    frame = synthetic(600, seed=5)
    # Two rows without sex: the report labels their group "unknown".
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([7, 8])).then(None).otherwise("sex").alias("sex")
    )
    source = folder / "cohort.csv"
    frame.write_csv(source)
    return run_cohort(
        [source],
        folder / "results.parquet",
        definitions=["ewgsop2", "sdoc2020", "awgs2019"],
        design=DESIGN,
        standard="us2000",
        reference="ewgsop2",
        report=folder / "report.html",
    )


def test_weighted_tables_equal_sarcokit_stats_run_directly(weighted_run: CohortRun) -> None:
    results = pl.read_parquet(weighted_run.results).with_columns(pl.col("sex").fill_null("unknown"))
    table = pl.read_csv(weighted_run.summary_folder / "survey_prevalence.csv")
    for definition_id in ("ewgsop2", "sdoc2020"):
        column = f"{definition_id}_sarcopenia"
        overall = survey_prevalence(results, column, weight="w", strata="stratum", psu="psu").row(
            0, named=True
        )
        mine = table.filter(
            (pl.col("definition") == definition_id) & (pl.col("group_by") == "overall")
        ).row(0, named=True)
        for key in ("n", "events", "estimate", "se", "ci_low", "ci_high"):
            assert mine[key] == pytest.approx(overall[key], rel=1e-12), key
        by_sex = survey_prevalence(
            results, column, weight="w", strata="stratum", psu="psu", by="sex"
        ).sort("sex")
        mine_sex = table.filter(
            (pl.col("definition") == definition_id) & (pl.col("group_by") == "sex")
        ).sort("group")
        assert (
            mine_sex["group"].to_list()
            == by_sex["sex"].to_list()
            == [
                "female",
                "male",
                "unknown",
            ]
        )
        assert mine_sex["estimate"].to_list() == pytest.approx(by_sex["estimate"].to_list())
        assert mine_sex["se"].to_list() == pytest.approx(by_sex["se"].to_list())


def test_us2000_is_cut_to_the_cohort_ages(weighted_run: CohortRun) -> None:
    results = pl.read_parquet(weighted_run.results)
    assert results["age"].min() == 60  # the cohort starts at 60: the standard's 60-64 group
    table = pl.read_csv(weighted_run.summary_folder / "age_standardised_prevalence.csv")
    row = table.filter((pl.col("definition") == "ewgsop2") & (pl.col("group_by") == "overall")).row(
        0, named=True
    )
    direct = age_standardised_prevalence(
        results,
        "ewgsop2_sarcopenia",
        age="age",
        standard="us2000",
        breaks=[60, 70, 80],
        weight="w",
        strata="stratum",
        psu="psu",
    ).row(0, named=True)
    assert row["estimate"] is not None
    assert row["estimate"] == pytest.approx(direct["estimate"], rel=1e-12)
    assert row["se"] == pytest.approx(direct["se"], rel=1e-12)
    # By hand: the US 2000 standard populations 60-64 + 65-69, 70-74 + 75-79, 80-84 + 85+
    # (NCI SEER '2000 U.S. Std Population (19 age groups - Census P25-1130)') weight the
    # weighted prevalence of each band.
    population = [10_654_272 + 9_409_940, 8_725_574 + 7_414_559, 4_900_234 + 4_259_173]
    bands = [(60, 70), (70, 80), (80, 200)]
    shares = []
    for low, high in bands:
        band = results.filter(
            (pl.col("age") >= low)
            & (pl.col("age") < high)
            & pl.col("ewgsop2_sarcopenia").is_not_null()
        )
        w = band["w"].to_numpy()
        shares.append(float((w * band["ewgsop2_sarcopenia"].to_numpy()).sum() / w.sum()))
    expected = sum(p * s for p, s in zip(population, shares, strict=True)) / sum(population)
    assert row["estimate"] == pytest.approx(expected, rel=1e-3)


def test_table1_equals_numpy_on_the_same_rows(weighted_run: CohortRun) -> None:
    results = pl.read_parquet(weighted_run.results)
    table = pl.read_csv(weighted_run.summary_folder / "table1.csv")
    age = table.filter(pl.col("variable") == "Age, years").row(0, named=True)
    w, a = results["w"].to_numpy(), results["age"].to_numpy()
    mean = (w * a).sum() / w.sum()
    sd = math.sqrt((w * (a - mean) ** 2).sum() / w.sum())
    assert age["Overall"] == f"{mean:.2f} ± {sd:.2f}"
    # SMD between sarcopenia and no sarcopenia: |m1 - m2| / sqrt((s1² + s2²) / 2).
    moments = []
    for flag in (True, False):
        part = results.filter(pl.col("ewgsop2_sarcopenia") == flag)
        pw, pa = part["w"].to_numpy(), part["age"].to_numpy()
        m = (pw * pa).sum() / pw.sum()
        moments.append((m, math.sqrt((pw * (pa - m) ** 2).sum() / pw.sum())))
    (m1, s1), (m2, s2) = moments
    assert age["smd"] == pytest.approx(abs(m1 - m2) / math.sqrt((s1**2 + s2**2) / 2))
    female = table.filter((pl.col("variable") == "Sex") & (pl.col("level") == "female"))
    known = results.filter(pl.col("sex").is_not_null())
    share = float(known.filter(pl.col("sex") == "female")["w"].sum()) / float(known["w"].sum())
    count = (known["sex"] == "female").sum()
    assert female["Overall"][0] == f"{count:,} ({100 * share:.1f}%)"
    assert str(table.filter(pl.col("variable") == "Sex")["missing"][0]) == "2"


def test_report_reads_as_a_results_section(weighted_run: CohortRun) -> None:
    assert weighted_run.report is not None
    page = weighted_run.report.read_text("utf-8")
    for text in (
        "Participant flow",
        "Table 1. Participant characteristics",
        "Survey-weighted (design-based)",
        "Age-standardised",
        "Prevalence by sex",
        "Prevalence by age band",
        "Prevalence, % (95% CI)",
        "Agreement between definitions",
        "Screening accuracy against ewgsop2",
        "Also as CSV: <code>table1.csv</code>",
    ):
        assert text in page, text
    # Percentages, not proportions: the weighted ewgsop2 estimate as the page shows it.
    row = weighted_run.summary.survey
    assert row is not None
    first = row.filter((pl.col("definition") == "ewgsop2") & (pl.col("group_by") == "overall"))
    assert f"{100 * first['estimate'][0]:.1f} (" in page
    assert "unknown" in page


def test_a_definition_without_its_measurements_is_explained(tmp_path: Path) -> None:
    frame = synthetic(50, seed=2).drop("grip_kg", "chair_stand_5x_s")
    source = tmp_path / "no_grip.csv"
    frame.write_csv(source)
    run = run_cohort(
        [source],
        tmp_path / "out.parquet",
        definitions=["ewgsop2"],
        report=tmp_path / "r.html",
        design=DESIGN,
    )
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "EWGSOP2 cannot be evaluated: no row has a measurement of strength" in page
    assert "strength (grip_kg or chair_stand_5x_s)." in page
    assert "no definition has an evaluable row to weight" in page
    assert run.summary.not_evaluable is not None and run.summary.not_evaluable.height == 1


@contextmanager
def opened(report: Path, tmp_path: Path, name: str) -> Iterator[Any]:
    """The report open in Chromium; on leaving, a full-page screenshot is taken (and kept
    under docs/screenshots/<name> with SARCOKIT_SCREENSHOTS=1)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs Debian's chromium package")
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri())
        yield page
        shot = tmp_path / name
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000
        if os.environ.get("SARCOKIT_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        browser.close()


def test_report_in_a_browser(weighted_run: CohortRun, tmp_path: Path) -> None:
    assert weighted_run.report is not None
    with opened(weighted_run.report, tmp_path, "cohort-report.png") as page:
        assert page.title() == "sarcokit cohort report"
        images = page.locator("img")
        assert images.count() >= 6
        # Every figure decoded and laid out (a broken data URI has no natural width).
        widths = images.evaluate_all("els => els.map(e => e.naturalWidth)")
        assert all(width > 100 for width in widths)
        assert page.locator("h2", has_text="Table 1").is_visible()
    assert np.isfinite(weighted_run.flow.rows_read)


def test_nhanes_report_in_a_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's NHANES example (DEMO + BMX: nothing evaluable) renders and says why."""
    # Run from the repository as the README does, so the report names ../shared/... as given.
    monkeypatch.chdir(REPO)
    nhanes = Path("..") / "shared" / "data" / "nhanes"
    assert nhanes.is_dir(), f"NHANES files not found at {nhanes.resolve()} (../shared)"
    report = tmp_path / "nhanes.html"
    run_cohort(
        [nhanes / "DEMO_G.XPT", nhanes / "BMX_G.XPT"],
        tmp_path / "nhanes.parquet",
        key="SEQN",
        mapping=Path("mappings") / "nhanes.toml",
        design=SurveyDesign(weight="WTMEC2YR", strata="SDMVSTRA", psu="SDMVPSU"),
        standard="us2000",
        age_breaks=(60, 70, 80),
        report=report,
    )
    with opened(report, tmp_path, "cohort-report-nhanes.png") as page:
        assert page.locator("h2", has_text="Table 1").is_visible()
        assert page.get_by_text("EWGSOP2 cannot be evaluated").is_visible()
        # No chart is drawn for a definition with no evaluable row.
        assert page.locator("h2", has_text="Prevalence by sex").count() == 0
