"""`sarcokit cohort --time --event --covariates`: survival and hazard ratios in the summary
and report, the HR checked against R coxph fitted on the written results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from typer.testing import CliRunner

from rreference import agrees, run_r
from sarcokit.cli import app
from sarcokit.cohort.outcomes import FollowUp
from sarcokit.cohort.run import run_cohort
from test_cohort_run import synthetic

runner = CliRunner()


def followed(rows: int = 500) -> pl.DataFrame:
    frame = synthetic(rows, seed=5)
    rng = np.random.default_rng(6)
    weak = (frame["grip_kg"] < 24).to_numpy()
    death = rng.exponential(8 / np.exp(0.5 * weak + 0.04 * (frame["age"].to_numpy() - 75)))
    return frame.with_columns(
        years=pl.Series(np.minimum(death, 5).round(2)),
        died=pl.Series((death < 5).astype(int)),
    )


def test_follow_up_tables_and_report(tmp_path: Path) -> None:
    source = tmp_path / "cohort.csv"
    followed().write_csv(source)
    run = run_cohort(
        [source],
        tmp_path / "results.csv",
        definitions=["ewgsop2", "awgs2019"],
        report=tmp_path / "report.html",
        follow_up=FollowUp("years", "died", ("age", "sex")),
    )
    folder = run.summary_folder
    hazard = pl.read_csv(folder / "hazard_ratios.csv")
    assert hazard["definition"].to_list() == ["ewgsop2", "awgs2019"]
    assert (folder / "survival_by_category.csv").exists()
    assert (folder / "number_at_risk.csv").exists()
    report = (tmp_path / "report.html").read_text()
    assert "Survival by category" in report and "Hazard ratio of sarcopenia" in report
    reference = run_r(
        "library(survival)\nd <- read.csv('results.csv')\nout <- c()\n"
        "for (v in c('ewgsop2_sarcopenia', 'awgs2019_sarcopenia')) {\n"
        "  d$x <- ifelse(d[[v]] == '', NA, d[[v]] == 'true')\n"
        "  f <- coxph(Surv(years, died) ~ x + age + sex, data = d)\n"
        "  out <- c(out, setNames(c(exp(f$coefficients[1]), f$concordance['concordance'], f$n),"
        " paste(v, c('hr', 'c', 'n'))))\n}\n",
        {"results": pl.read_csv(tmp_path / "results.csv", infer_schema_length=None)},
    )
    for row in hazard.iter_rows(named=True):
        column = row["term"]
        assert agrees(row["hr"], reference[f"{column} hr"])
        assert agrees(row["concordance"], reference[f"{column} c"])
        assert row["n"] == reference[f"{column} n"]


def test_follow_up_options_are_checked(tmp_path: Path) -> None:
    source = tmp_path / "cohort.csv"
    followed(50).write_csv(source)
    result = runner.invoke(app, ["cohort", str(source), "--time", "years"])
    assert result.exit_code == 2 and "--time and --event together" in result.output
    result = runner.invoke(
        app,
        [
            "cohort",
            str(source),
            "--output",
            str(tmp_path / "r.csv"),
            "--time",
            "nope",
            "--event",
            "died",
        ],
    )
    assert result.exit_code == 2 and "nope" in result.output
