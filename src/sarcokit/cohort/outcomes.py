"""Follow-up in a cohort run: survival by category, and the adjusted HR of each definition.

`sarcokit cohort --time T --event E --covariates age,sex` adds these tables to the summary
folder and a section to the report; the statistics are `sarcokit.stats.outcomes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from sarcokit.definitions import category_column, definition, sarcopenia_column

NOT_A_CATEGORY = ("indeterminate", "not_applicable")


@dataclass(frozen=True)
class FollowUp:
    """The follow-up columns of a cohort: time to event, event flag (1 = event), covariates."""

    time: str
    event: str
    covariates: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """Every input column the analysis needs."""
        return [self.time, self.event, *self.covariates]


def _as_numbers(frame: pl.DataFrame, column: str, required: bool) -> pl.DataFrame:
    """A column read as text (a cohort reads CSV cells as written) as numbers.

    The missing-value codes count as missing. Time and event must be numbers: another value is
    an error naming it. A covariate that is not all numbers stays text (a categorical one).
    """
    from sarcokit.cohort.readers import DEFAULT_NA

    if frame.schema[column] != pl.String:
        return frame
    text = frame[column].str.strip_chars()
    text = pl.Series(column, [None if t is None or t in DEFAULT_NA else t for t in text])
    parsed = text.cast(pl.Float64, strict=False)
    bad = text.is_not_null() & parsed.is_null()
    if bad.any():
        if not required:
            return frame
        value = text.filter(bad)[0]
        raise ValueError(
            f"follow-up column {column} = {value!r} in {int(bad.sum())} row(s) is not a number; "
            "expected a number (time since baseline, or 1 = event and 0 = censored)"
        )
    return frame.with_columns(parsed.alias(column))


def outcome_tables(
    results: pl.LazyFrame | pl.DataFrame, follow_up: FollowUp, definitions: Sequence[str]
) -> dict[str, pl.DataFrame]:
    """Kaplan–Meier by category, log-rank and the adjusted HR of sarcopenia per definition."""
    try:
        from sarcokit.stats.outcomes import (
            hazard_ratios_by_definition,
            kaplan_meier,
            logrank_test,
            number_at_risk,
        )
    except ImportError as error:  # statsmodels is the optional `outcomes` extra
        raise ValueError(
            f"the follow-up analysis needs {error.name}: pip install 'sarcokit[outcomes]'"
        ) from None

    frame = results.lazy().collect() if isinstance(results, pl.LazyFrame) else results
    missing = [c for c in follow_up.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"follow-up column(s) not in the cohort: {', '.join(missing)}")
    frame = _as_numbers(frame, follow_up.time, required=True)
    frame = _as_numbers(frame, follow_up.event, required=True)
    for covariate in follow_up.covariates:
        frame = _as_numbers(frame, covariate, required=False)
    frame = frame.with_columns(pl.col(follow_up.event).cast(pl.Int64))
    curves, tests, at_risk = [], [], []
    exposures: dict[str, str] = {}
    for definition_id in definitions:
        d = definition(definition_id)
        column = category_column(d)
        answered = frame.filter(
            pl.col(column).is_not_null() & ~pl.col(column).cast(pl.String).is_in(NOT_A_CATEGORY)
        ).with_columns(pl.col(column).cast(pl.String))
        if answered[column].n_unique() < 2:
            continue
        km = kaplan_meier(answered, follow_up.time, follow_up.event, group=column)
        curves.append(km.select(pl.lit(definition_id).alias("definition"), pl.all()))
        ticks = _ticks(float(answered[follow_up.time].cast(pl.Float64).max()))  # type: ignore[arg-type]
        wide = number_at_risk(answered, follow_up.time, column, ticks)
        at_risk.append(
            wide.unpivot(index="group", variable_name="time", value_name="n_risk").select(
                pl.lit(definition_id).alias("definition"),
                "group",
                pl.col("time").cast(pl.Float64),
                pl.col("n_risk").cast(pl.Int64),
            )
        )
        test = logrank_test(answered, follow_up.time, follow_up.event, column)
        tests.append({"definition": definition_id, "chisq": test.chisq, "df": test.df, "p": test.p})
        if d.diagnoses and sarcopenia_column(d) in frame.columns:
            flags = frame[sarcopenia_column(d)]
            if flags.drop_nulls().n_unique() == 2:
                exposures[definition_id] = sarcopenia_column(d)
    tables: dict[str, pl.DataFrame] = {}
    if curves:
        tables["survival_by_category"] = pl.concat(curves)
        tables["logrank"] = pl.DataFrame(tests)
        tables["number_at_risk"] = pl.concat(at_risk)
    if exposures:
        tables["hazard_ratios"] = hazard_ratios_by_definition(
            frame, follow_up.time, follow_up.event, exposures, list(follow_up.covariates)
        )
    return tables


def _ticks(horizon: float) -> list[float]:
    """Round times from 0 to the end of follow-up (steps of 1, 2 or 5 × 10^k), 4-6 of them."""
    if horizon <= 0:
        return [0.0]
    step = 10 ** math.floor(math.log10(horizon / 4))
    for factor in (1, 2, 5, 10):
        if horizon / (factor * step) <= 6:
            step *= factor
            break
    return [i * step for i in range(int(horizon // step) + 1)]


def write_outcomes(tables: dict[str, pl.DataFrame], folder: Path) -> list[Path]:
    """Write the follow-up tables as CSV into the summary folder."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables.items():
        path = folder / f"{name}.csv"
        table.write_csv(path)
        written.append(path)
    return written


