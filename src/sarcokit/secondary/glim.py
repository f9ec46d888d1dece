"""GLIM malnutrition (Cederholm 2019), compiled from reference/secondary/glim.toml."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import narwhals as nw

from sarcokit.secondary._data import (
    NULL_BOOL,
    all_of,
    any_of,
    condition_expr,
    cutoff_expr,
    reference,
    stratified,
    where_of,
)
from sarcokit.thresholds import CriteriaError

NAME = "glim"


def _criterion(raw: Mapping[str, Any], where: str) -> nw.Expr:
    """Three-valued: met by any of its tests, or by the test of the stratum that applies."""
    if "tests" in raw:
        return any_of([cutoff_expr(t, where) for t in raw["tests"]])
    return stratified(
        [
            (
                all_of([condition_expr(c, where) for c in stratum["when"]]),
                cutoff_expr(stratum["test"], where) if "test" in stratum else NULL_BOOL,
            )
            for stratum in raw["strata"]
        ]
    )


def glim_exprs() -> list[nw.Expr]:
    """glim_phenotypic_met, glim_etiologic_met, glim_malnutrition (Kleene) and glim_stage."""
    raw = reference(NAME)
    where = where_of(NAME)
    phenotypic = {key: _criterion(c, where) for key, c in raw["phenotypic"].items()}
    if not set(raw["severe"]) <= set(phenotypic):
        raise CriteriaError(f"{where}: [severe] grades a criterion [phenotypic] lacks")
    # A criterion is severe only if it is met at all: this also decides "not severe" for a
    # criterion that is not met even where no severe cut-off exists (Asian BMI).
    severe = any_of([phenotypic[key] & _criterion(c, where) for key, c in raw["severe"].items()])
    phenotypic_met = any_of(list(phenotypic.values()))
    etiologic_met = any_of([_criterion(c, where) for c in raw["etiologic"].values()])
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
