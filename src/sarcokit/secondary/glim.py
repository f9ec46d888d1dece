"""GLIM malnutrition (Cederholm 2019), compiled from reference/secondary/glim.toml."""

from __future__ import annotations

import narwhals as nw

from sarcokit.secondary._data import any_of, criterion_expr, reference, where_of
from sarcokit.thresholds import CriteriaError

NAME = "glim"


def glim_exprs() -> list[nw.Expr]:
    """glim_phenotypic_met, glim_etiologic_met, glim_malnutrition (Kleene) and glim_stage."""
    raw = reference(NAME)
    where = where_of(NAME)
    phenotypic = {key: criterion_expr(c, where) for key, c in raw["phenotypic"].items()}
    if not set(raw["severe"]) <= set(phenotypic):
        raise CriteriaError(f"{where}: [severe] grades a criterion [phenotypic] lacks")
    # A criterion is severe only if it is met at all: this also decides "not severe" for a
    # criterion that is not met even where no severe cut-off exists (Asian BMI).
    severe = any_of(
        [phenotypic[key] & criterion_expr(c, where) for key, c in raw["severe"].items()]
    )
    phenotypic_met = any_of(list(phenotypic.values()))
    etiologic_met = any_of([criterion_expr(c, where) for c in raw["etiologic"].values()])
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
