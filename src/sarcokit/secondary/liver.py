"""MELD, MELD-Na, MELD 3.0 and MELD-Sarcopenia, compiled from reference/secondary/liver.toml."""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce
from operator import add, mul
from typing import Any

import narwhals as nw

from sarcokit.equations import EXACT, code_expr
from sarcokit.secondary._data import reference, where_of
from sarcokit.thresholds import CriteriaError

NAME = "liver"


def _scores() -> Mapping[str, Any]:
    scores: Mapping[str, Any] = reference(NAME)["scores"]
    return scores


def _round_half_up(value: nw.Expr) -> nw.Expr:
    # Ties go up (the stated rule, liver.toml sarcokit_rounding); rounding at 1e-9 first removes
    # binary representation error, so a decimal tie such as 16.5 is not read as 16.4999...
    return (value.round(EXACT) + 0.5).floor().cast(nw.Int64())


def _on_dialysis(value: nw.Expr, dialysis: Mapping[str, Any]) -> nw.Expr:
    """The value, or the dialysis value when dialysis is true.

    With dialysis unknown the answer is still known when the value already equals the dialysis
    value (creatinine at its cap); otherwise it is null, never read as "no dialysis".
    """
    on = nw.col(dialysis["input"])
    fixed = dialysis["value"]
    return nw.when(on).then(nw.lit(fixed)).when(~on | (value >= fixed)).then(value)


def _variable(spec: Mapping[str, Any]) -> nw.Expr:
    if "score" in spec:
        return score_expr(spec["score"])
    value = nw.col(spec["input"]).cast(nw.Float64())
    if "floor" in spec or "cap" in spec:
        value = value.clip(spec.get("floor"), spec.get("cap"))
    if "dialysis" in spec:
        value = _on_dialysis(value, spec["dialysis"])
    if "subtract_from" in spec:
        value = spec["subtract_from"] - value
    if spec.get("log", False):
        value = value.log()
    return value


def _term(term: Mapping[str, Any], variables: Mapping[str, nw.Expr]) -> nw.Expr:
    factor: nw.Expr
    if "code" in term:
        factor = code_expr(term["code"], term["codes"])
    else:
        factor = reduce(mul, (variables[name] for name in term["of"]))
    return factor * float(term["coefficient"])


def score_expr(name: str) -> nw.Expr:
    """One score of liver.toml as a columnar expression (not aliased); null when an input is."""
    spec = _scores()[name]
    variables = {key: _variable(v) for key, v in spec["variables"].items()}
    total = reduce(add, (_term(t, variables) for t in spec["terms"]))
    if "intercept" in spec:
        total = total + spec["intercept"]["value"]
    if "scale" in spec:
        total = total * spec["scale"]["value"]
    if spec.get("round_half_up", {}).get("value", False):
        total = _round_half_up(total)
    if "maximum" in spec:
        total = total.clip(upper_bound=spec["maximum"]["value"])
    if "only_when" in spec:
        rule = spec["only_when"]
        variable = variables[rule["variable"]]
        total = nw.when(variable > rule["above"]).then(total).otherwise(variable)
    return total


def liver_exprs() -> list[nw.Expr]:
    """meld, meld_na, meld3, meld_sarcopenia and meld_sarcopenia_base (the MELD variant used)."""
    scores = _scores()
    for name, spec in scores.items():
        base = spec.get("base")
        if base is not None and spec["variables"].get(base, {}).get("score") != base:
            raise CriteriaError(f"{where_of(NAME)}: {name} names base {base!r} but never reads it")
    return [
        *(score_expr(name).alias(name) for name in scores),
        *(
            nw.lit(spec["base"]).alias(f"{name}_base")
            for name, spec in scores.items()
            if "base" in spec
        ),
    ]
