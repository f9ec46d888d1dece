"""Summary tables of a scored cohort: flow, prevalence, groups, agreement, screening accuracy."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from sarcokit.cohort.table1 import CATEGORICAL, CONTINUOUS, UNKNOWN, Group, table_one
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
    standard_population,
    survey_prevalence,
    youden_cutoff,
)
from sarcokit.stats.accuracy import Positive

NOT_APPLICABLE = "not_applicable"  # a definition's own scope (AWGS 2025: under 50)


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
    """Where every input row ended: rows read = scored + rejected + excluded."""

    rows_read: int
    rows_scored: int
    rows_rejected: int
    rows_excluded: int = 0
    # (reason, rows) for exclusions (outside the study's scope) and for rejections (by field;
    # a row with problems in two fields counts under each).
    excluded_by: tuple[tuple[str, int], ...] = ()
    rejected_by: tuple[tuple[str, int], ...] = ()
    unused_columns: tuple[str, ...] = ()

    def reasons(self) -> pl.DataFrame:
        """One row per stage and reason, as the flow diagram shows them."""
        rows = [("read", "rows read", self.rows_read)]
        rows += [("excluded", reason, n) for reason, n in self.excluded_by]
        rows += [("rejected", reason, n) for reason, n in self.rejected_by]
        rows.append(("analysed", "rows scored", self.rows_scored))
        return pl.DataFrame(rows, schema=["stage", "reason", "rows"], orient="row")


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
    lead: str | None = None
    table1: pl.DataFrame | None = None
    not_evaluable: pl.DataFrame | None = None  # definition, measurement missing, sentence
    design: SurveyDesign | None = None
    age_breaks: tuple[int, ...] = ()
    standard: str | None = None
    standard_note: str | None = None

    def overall_estimates(self) -> dict[str, str]:
        """Each definition's overall prevalence as '28.5% (25.1–32.2)', weighted if a design."""
        table = self.prevalence
        if self.survey is not None and self.survey.height:
            table = self.survey.filter(pl.col("group_by") == "overall")
        shown = {}
        for row in table.iter_rows(named=True):
            if row["estimate"] is None:
                continue
            low, high = row["ci_low"], row["ci_high"]
            interval = "" if low is None else f" ({100 * low:.1f}–{100 * high:.1f})"
            shown[row["definition"]] = f"{100 * row['estimate']:.1f}%{interval}"
        return shown

    def write(self, folder: Path) -> list[Path]:
        """Write every table as CSV into a folder; returns the files written."""
        folder.mkdir(parents=True, exist_ok=True)
        flow = pl.DataFrame(
            {
                "rows_read": [self.flow.rows_read],
                "rows_scored": [self.flow.rows_scored],
                "rows_rejected": [self.flow.rows_rejected],
                "rows_excluded": [self.flow.rows_excluded],
            }
        )
        unused = pl.DataFrame(
            {"column": list(self.flow.unused_columns)}, schema={"column": pl.String}
        )
        tables: dict[str, pl.DataFrame | None] = {
            "flow": flow,
            "flow_reasons": self.flow.reasons(),
            "unused_columns": unused,
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
            "table1": self.table1,
            "not_evaluable": self.not_evaluable,
        }
        written = []
        for name, table in tables.items():
            if table is not None:
                path = folder / f"{name}.csv"
                table.write_csv(path)
                written.append(path)
        return written


def _break_sets() -> dict[str, tuple[int, ...]]:
    """Named sets of age-band lower bounds: the groupings of the US 2000 standard (NCHS)."""
    return {
        name: tuple(standard_population("us2000", name)["age_low"].to_list())
        for name in ("nchs_adult", "nchs_11")
    }


AGE_BREAK_SETS = _break_sets()


