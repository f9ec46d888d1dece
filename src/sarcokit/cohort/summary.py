"""Summary tables of a scored cohort: flow, prevalence, groups, agreement, screening accuracy."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from sarcokit.definitions import INDETERMINATE, category_column, definition, sarcopenia_column
from sarcokit.stats import (
    age_standardised_prevalence,
    auc,
    category_prevalence,
    overlap_counts,
    pairwise_kappa,
    prevalence,
    roc_curve,
    screening_accuracy,
    survey_prevalence,
    youden_cutoff,
)
from sarcokit.stats.accuracy import Positive


@dataclass(frozen=True)
class ScreeningTool:
    """A screening score, its published positive flag, and which end of the score is positive."""

    name: str
    score: str
    flag: str
    positive: Positive


SCREENING_TOOLS = (
    ScreeningTool("SARC-F", "sarc_f_total", "sarc_f_positive", "high"),
    ScreeningTool("SARC-CalF", "sarc_calf_total", "sarc_calf_positive", "high"),
    ScreeningTool("calf circumference", "calf_cm", "calf_low", "low"),
    ScreeningTool("Ishii score (provisional)", "ishii_score", "ishii_positive", "high"),
    ScreeningTool("MSRA-7", "msra7_total", "msra7_at_risk", "low"),
    ScreeningTool("MSRA-5", "msra5_total", "msra5_at_risk", "low"),
)


@dataclass(frozen=True)
class Flow:
    """Where every input row ended: rows read = scored + rejected."""

    rows_read: int
    rows_scored: int
    rows_rejected: int


@dataclass(frozen=True)
class SurveyDesign:
    """Columns of a complex survey design (any may be absent)."""

    weight: str | None = None
    strata: str | None = None
    psu: str | None = None

    @property
    def declared(self) -> bool:
        """Whether any design column was given."""
        return any((self.weight, self.strata, self.psu))


@dataclass
class CohortSummary:
    """Everything the report and the summary files show."""

    inputs: list[str]
    definitions: list[str]
    diagnostic_definitions: list[str]
    flow: Flow
    evaluable: pl.DataFrame
    prevalence: pl.DataFrame
    categories: pl.DataFrame
    by_group: pl.DataFrame
    kappa: pl.DataFrame
    overlap: pl.DataFrame
    method_note: str
    reference: str | None = None
    accuracy: pl.DataFrame | None = None
    roc: pl.DataFrame | None = None
    survey: pl.DataFrame | None = None
    secondary: pl.DataFrame | None = None
    standardised: pl.DataFrame | None = None
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)

    def write(self, folder: Path) -> list[Path]:
        """Write every table as CSV into a folder; returns the files written."""
        folder.mkdir(parents=True, exist_ok=True)
        flow = pl.DataFrame(
            {
                "rows_read": [self.flow.rows_read],
                "rows_scored": [self.flow.rows_scored],
                "rows_rejected": [self.flow.rows_rejected],
            }
        )
        tables: dict[str, pl.DataFrame | None] = {
            "flow": flow,
            "evaluable": self.evaluable,
            "prevalence": self.prevalence,
            "categories": self.categories,
            "prevalence_by_group": self.by_group,
            "kappa": self.kappa,
            "overlap": self.overlap.with_columns(pl.col("members").list.join("+")),
            "screening_accuracy": self.accuracy,
            "roc": self.roc,
            "survey_prevalence": self.survey,
            "secondary_sarcopenia_by_condition": self.secondary,
            "age_standardised_prevalence": self.standardised,
        }
        written = []
        for name, table in tables.items():
            if table is not None:
                path = folder / f"{name}.csv"
                table.write_csv(path)
                written.append(path)
        return written


def age_band_expr(breaks: Sequence[int]) -> pl.Expr:
    """Age bands such as '<60', '60-69', '70-79', '80+' from ascending lower bounds."""
    age = pl.col("age")
    labels = [f"<{breaks[0]}"]
    labels += [f"{low}-{high - 1}" for low, high in itertools.pairwise(breaks)]
    labels.append(f"{breaks[-1]}+")
    expr: Any = pl.when(age < breaks[0]).then(pl.lit(labels[0]))
    for low, high, text in zip(breaks, breaks[1:], labels[1:], strict=False):
        expr = expr.when((age >= low) & (age < high)).then(pl.lit(text))
    band: pl.Expr = expr.when(age >= breaks[-1]).then(pl.lit(labels[-1])).alias("age_band")
    return band


def _stack(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


def build_summary(
    results: pl.LazyFrame,
    *,
    inputs: Sequence[str],
    definitions: Sequence[str],
    flow: Flow,
    by: Sequence[str] = ("sex", "age_band"),
    age_breaks: Sequence[int] = (60, 70, 80),
    reference: str | None = None,
    design: SurveyDesign | None = None,
    standard: str | None = None,
    conditions: Sequence[str] = (),
) -> CohortSummary:
    """Compute the summary tables from scored rows (rejected rows are not in `results`)."""
    results = results.with_columns(age_band_expr(age_breaks))
    diagnostic = [d for d in definitions if definition(d).diagnoses]
    evaluable = results.select(
        *(
            (pl.col(category_column(definition(d))) != INDETERMINATE).sum().alias(d)
            for d in definitions
        )
    ).collect()
    evaluable_table = pl.DataFrame(
        {
            "definition": list(definitions),
            "scored": [flow.rows_scored] * len(definitions),
            "evaluable": [int(evaluable[d][0]) for d in definitions],
        }
    ).with_columns(indeterminate=pl.col("scored") - pl.col("evaluable"))

    prevalence_parts, group_parts, category_parts = [], [], []
    for definition_id in diagnostic:
        column = sarcopenia_column(definition(definition_id))
        label = pl.lit(definition_id).alias("definition")
        prevalence_parts.append(prevalence(results, column).select(label, pl.all()))
        for group in by:
            table = prevalence(results, column, by=group)
            group_parts.append(
                table.select(
                    label,
                    pl.lit(group).alias("group_by"),
                    pl.col(group).cast(pl.String).alias("group"),
                    pl.exclude(group),
                )
            )
    for definition_id in definitions:
        column = category_column(definition(definition_id))
        table = category_prevalence(results, column)
        category_parts.append(table.select(pl.lit(definition_id).alias("definition"), pl.all()))

    diagnosis_columns = {d: sarcopenia_column(definition(d)) for d in diagnostic}
    names = {column: d for d, column in diagnosis_columns.items()}
    columns = list(diagnosis_columns.values())
    kappa = (
        pairwise_kappa(results, columns)
        .with_columns(
            pl.col("column_a").replace_strict(names).alias("definition_a"),
            pl.col("column_b").replace_strict(names).alias("definition_b"),
        )
        .select(
            "definition_a",
            "definition_b",
            pl.exclude("column_a", "column_b", "definition_a", "definition_b"),
        )
        if len(columns) > 1
        else pl.DataFrame()
    )
    overlap = (
        overlap_counts(results, columns)
        .drop_nulls(columns)
        .select(pl.col("members").list.eval(pl.element().replace_strict(names)), "count")
        if columns
        else pl.DataFrame({"members": [], "count": []})
    )

    summary = CohortSummary(
        inputs=list(inputs),
        definitions=list(definitions),
        diagnostic_definitions=diagnostic,
        flow=flow,
        evaluable=evaluable_table,
        prevalence=_stack(prevalence_parts),
        categories=_stack(category_parts),
        by_group=_stack(group_parts),
        kappa=kappa,
        overlap=overlap,
        method_note=(
            "Prevalence of sarcopenia (any severity: the categories each definition counts as a "
            "diagnosis) among evaluable rows (category not indeterminate), with Wilson score 95% "
            "confidence intervals."
        ),
        reference=reference,
    )
    if reference is not None:
        summary.accuracy, summary.roc = screening_tables(
            results, sarcopenia_column(definition(reference))
        )
    if conditions:
        summary.secondary = secondary_by_condition(results, diagnosis_columns, conditions)
    if design is not None and design.declared:
        parts = []
        for definition_id, column in diagnosis_columns.items():
            table = survey_prevalence(
                results, column, weight=design.weight, strata=design.strata, psu=design.psu
            )
            parts.append(table.select(pl.lit(definition_id).alias("definition"), pl.all()))
        summary.survey = _stack(parts)
    if standard is not None:
        parts = []
        for definition_id, column in diagnosis_columns.items():
            weights = design or SurveyDesign()
            table = age_standardised_prevalence(
                results,
                column,
                age="age",
                standard=standard,
                weight=weights.weight,
                strata=weights.strata,
                psu=weights.psu,
            )
            parts.append(table.select(pl.lit(definition_id).alias("definition"), pl.all()))
        summary.standardised = _stack(parts)
    return summary


def screening_tables(results: pl.LazyFrame, reference: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accuracy of each screening tool at its published cut-off, its AUC and Youden cut-off."""
    rows, curves = [], []
    for tool in SCREENING_TOOLS:
        at_cutoff = screening_accuracy(results, tool.flag, reference)
        measures = {
            row["measure"]: (row["estimate"], row["ci_low"], row["ci_high"])
            for row in at_cutoff.iter_rows(named=True)
        }
        area = auc(results, tool.score, reference, positive=tool.positive).row(0, named=True)
        best = youden_cutoff(results, tool.score, reference, positive=tool.positive)
        row: dict[str, object] = {
            "tool": tool.name,
            "n_reference_positive": area["n_positive"],
            "n_reference_negative": area["n_negative"],
            "auc": area["auc"],
            "auc_ci_low": area["ci_low"],
            "auc_ci_high": area["ci_high"],
        }
        for measure in ("sensitivity", "specificity", "ppv", "npv", "lr_positive", "lr_negative"):
            estimate, low, high = measures.get(measure, (None, None, None))
            row.update({measure: estimate, f"{measure}_ci_low": low, f"{measure}_ci_high": high})
        row["youden_cutoff"] = best["rule"][0] if best.height else None
        row["youden_j"] = best["youden_j"][0] if best.height else None
        rows.append(row)
        if area["auc"] is not None:
            curve = roc_curve(results, tool.score, reference, positive=tool.positive)
            curves.append(
                curve.select(
                    pl.lit(tool.name).alias("tool"),
                    (1 - pl.col("specificity")).alias("fpr"),
                    pl.col("sensitivity").alias("tpr"),
                )
            )
    return pl.DataFrame(rows), _stack(curves)


def secondary_by_condition(
    results: pl.LazyFrame, diagnosis_columns: dict[str, str], conditions: Sequence[str]
) -> pl.DataFrame:
    """Prevalence of sarcopenia (secondary, by definition) among rows with each condition."""
    parts = []
    for condition in conditions:
        with_condition = results.filter(pl.col(condition))
        for definition_id, column in diagnosis_columns.items():
            table = prevalence(with_condition, column)
            parts.append(
                table.select(
                    pl.lit(condition.removeprefix("condition_")).alias("condition"),
                    pl.lit(definition_id).alias("definition"),
                    pl.all(),
                )
            )
    return _stack(parts)
