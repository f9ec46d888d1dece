"""Contributing factors of secondary sarcopenia: values, and flags where a threshold is cited."""

from __future__ import annotations

import narwhals as nw

from sarcokit.secondary._data import banded_expr, reference, where_of

NAME = "factors"


def factor_exprs() -> list[nw.Expr]:
    """factor_<name>_value for every factor; factor_<name>_flag where a threshold is cited."""
    where = where_of(NAME)
    exprs: list[nw.Expr] = []
    for name, spec in reference(NAME)["factors"].items():
        exprs.append(nw.col(spec["input"]).alias(f"factor_{name}_value"))
        if "bands" not in spec:
            continue
        flag = banded_expr(spec, where)
        if "sex" in spec:
            flag = nw.when(nw.col("sex") == spec["sex"]).then(flag)
        exprs.append(flag.alias(f"factor_{name}_flag"))
    return exprs