def resolve_breaks(breaks: Sequence[int] | str) -> tuple[int, ...]:
    """Age-band lower bounds from numbers or a set's name (AGE_BREAK_SETS)."""
    if isinstance(breaks, str):
        if breaks not in AGE_BREAK_SETS:
            raise ValueError(
                f"unknown age-break set {breaks!r}; known: {', '.join(AGE_BREAK_SETS)}"
            )
        return AGE_BREAK_SETS[breaks]
    return tuple(breaks)


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
    age_breaks: Sequence[int] | str = (60, 70, 80),
    reference: str | None = None,
    design: SurveyDesign | None = None,
    standard: str | None = None,
    conditions: Sequence[str] = (),
    lead: str | None = None,
) -> CohortSummary:
    """Compute the summary tables from scored rows (rejected rows are not in `results`)."""
    breaks = resolve_breaks(age_breaks)
    results = results.with_columns(age_band_expr(breaks))
    diagnostic = [d for d in definitions if definition(d).diagnoses]
    evaluable = results.select(
        *(
            (~pl.col(category_column(definition(d))).is_in([INDETERMINATE, NOT_APPLICABLE]))
            .sum()
            .alias(d)
            for d in definitions
        ),
        *(
            (pl.col(category_column(definition(d))) == NOT_APPLICABLE).sum().alias(f"{d}:scope")
            for d in definitions
        ),
    ).collect()
    evaluable_table = pl.DataFrame(
        {
            "definition": list(definitions),
            "scored": [flow.rows_scored] * len(definitions),
            "evaluable": [int(evaluable[d][0]) for d in definitions],
            "outside_definition_scope": [int(evaluable[f"{d}:scope"][0]) for d in definitions],
        }
    ).with_columns(
        indeterminate=pl.col("scored") - pl.col("evaluable") - pl.col("outside_definition_scope")
    )
    missing_table = missing_measurements(results, definitions, evaluable_table)

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
        # A row outside the definition's own scope is not evaluable, as in the evaluable table.
        table = category_prevalence(results, column, exclude=(INDETERMINATE, NOT_APPLICABLE))
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
        not_evaluable=missing_table,
        design=design if design is not None and design.declared else None,
        age_breaks=breaks,
        standard=standard,
    )
    evaluable_ids = [
        row["definition"] for row in evaluable_table.iter_rows(named=True) if row["evaluable"]
    ]
    summary.lead = lead or next(
        (d for d in ("ewgsop2", *diagnostic) if d in diagnostic and d in evaluable_ids), None
    )
    summary.table1 = _table1(results, summary.lead, design)
    if reference is not None:
        summary.accuracy, summary.roc = screening_tables(
            results, sarcopenia_column(definition(reference))
        )
    if conditions:
        summary.secondary = secondary_by_condition(results, diagnosis_columns, conditions)
    evaluable_columns = {d: c for d, c in diagnosis_columns.items() if d in evaluable_ids}
    if design is not None and design.declared:
        summary.survey = weighted_prevalence(results, evaluable_columns, design, by)
    if standard is not None:
        summary.standardised, summary.standard_note = standardised_prevalence(
            results, evaluable_columns, design or SurveyDesign(), standard, breaks
        )
    return summary


def weighted_prevalence(
    results: pl.LazyFrame,
    columns: dict[str, str],
    design: SurveyDesign,
    by: Sequence[str],
) -> pl.DataFrame:
    """Design-based prevalence (`survey_prevalence`) overall and within each grouping."""
    parts = []
    groups = [g for g in by if g in results.collect_schema() or g == "age_band"]
    for definition_id, column in columns.items():
        label = pl.lit(definition_id).alias("definition")
        overall = survey_prevalence(
            results, column, weight=design.weight, strata=design.strata, psu=design.psu
        )
        parts.append(
            overall.select(
                label, pl.lit("overall").alias("group_by"), pl.lit("all").alias("group"), pl.all()
            )
        )
        for group in groups:
            table = survey_prevalence(
                results.with_columns(pl.col(group).cast(pl.String).fill_null(UNKNOWN)),
                column,
                weight=design.weight,
                strata=design.strata,
                psu=design.psu,
                by=group,
            )
            parts.append(
                table.select(
                    label,
                    pl.lit(group).alias("group_by"),
                    pl.col(group).alias("group"),
                    pl.exclude(group),
                )
            )
    return _stack(parts)


