"""WHO bone category and the published osteosarcopenia variants, from osteosarcopenia.toml."""

from __future__ import annotations

from collections.abc import Sequence

import narwhals as nw

from sarcokit.definitions import (
    INDETERMINATE,
    DefinitionRef,
    category_column,
    resolve,
    sarcopenia_column,
)
from sarcokit.secondary._data import NULL_BOOL, banded_expr, cutoff_expr, reference, where_of

NAME = "osteosarcopenia"


def bone_exprs() -> list[nw.Expr]:
    """bone_category: osteoporosis / osteopenia / normal from bmd_t_score; null when missing."""
    raw = reference(NAME)
    return [banded_expr(raw["bone_category"], where_of(NAME)).alias("bone_category")]


def osteosarcopenia_exprs(definition_ids: Sequence[DefinitionRef]) -> list[nw.Expr]:
    """osteosarcopenia_{variant}_{definition}: three-valued, from the definitions' result columns.

    Definitions that diagnose no sarcopenia, and severe-only variants of definitions with no
    severe category, have no column.
    """
    raw = reference(NAME)
    where = where_of(NAME)
    exprs: list[nw.Expr] = []
    for ref in definition_ids:
        chosen = resolve(ref)
        definition_id = chosen.id
        if not chosen.diagnoses:
            continue
        for variant, spec in raw["variants"].items():
            if "category" in spec:
                required = spec["category"]["value"]
                if required not in chosen.category_ids:
                    continue
                category = nw.col(category_column(chosen))
                muscle = (
                    nw.when(category == INDETERMINATE)
                    .then(NULL_BOOL)
                    .otherwise(category == required)
                )
            else:
                muscle = nw.col(sarcopenia_column(chosen))
            exprs.append(
                (cutoff_expr(spec["bone"], where) & muscle).alias(
                    f"osteosarcopenia_{variant}_{definition_id}"
                )
            )
    return exprs
