"""`sarcokit meta`: a table or cohort summary folders in, a result table and figures out."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from rreference import agrees, run_r
from sarcokit.cli import app

runner = CliRunner()

TABLE = pl.DataFrame(
    {
        "study": [f"s{i}" for i in range(1, 11)],
        "events": [12, 30, 8, 45, 22, 9, 60, 14, 33, 5],
        "n": [100, 210, 90, 300, 150, 70, 420, 120, 200, 60],
        "setting": ["community", "hospital"] * 5,
    }
)


def test_meta_table_writes_csv_and_figures_that_match_metafor(tmp_path: Path) -> None:
    source = tmp_path / "studies.csv"
    TABLE.write_csv(source)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "meta",
            str(source),
            "--measure",
            "ft",
            "--method",
            "DL",
            "--by",
            "setting",
            "--output",
            str(out),
            "--format",
            "svg",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "between setting subgroups" in result.output
    assert (out / "forest.svg").stat().st_size > 1000
    assert (out / "funnel.svg").exists()
    table = pl.read_csv(out / "meta.csv")
    pooled = table.filter((pl.col("row") == "pooled") & pl.col("subgroup").is_null()).row(
        0, named=True
    )
    reference = run_r(
        "library(metafor)\nd <- read.csv('s.csv')\n"
        "r <- rma(measure = 'PFT', xi = events, ni = n, data = d, method = 'DL')\n"
        "b <- predict(r, transf = transf.ipft.hm, targs = list(ni = d$n))\n"
        "out <- c(p = b$pred, lo = b$ci.lb, hi = b$ci.ub, pilo = b$pi.lb, pihi = b$pi.ub)\n",
        {"s": TABLE},
    )
    assert agrees(pooled["proportion"], reference["p"])
    assert agrees(pooled["ci_low"], reference["lo"])
    assert agrees(pooled["ci_high"], reference["hi"])
    assert agrees(pooled["pi_low"], reference["pilo"])
    assert agrees(pooled["pi_high"], reference["pihi"])
    assert table.filter(pl.col("row") == "study").height == 10
    assert table.filter(pl.col("row") == "between_subgroups").height == 1
    assert table.filter(pl.col("row") == "egger_test").height == 1


def test_meta_cohort_folders_pool_each_definition_separately(tmp_path: Path) -> None:
    folders = []
    for i, (a, b) in enumerate([(10, 25), (14, 30), (9, 21), (20, 41)]):
        folder = tmp_path / f"site{i}.summary"
        folder.mkdir()
        pl.DataFrame(
            {"definition": ["ewgsop2", "awgs2019"], "n": [100, 100], "events": [a, b]}
        ).write_csv(folder / "prevalence.csv")
        folders.append(str(folder))
    out = tmp_path / "out"
    result = runner.invoke(app, ["meta", *folders, "--output", str(out)])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(out / "meta.csv")
    pooled = table.filter(pl.col("row") == "pooled")
    # The same cohorts under two definitions: one pool per definition, never one across them.
    assert sorted(pooled["subgroup"].to_list()) == ["awgs2019", "ewgsop2"]
    assert "participants overlap" in result.output
    assert table.filter(pl.col("row") == "between_subgroups").height == 0


def test_meta_rejects_bad_options_and_rows(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    pl.DataFrame({"study": ["a", "b"], "events": [3, 20], "n": [10, 10]}).write_csv(source)
    result = runner.invoke(app, ["meta", str(source), "--output", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "study 'b': events 20 of n 10" in result.output
    result = runner.invoke(app, ["meta", str(source), "--method", "HS"])
    assert result.exit_code == 2 and "--method 'HS'" in result.output


def test_meta_regression_option_matches_metafor(tmp_path: Path) -> None:
    table = TABLE.with_columns(mean_age=pl.Series([66.0, 71, 68, 75, 70, 64, 78, 69, 73, 67]))
    source = tmp_path / "studies.csv"
    table.write_csv(source)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["meta", str(source), "--regression", "mean_age", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    row = pl.read_csv(out / "meta_regression.csv").row(0, named=True)
    reference = run_r(
        "library(metafor)\nd <- read.csv('s.csv')\n"
        "r <- rma(measure = 'PLO', xi = events, ni = n, mods = ~ mean_age, data = d,"
        " control = list(threshold = 1e-12))\n"
        "out <- c(slope = r$beta[2], se = r$se[2], p = r$QMp, tau2 = r$tau2)\n",
        {"s": table},
    )
    assert agrees(row["slope"], reference["slope"])
    assert agrees(row["slope_se"], reference["se"])
    assert agrees(row["qm_p"], reference["p"])
    assert agrees(row["tau2"], reference["tau2"])