def standardised_prevalence(
    results: pl.LazyFrame,
    columns: dict[str, str],
    design: SurveyDesign,
    standard: str,
    breaks: Sequence[int],
) -> tuple[pl.DataFrame, str]:
    """Age-standardised prevalence, the standard cut to the age groups the cohort covers.

    A standard that starts at age 0 cannot be applied to an adult cohort as a whole (its
    childhood groups have no rows): its groups are summed into the report's age bands, starting
    at the standard's group that holds the youngest age in the cohort.
    """
    lower = standard_population(standard)["age_low"].to_list()
    youngest = results.select(pl.col("age").min()).collect().item()
    first = max((a for a in lower if youngest is None or a <= youngest), default=lower[0])
    bounds = [first, *(b for b in breaks if b > first and b in lower)]
    table = standard_population(standard, bounds)
    groups = ", ".join(
        f"{low}–{high - 1}" if high is not None else f"{low}+"
        for low, high in zip(table["age_low"], table["age_high"], strict=True)
    )
    note = (
        f"Directly age-standardised to the {standard} standard population aged {first} and "
        f"over, in the age groups {groups} (the standard's groups summed; Klein & Schoenborn "
        "2001)."
    )
    parts = []
    for definition_id, column in columns.items():
        for by in (None, "sex"):
            frame = (
                results
                if by is None
                else results.with_columns(pl.col("sex").cast(pl.String).fill_null(UNKNOWN))
            )
            part = age_standardised_prevalence(
                frame,
                column,
                age="age",
                standard=standard,
                breaks=bounds,
                by=by,
                weight=design.weight,
                strata=design.strata,
                psu=design.psu,
            )
            group = pl.col("sex") if by else pl.lit("all")
            parts.append(
                part.select(
                    pl.lit(definition_id).alias("definition"),
                    pl.lit(by or "overall").alias("group_by"),
                    group.alias("group"),
                    pl.exclude("sex"),
                )
            )
    return _stack(parts), note


def missing_measurements(
    results: pl.LazyFrame, definitions: Sequence[str], evaluable: pl.DataFrame
) -> pl.DataFrame:
    """For each definition no row could be evaluated under: the components never measured."""
    rows = []
    schema = results.collect_schema()
    for row in evaluable.iter_rows(named=True):
        if row["evaluable"] or not row["scored"]:
            continue
        d = definition(row["definition"])
        missing = []
        for component in d.components:
            column = f"{d.id}_{component.id}"
            if column not in schema:
                continue
            measured = results.select((pl.col(column).cast(pl.String) != "unknown").sum())
            if not measured.collect().item():
                inputs = list(dict.fromkeys(t.threshold.input for t in d.tests_of(component.id)))
                missing.append((component.id.replace("_", " "), inputs))
        if missing:
            parts = [f"{name} ({' or '.join(inputs)})" for name, inputs in missing]
            sentence = (
                f"{d.name} cannot be evaluated: no row has a measurement of {'; '.join(parts)}."
            )
        else:
            sentence = (
                f"{d.name} cannot be evaluated: every row lacks a measurement that could change "
                "its category."
            )
        rows.append(
            {
                "definition": d.id,
                "missing": "; ".join(name for name, _ in missing),
                "inputs": "; ".join(" or ".join(i) for _, i in missing),
                "sentence": sentence,
            }
        )
    schema_out = dict.fromkeys(("definition", "missing", "inputs", "sentence"), pl.String)
    return pl.DataFrame(rows, schema=schema_out, orient="row")


def _table1(results: pl.LazyFrame, lead: str | None, design: SurveyDesign | None) -> pl.DataFrame:
    """Table 1 overall and, with a lead definition, by its sarcopenia status."""
    weight = design.weight if design is not None and design.declared else None
    groups = [Group("Overall", pl.lit(True))]
    compare = None
    if lead is not None:
        column = pl.col(sarcopenia_column(definition(lead)))
        groups += [
            Group("Sarcopenia", column.fill_null(False)),
            Group("No sarcopenia", (~column).fill_null(False)),
            Group("Not evaluable", column.is_null()),
        ]
        compare = (1, 2)
    wanted = {*CONTINUOUS, *CATEGORICAL, *([weight] if weight else [])}
    if lead is not None:
        wanted.add(sarcopenia_column(definition(lead)))
    needed = [c for c in results.collect_schema() if c in wanted]
    return table_one(results.select(needed), groups, compare=compare, weight=weight)


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
