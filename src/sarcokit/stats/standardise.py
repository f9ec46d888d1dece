"""Direct age standardisation of a prevalence to a cited standard population."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import polars as pl

from sarcokit.stats._inputs import By, Frame, keys, require_numeric
from sarcokit.stats.survey import CELL, CiMethod, design_rows, linearised_estimate

Standard = str | Mapping[int, float]


@dataclass(frozen=True)
class StandardPopulation:
    """Age groups (first age of each; the last is open-ended) and their standard population."""

    name: str
    lower: tuple[int, ...]
    population: tuple[float, ...]

    def regroup(self, breaks: Sequence[int]) -> StandardPopulation:
        """Sum the groups into coarser ones starting at `breaks`; ages below the first drop."""
        bounds = sorted(breaks)
        unknown = [b for b in bounds if b not in self.lower]
        if unknown or len(set(bounds)) != len(bounds) or not bounds:
            raise ValueError(
                f"breaks {list(breaks)} must be distinct lower bounds of the {self.name} "
                f"groups: {list(self.lower)}"
            )
        ends = [*bounds[1:], None]
        population = tuple(
            sum(
                p
                for a, p in zip(self.lower, self.population, strict=True)
                if a >= start and (end is None or a < end)
            )
            for start, end in zip(bounds, ends, strict=True)
        )
        return StandardPopulation(self.name, tuple(bounds), population)


@cache
def _tables() -> dict[str, Any]:
    """The standard population tables, as cited in reference/standard_populations.toml."""
    text = files("sarcokit").joinpath("reference/standard_populations.toml").read_text("utf-8")
    return tomllib.loads(text)


def _standard(standard: Standard, breaks: str | Sequence[int] | None) -> StandardPopulation:
    """A named or user-supplied standard, regrouped to the breaks (a grouping name or bounds)."""
    if isinstance(standard, str):
        tables = _tables()
        if standard not in tables:
            raise ValueError(f"unknown standard {standard!r}; known: {', '.join(tables)}")
        table = tables[standard]
        base = StandardPopulation(standard, tuple(table["lower"]), tuple(table["population"]))
        groupings = table.get("groupings", {})
    else:
        items = sorted(standard.items())
        base = StandardPopulation(
            "user", tuple(a for a, _ in items), tuple(float(p) for _, p in items)
        )
        groupings = {}
    bounds: Sequence[int] | None
    if isinstance(breaks, str):
        if breaks not in groupings:
            known = ", ".join(groupings) or "none"
            raise ValueError(f"unknown grouping {breaks!r} for {base.name}; known: {known}")
        bounds = groupings[breaks]["lower"]
    else:
        bounds = breaks
    result = base if bounds is None else base.regroup(bounds)
    if any(p < 0 for p in result.population) or sum(result.population) <= 0:
        raise ValueError("a standard population must be non-negative with a positive total")
    return result


def standard_population(
    standard: Standard = "us2000", breaks: str | Sequence[int] | None = None
) -> pl.DataFrame:
    """The age groups and weights of a standard population, as standardisation uses them.

    ``standard`` is ``"us2000"`` (Klein & Schoenborn 2001; Census P25-1130), ``"who2000"``
    (Ahmad et al. 2001) or a mapping {first age of group: population}; ``breaks`` regroups it,
    either as first ages (each a bound of the table) or a named grouping (``"nchs_11"``,
    ``"nchs_adult"`` for us2000). Sources are in ``reference/standard_populations.toml``.
    Columns: ``age_low``, ``age_high`` (first age of the next group; null = open-ended),
    ``population``, ``weight`` (share of the total, summing to 1).
    """
    table = _standard(standard, breaks)
    total = sum(table.population)
    return pl.DataFrame(
        {
            "age_low": table.lower,
            "age_high": [*table.lower[1:], None],
            "population": table.population,
            "weight": [p / total for p in table.population],
        },
        schema={
            "age_low": pl.Int64,
            "age_high": pl.Int64,
            "population": pl.Float64,
            "weight": pl.Float64,
        },
    )


def age_standardised_prevalence(
    frame: Frame,
    column: str,
    *,
    age: str,
    standard: Standard = "us2000",
    breaks: str | Sequence[int] | None = None,
    by: By = None,
    weight: str | None = None,
    strata: str | None = None,
    psu: str | None = None,
    level: float = 0.95,
    ci_method: CiMethod = "logit",
) -> pl.DataFrame:
    """Directly age-standardised prevalence of a Boolean column, with linearised SE and CI.

    θ̂ = Σ_g c_g p̂_g, where p̂_g is the (weighted) prevalence among evaluable rows of age group
    g and c_g the standard's weight (`standard_population`); this is direct standardisation
    as Klein & Schoenborn 2001 describe it. Rows with a null outcome or age, or an age below
    the first group, are outside every group. The variance treats the age groups as domains
    of one design and linearises the whole combination, so the groups' covariances are
    included (the variance SUDAAN gives with STDVAR/STDWGT, as in Klein & Schoenborn's
    examples); without a design each row is its own PSU. A ``by`` group missing any age group
    has a null estimate. Columns as `survey_prevalence`.
    """
    table = _standard(standard, breaks)
    lf = frame.lazy()
    require_numeric(lf, [age])
    ages = pl.col(age)
    # Group index = number of first ages at or below the age, minus one.
    group = pl.when(ages >= table.lower[0]).then(
        pl.sum_horizontal([ages >= a for a in table.lower]).cast(pl.Int32) - 1
    )
    rows = design_rows(lf, column, weight, strata, psu).with_columns(group.alias(CELL))
    total = sum(table.population)
    cells = pl.DataFrame(
        {CELL: range(len(table.lower)), "coefficient": [p / total for p in table.population]},
        schema={CELL: pl.Int32, "coefficient": pl.Float64},
    )
    return linearised_estimate(rows, keys(by), cells, level, ci_method)
