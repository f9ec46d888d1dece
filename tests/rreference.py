"""Run R on the same data as a test: inputs as CSV files, results back as a name/value table.

R and its packages come from Debian (`make test` installs them). A missing Rscript fails the
test that needs it: a reference that did not run is not agreement.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import polars as pl

# Every comparison with R made in this test session: (test id, ours, R's, tolerance). The
# agreement table (conftest.py, SARCOKIT_R_AGREEMENT) is written from it, so the figures quoted
# as "sarcokit vs R" are the very numbers the assertions checked.
COMPARISONS: list[tuple[str, float, float, float]] = []


def agrees(got: float | None, expected: float, tol: float = 1e-6, *, rel: float = 0.0) -> bool:
    """Whether a value equals R's within max(tol, rel × |R's|); every comparison is recorded."""
    # A missing value of ours never agrees (recorded as NaN, so the table shows it).
    got = math.nan if got is None else got
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
    allowed = max(tol, rel * abs(expected))
    COMPARISONS.append((test, float(got), float(expected), allowed))
    return math.isfinite(got) and math.isfinite(expected) and abs(got - expected) <= allowed


def agreement_table() -> str:
    """A Markdown table of the session's comparisons with R: per test, count and largest gap."""
    by_test: dict[str, list[tuple[float, float, float]]] = {}
    for test, got, expected, allowed in COMPARISONS:
        by_test.setdefault(test, []).append((got, expected, allowed))
    lines = [
        "| test (R package run on the same data) | numbers compared | largest abs. difference "
        "| tolerance | all within |",
        "|---|---:|---:|---:|---|",
    ]
    for test, rows in sorted(by_test.items()):
        gaps = [abs(got - expected) for got, expected, _ in rows]
        tolerance = max(allowed for _, _, allowed in rows)
        within = all(gap <= allowed for gap, (_, _, allowed) in zip(gaps, rows, strict=True))
        lines.append(
            f"| `{test}` | {len(rows)} | {max(gaps):.1e} | {tolerance:.0e} | "
            f"{'yes' if within else '**no**'} |"
        )
    total = len(COMPARISONS)
    lines.append(f"\n{total} numbers compared in all.\n")
    return "\n".join(lines)


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
