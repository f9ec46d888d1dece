"""Evidence synthesis end to end on generated data.

1. Six generated cohorts (different sites, sizes and muscle status) are each assessed with
   `sarcokit cohort`, and their prevalence is pooled by definition with `sarcokit meta`.
2. A generated follow-up cohort (five years, deaths depending on muscle status and age) is
   assessed with `sarcokit cohort --time --event --covariates`: survival by category under
   each definition and the adjusted hazard ratio of sarcopenia side by side.

Run from the repository root: `python examples/evidence/run_example.py [OUTPUT_FOLDER]`
(default `evidence-example`). The data are generated; no real participant is involved.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

DEFINITIONS = "ewgsop2,awgs2019,fnih2014,iwgs2011"


def cohort(rows: int, seed: int, weakness: float) -> pl.DataFrame:
    """Older adults; `weakness` shifts grip, gait and muscle mass down (site differences)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["male", "female"], rows)
    male = sex == "male"
    shift = rng.normal(weakness, 0.5, rows)
    grip = np.where(male, rng.normal(32, 7, rows), rng.normal(21, 5, rows)) - 4 * shift
    height = np.where(male, rng.normal(1.69, 0.07, rows), rng.normal(1.57, 0.06, rows))
    asmi = np.where(male, rng.normal(7.4, 0.9, rows), rng.normal(5.9, 0.7, rows)) - 0.4 * shift
    return pl.DataFrame(
        {
            "id": [f"s{seed}-{i:05d}" for i in range(rows)],
            "sex": sex,
            "age": rng.integers(60, 95, rows).astype(float),
            "height_m": height.round(3),
            "weight_kg": (height**2 * rng.normal(24, 3, rows)).round(1),
            "grip_kg": grip.clip(5, 60).round(1),
            "gait_speed_m_s": (rng.normal(1.05, 0.22, rows) - 0.08 * shift).clip(0.2, 2).round(2),
            "chair_stand_5x_s": rng.normal(12, 3, rows).clip(5, 40).round(1),
            "asm_kg": (asmi * height**2).round(2),
            "asm_method": "dxa",
            "calf_cm": np.where(male, rng.normal(35, 3, rows), rng.normal(33, 3, rows)).round(1),
        }
    )


def follow_up(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Five years of follow-up: the death hazard rises with age, weak grip and slow gait."""
    rng = np.random.default_rng(seed)
    male = (frame["sex"] == "male").to_numpy()
    weak = frame["grip_kg"].to_numpy() < np.where(male, 28, 18)
    slow = frame["gait_speed_m_s"].to_numpy() < 0.8
    log_hazard = 0.06 * (frame["age"].to_numpy() - 75) + 0.5 * weak + 0.4 * slow + 0.25 * male
    death = rng.exponential(1 / (0.04 * np.exp(log_hazard)))
    years = np.minimum(death, 5.0)
    return frame.with_columns(
        follow_up_years=pl.Series(np.round(years, 3)), died=pl.Series((death <= 5.0).astype(int))
    )


def sarcokit(*arguments: str) -> None:
    """Run the sarcokit command installed beside this Python."""
    command = shutil.which("sarcokit", path=str(Path(sys.executable).parent)) or "sarcokit"
    print("$ sarcokit " + " ".join(arguments), flush=True)
    subprocess.run([command, *arguments], check=True)


def main() -> None:
    """Generate the cohorts, assess them, pool them and analyse the follow-up."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "evidence-example")
    out.mkdir(parents=True, exist_ok=True)
    sites = [
        ("beijing", 1800, 0.6),
        ("chengdu", 900, 0.9),
        ("guangzhou", 1200, 0.3),
        ("shanghai", 2500, 0.2),
        ("xian", 600, 1.1),
        ("wuhan", 1500, 0.5),
    ]
    folders = []
    for index, (site, rows, weakness) in enumerate(sites):
        source = out / f"{site}.csv"
        cohort(rows, 100 + index, weakness).write_csv(source)
        sarcokit(
            "cohort",
            str(source),
            "--output",
            str(out / f"{site}.parquet"),
            "--definitions",
            DEFINITIONS,
        )
        folders.append(str(out / f"{site}.summary"))
    sarcokit("meta", *folders, "--measure", "glmm", "--output", str(out / "meta"))
    sarcokit(
        "meta",
        *folders,
        "--definition",
        "ewgsop2",
        "--method",
        "REML",
        "--output",
        str(out / "meta-ewgsop2"),
    )
    followed = out / "followup.csv"
    follow_up(cohort(3000, 7, 0.5), 8).write_csv(followed)
    sarcokit(
        "cohort",
        str(followed),
        "--output",
        str(out / "followup.parquet"),
        "--definitions",
        DEFINITIONS,
        "--time",
        "follow_up_years",
        "--event",
        "died",
        "--covariates",
        "age,sex",
        "--report",
        str(out / "followup-report.html"),
    )
    # The report embeds the Kaplan-Meier figure; draw it once more as a file for the README.
    from sarcokit.cohort.outcomes import km_figure

    summary = out / "followup.summary"
    curves = pl.read_csv(summary / "survival_by_category.csv")
    at_risk = pl.read_csv(summary / "number_at_risk.csv")
    km_figure(curves, at_risk).savefig(out / "km.png", dpi=110, bbox_inches="tight")
    print(f"figures: {out / 'meta' / 'forest.png'}, {out / 'km.png'}")


if __name__ == "__main__":
    main()
