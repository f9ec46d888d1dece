"""Input handling shared by the statistics: frames, column checks, group keys, evaluable rows."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from sarcokit.definitions import INDETERMINATE

Frame = pl.DataFrame | pl.LazyFrame
By = str | Sequence[str] | None

# Category labels that are not an answer: such rows leave the denominator, as nulls do.
NOT_EVALUABLE: tuple[str, ...] = (INDETERMINATE,)


def lazy_column(frame: Frame | pl.Series, column: str | None) -> tuple[pl.LazyFrame, str]:
    """A LazyFrame and the column to analyse; a Series is its own column."""
    if isinstance(frame, pl.Series):
        return frame.to_frame().lazy(), column or frame.name
    if column is None:
        raise ValueError("name the column to analyse (column=...)")
    return frame.lazy(), column


def keys(by: By) -> list[str]:
    """Group-by columns as a list (none for an overall estimate)."""
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def require_columns(lf: pl.LazyFrame, columns: Sequence[str]) -> pl.Schema:
    """The schema, after checking that every named column exists."""
    schema = lf.collect_schema()
    missing = [c for c in columns if c not in schema]
    if missing:
        raise ValueError(f"column(s) not in the frame: {', '.join(missing)}")
    return schema


def require_boolean(lf: pl.LazyFrame, columns: Sequence[str]) -> None:
    """Raise unless every column is Boolean (null = not evaluable)."""
    schema = require_columns(lf, columns)
    wrong = [f"{c} ({schema[c]})" for c in columns if schema[c] != pl.Boolean]
    if wrong:
        raise TypeError(f"expected Boolean column(s), got {', '.join(wrong)}")


def require_numeric(lf: pl.LazyFrame, columns: Sequence[str]) -> None:
    """Raise unless every column is numeric."""
    schema = require_columns(lf, columns)
    wrong = [f"{c} ({schema[c]})" for c in columns if not schema[c].is_numeric()]
    if wrong:
        raise TypeError(f"expected numeric column(s), got {', '.join(wrong)}")


def label(column: str) -> pl.Expr:
    """A category or Boolean column as text labels, so any category type compares alike."""
    return pl.col(column).cast(pl.String)


def evaluable(column: str, exclude: Sequence[str]) -> pl.Expr:
    """True where the column holds an answer: not null and not an excluded label."""
    return label(column).is_not_null() & ~label(column).is_in(list(exclude))


def aggregate(lf: pl.LazyFrame, by: Sequence[str], **aggs: pl.Expr) -> pl.LazyFrame:
    """Aggregates per group (sorted, a null group last), or once overall when `by` is empty."""
    if not by:
        return lf.select(**aggs)
    return lf.group_by(by).agg(**aggs).sort(by, nulls_last=True)