def km_figure(curves: pl.DataFrame, at_risk: pl.DataFrame) -> Any:
    """Kaplan–Meier curves by category, one panel per definition, numbers at risk beneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = list(dict.fromkeys(curves["definition"].to_list()))
    columns = min(2, len(chosen))
    rows = -(-len(chosen) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(6.4 * columns, 4.6 * rows), squeeze=False, sharey=True
    )
    for index, definition_id in enumerate(chosen):
        axis = axes[index // columns][index % columns]
        part = curves.filter(pl.col("definition") == definition_id)
        risk = at_risk.filter(pl.col("definition") == definition_id)
        ticks = sorted(set(risk["time"].to_list()))
        horizon = max(ticks[-1], float(part["time"].to_numpy().max()))
        groups = list(dict.fromkeys(part["group"].to_list()))
        for offset, group in enumerate(groups):
            curve = part.filter(pl.col("group") == group)
            times = [0.0, *curve["time"].to_list()]
            survival = [1.0, *curve["survival"].to_list()]
            (line,) = axis.step(times, survival, where="post", label=group)
            y = -0.2 - 0.065 * offset
            axis.text(-0.07, y, group, transform=axis.transAxes, ha="right", fontsize=6.5)
            counts = risk.filter(pl.col("group") == group).sort("time")
            for tick, count in zip(counts["time"], counts["n_risk"], strict=True):
                axis.text(
                    tick / horizon,
                    y,
                    f"{count:,}",
                    transform=axis.transAxes,
                    ha="center",
                    fontsize=6.5,
                    color=line.get_color(),
                )
        axis.text(
            -0.07, -0.14, "number at risk", transform=axis.transAxes, ha="right", fontsize=6.5
        )
        axis.set_title(definition_id, fontsize=10)
        axis.set_xlabel("follow-up time", fontsize=8)
        axis.set_ylim(0, 1.02)
        axis.set_xlim(0, horizon)
        axis.set_xticks(ticks)
        axis.grid(color="#d8dee6", linewidth=0.6)
        axis.legend(fontsize=7, loc="lower left")
    for index in range(len(chosen), rows * columns):
        axes[index // columns][index % columns].axis("off")
    for row in axes:
        row[0].set_ylabel("survival")
    figure.subplots_adjust(left=0.22, wspace=0.55, hspace=0.75)
    return figure


def outcome_section(extra: dict[str, pl.DataFrame], png: Any, table: Any) -> list[str]:
    """The report's follow-up section (HTML parts), or nothing when there was no follow-up.

    ``png`` and ``table`` are the report's own figure and table renderers, so the section
    looks like the rest of the report.
    """
    if "survival_by_category" not in extra:
        return []
    parts = [
        "<h2>Survival by category</h2>",
        "<p class='note'>Kaplan–Meier estimates by category under each definition (rows "
        "indeterminate or not applicable left out), number at risk under each curve; "
        "log-rank test of equal survival across categories.</p>",
        png(
            km_figure(extra["survival_by_category"], extra["number_at_risk"]),
            "Kaplan-Meier survival by category under each definition, with number at risk",
        ),
        table(extra["logrank"], "logrank.csv"),
    ]
    if "hazard_ratios" in extra:
        parts += [
            "<h3>Hazard ratio of sarcopenia by definition</h3>",
            "<p class='note'>Cox model (Efron ties) of sarcopenia (any severity) against none, "
            "adjusted for the covariates given, on the rows evaluable under each definition; "
            "Harrell's C of each model (higher orders deaths better); ph_p is the global "
            "proportional-hazards test.</p>",
            table(extra["hazard_ratios"], "hazard_ratios.csv"),
        ]
    return parts
