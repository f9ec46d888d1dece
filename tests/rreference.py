"""Run R on the same data as a test: inputs as CSV files, results back as a name/value table.

R and its packages come from Debian (`make test` installs them). A missing Rscript fails the
test that needs it: a reference that did not run is not agreement.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import polars as pl


def rscript() -> str:
    """The Rscript executable; fails (never skips) when R is not installed."""
    found = shutil.which("Rscript")
    if found is None:
        raise AssertionError("Rscript not found: `make test` installs r-base-core and packages")
    return found


def run_r(script: str, inputs: dict[str, pl.DataFrame] | None = None) -> dict[str, float]:
    """Run an R script that fills a named numeric vector `out`; return it as a dict.

    Each input frame is written to `<name>.csv` in the working directory, where the script
    reads it with `read.csv("<name>.csv")`.
    """
    with tempfile.TemporaryDirectory(prefix="sarcokit-r-") as folder:
        work = Path(folder)
        for name, frame in (inputs or {}).items():
            frame.write_csv(work / f"{name}.csv")
        epilogue = (
            '\nwrite.csv(data.frame(name = names(out), value = sprintf("%.17g", unname(out))),'
            ' "out.csv", row.names = FALSE)\n'
        )
        _run_script(work, script + epilogue)
        table = pl.read_csv(work / "out.csv", schema={"name": pl.String, "value": pl.String})
    return {
        name: float(value) if value not in ("NA", "NaN") else float("nan")
        for name, value in zip(table["name"], table["value"], strict=True)
    }


def _run_script(work: Path, script: str) -> None:
    """Run an R script in `work` with Rscript --vanilla; a failure shows R's error output."""
    (work / "script.R").write_text(script, encoding="utf-8")
    done = subprocess.run(
        [rscript(), "--vanilla", "script.R"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"R failed:\n{done.stderr[-3000:]}")


def r_table(expression: str, setup: str = "") -> pl.DataFrame:
    """A data frame computed in R (e.g. a data set of an R package), read back from CSV."""
    with tempfile.TemporaryDirectory(prefix="sarcokit-r-") as folder:
        work = Path(folder)
        script = f'{setup}\nwrite.csv({expression}, "table.csv", row.names = FALSE, na = "")\n'
        _run_script(work, script)
        return pl.read_csv(work / "table.csv", infer_schema_length=None)
