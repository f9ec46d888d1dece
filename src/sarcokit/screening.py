"""Case-finding scores: SARC-F, calf circumference, SARC-CalF, Ishii, MSRA-7 and MSRA-5."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import narwhals as nw

from sarcokit.equations import LinearModel, code_expr, model_expr, parse_model
from sarcokit.thresholds import Threshold, parse_threshold, threshold_expr


@dataclass(frozen=True)
class Instrument:
    """A screening instrument: its citation and its positive (or at-risk) cut-off."""

    id: str
    title: str
    citation: str
    note: str
    test: Threshold
    provisional: bool
    raw: Mapping[str, Any]


@cache
def instruments() -> dict[str, Instrument]:
    """The instruments in reference/screening.toml."""
    text = files("sarcokit").joinpath("reference/screening.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    return {
        key: Instrument(
            id=key,
            title=entry["title"],
            citation=entry["citation"],
            note=entry["note"],
            test=parse_threshold(key, entry["test"], "reference/screening.toml"),
            provisional=bool(entry.get("provisional", False)),
            raw=entry,
        )
        for key, entry in raw.items()
    }


# Output column of each instrument's flag, as the result contract names it.
FLAG_COLUMNS = {
    "sarc_f": "sarc_f_positive",
    "calf": "calf_low",
    "sarc_calf": "sarc_calf_positive",
    "ishii": "ishii_positive",
    "msra7": "msra7_at_risk",
    "msra5": "msra5_at_risk",
}

# Output column of each instrument's score.
SCORE_COLUMNS = {
    "sarc_f": "sarc_f_total",
    "sarc_calf": "sarc_calf_total",
    "ishii": "ishii_score",
    "msra7": "msra7_total",
    "msra5": "msra5_total",
}


# Scores that are whole numbers of points (the Ishii score is not).
INTEGER_SCORES = frozenset({"sarc_f_total", "sarc_calf_total", "msra7_total", "msra5_total"})


def _sum(parts: list[nw.Expr]) -> nw.Expr:
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _msra_points(entry: Mapping[str, Any]) -> nw.Expr:
    points = entry["points"]
    age = nw.col("age")
    parts = [
        nw.when(age < entry["age_below"])
        .then(nw.lit(points["age_below"]))
        .when(age >= entry["age_below"])
        .then(nw.lit(points["age_at_or_above"]))
        .otherwise(nw.lit(None, dtype=nw.Int64()))
    ]
    for item, table in points.items():
        if not isinstance(table, Mapping):
            continue
        if set(table) == {"true", "false"}:
            column = nw.col(item)
            parts.append(
                nw.when(column)
                .then(nw.lit(table["true"]))
                .when(~column)
                .then(nw.lit(table["false"]))
                .otherwise(nw.lit(None, dtype=nw.Int64()))
            )
        else:
            parts.append(code_expr(item, table).cast(nw.Int64()))
    return _sum(parts)


def _sex_specific(models: Mapping[str, LinearModel]) -> nw.Expr:
    sex = nw.col("sex")
    return (
        nw.when(sex == "male")
        .then(model_expr(models["male"]))
        .when(sex == "female")
        .then(model_expr(models["female"]))
        .otherwise(nw.lit(None, dtype=nw.Float64()))
    )


def sarc_f_items() -> tuple[str, ...]:
    """The SARC-F item fields, in questionnaire order."""
    return tuple(instruments()["sarc_f"].raw["items"])


def score_stages() -> list[list[nw.Expr]]:
    """Screening expressions in dependency order; each stage may use the columns of the last."""
    inst = instruments()
    items = [nw.col(item) for item in sarc_f_items()]
    ishii_models = {sex: parse_model(m) for sex, m in inst["ishii"].raw["equation"].items()}
    calf_points = inst["sarc_calf"].raw["calf_points"]
    calf_low = nw.col("calf_low")
    first = [
        _sum(items).alias("sarc_f_total"),
        threshold_expr(inst["calf"].test).alias("calf_low"),
        _sex_specific(ishii_models).alias("ishii_score"),
        _msra_points(inst["msra7"].raw).alias("msra7_total"),
        _msra_points(inst["msra5"].raw).alias("msra5_total"),
    ]
    calf_part = (
        nw.when(calf_low)
        .then(nw.lit(calf_points))
        .when(~calf_low)
        .then(nw.lit(0))
        .otherwise(nw.lit(None, dtype=nw.Int64()))
    )
    second = [(nw.col("sarc_f_total") + calf_part).alias("sarc_calf_total")]
    third = [
        threshold_expr(inst[key].test).alias(column)
        for key, column in FLAG_COLUMNS.items()
        if key != "calf"
    ]
    return [first, second, third]
