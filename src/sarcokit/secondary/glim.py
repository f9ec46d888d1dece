"""GLIM malnutrition (Cederholm 2019), compiled from reference/secondary/glim.toml."""

from __future__ import annotations

from collections.abc import Callable

import narwhals as nw

from sarcokit.secondary._data import any_of, criterion_expr, reference, where_of
from sarcokit.thresholds import CriteriaError

NAME = "glim"


def _criteria() -> dict[str, nw.Expr]:
    """Each criterion's three-valued flag, by internal column name."""
    raw = reference(NAME)
    where = where_of(NAME)
    if not set(raw["severe"]) <= set(raw["phenotypic"]):
        raise CriteriaError(f"{where}: [severe] grades a criterion [phenotypic] lacks")
    return {
        **{
            f"__glim_phenotypic_{k}": criterion_expr(c, where) for k, c in raw["phenotypic"].items()
        },
        **{f"__glim_severe_{k}": criterion_expr(c, where) for k, c in raw["severe"].items()},
        **{f"__glim_etiologic_{k}": criterion_expr(c, where) for k, c in raw["etiologic"].items()},
    }


def _results(criterion: Callable[[str], nw.Expr]) -> list[nw.Expr]:
    """The public columns from the criteria, each read through `criterion(name)`."""
    raw = reference(NAME)
    phenotypic = {key: criterion(f"__glim_phenotypic_{key}") for key in raw["phenotypic"]}
    # A criterion is severe only if it is met at all: this also decides "not severe" for a
    # criterion that is not met even where no severe cut-off exists (Asian BMI).
    severe = any_of([phenotypic[key] & criterion(f"__glim_severe_{key}") for key in raw["severe"]])
    phenotypic_met = any_of(list(phenotypic.values()))
    etiologic_met = any_of([criterion(f"__glim_etiologic_{key}") for key in raw["etiologic"]])
    malnutrition = phenotypic_met & etiologic_met
    stages = raw["stages"]
    stage = (
        nw.when(malnutrition & severe)
        .then(nw.lit(stages["severe"]["value"]))
        .when(malnutrition & ~severe)
        .then(nw.lit(stages["moderate"]["value"]))
        .otherwise(nw.lit(None, dtype=nw.Int64()))
    )
    return [
        phenotypic_met.alias("glim_phenotypic_met"),
        etiologic_met.alias("glim_etiologic_met"),
        malnutrition.alias("glim_malnutrition"),
        stage.alias("glim_stage"),
    ]


def glim_exprs() -> list[nw.Expr]:
    """glim_phenotypic_met, glim_etiologic_met, glim_malnutrition (Kleene) and glim_stage."""
    criteria = _criteria()
    return _results(criteria.__getitem__)


def glim_stages() -> list[list[nw.Expr]]:
    """The same as two stages: internal criterion columns (`__glim_…`), then the results.

    Inlined, each criterion appears up to four times in `glim_stage`; on a one-row frame the
    cost is per expression node, so naming each once is several milliseconds cheaper, and a
    criterion whose inputs are all absent becomes a constant the engine folds.
    """
    return [
        [expr.alias(name) for name, expr in _criteria().items()],
        _results(nw.col),
    ]
