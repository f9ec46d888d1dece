"""Derived values: BMI, ASMI, ALM/BMI, grip/BMI, the sarcopenia index and the muscle equations."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import narwhals as nw

from sarcokit.fields import input_columns

# Ratios are computed in binary floating point; rounding at 1e-9 removes representation error
# (14.592 / 1.6**2 is 5.699999999999999 in IEEE-754, exactly 5.7 in decimal). For inputs given
# to three decimals or fewer a true ratio cannot lie within 1e-9 of a cut-off without equalling
# it, so this restores the decimal answer and cannot change any other.
EXACT = 9


@dataclass(frozen=True)
class Term:
    """coefficient × (product of inputs − centre) ÷ per, or coefficient × code(input)."""

    coefficient: float
    inputs: tuple[str, ...] = ()
    centre: float = 0.0
    per: str | None = None
    code: str | None = None
    codes: Mapping[str, float] | None = None


@dataclass(frozen=True)
class LinearModel:
    """An intercept plus terms: the shape of every prediction equation sarcokit ships."""

    intercept: float
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Equation:
    """A cited prediction equation."""

    id: str
    title: str
    citation: str
    note: str
    unit: str
    model: LinearModel


def parse_model(raw: Mapping[str, Any]) -> LinearModel:
    """Read an intercept and a list of terms."""
    terms = tuple(
        Term(
            coefficient=float(t["coefficient"]),
            inputs=tuple(t.get("inputs", ())),
            centre=float(t.get("centre", 0.0)),
            per=t.get("per"),
            code=t.get("code"),
            codes={k: float(v) for k, v in t["codes"].items()} if "codes" in t else None,
        )
        for t in raw["terms"]
    )
    return LinearModel(float(raw["intercept"]), terms)


def input_expr(name: str) -> nw.Expr:
    """A field in the unit an equation asks for (height_cm from the canonical height_m)."""
    spec, alternative_name = input_columns()[name]
    alternative = spec.alternative(alternative_name)
    canonical = nw.col(spec.name)
    return canonical if alternative is None else alternative.from_canonical(canonical)


def code_expr(
    name: str, codes: Mapping[str, float], dtype: nw.dtypes.DType | None = None
) -> nw.Expr:
    """A categorical field as the number the equation codes it with (of `dtype` if given,
    else Float64); null when unknown."""
    column = nw.col(name)

    def lit(value: float | None) -> nw.Expr:
        return nw.lit(value) if dtype is None else nw.lit(value, dtype=dtype)

    items = list(codes.items())
    first_key, first_value = items[0]
    chain = nw.when(column == first_key).then(lit(first_value))
    for key, value in items[1:]:
        chain = chain.when(column == key).then(lit(value))
    return chain.otherwise(nw.lit(None, dtype=dtype or nw.Float64()))


def model_expr(model: LinearModel) -> nw.Expr:
    """The equation as a columnar expression; null when any input is missing."""
    total: nw.Expr = nw.lit(model.intercept)
    for term in model.terms:
        if term.code is not None and term.codes is not None:
            part = code_expr(term.code, term.codes)
        else:
            part = input_expr(term.inputs[0])
            for name in term.inputs[1:]:
                part = part * input_expr(name)
            if term.centre:  # x - 0.0 is x, bit for bit: one operation a row fewer
                part = part - term.centre
            if term.per is not None:
                part = part / input_expr(term.per)
        total = total + term.coefficient * part
    return total


@cache
def equations() -> dict[str, Equation]:
    """The prediction equations in reference/equations.toml."""
    text = files("sarcokit").joinpath("reference/equations.toml").read_text("utf-8")
    raw = tomllib.loads(text)["equations"]
    return {
        key: Equation(key, e["title"], e["citation"], e["note"], e["unit"], parse_model(e))
        for key, e in raw.items()
    }


def _ratio(numerator: nw.Expr, denominator: nw.Expr) -> nw.Expr:
    return (numerator / denominator).round(EXACT)


def _height_squared() -> nw.Expr:
    return nw.col("height_m") * nw.col("height_m")


# Report precision of each derived value (DESIGN principle 5: indices 2 dp, ratios 3 dp).
REPORT_DECIMALS: dict[str, int] = {
    "bmi_kg_m2": 2,
    "asmi_kg_m2": 2,
    "alm_bmi": 3,
    "grip_bmi": 3,
    "gait_speed_m_s": 2,
    "sarcopenia_index": 2,
    "lee2000_skeletal_muscle_kg": 2,
    "janssen2000_skeletal_muscle_kg": 2,
    "janssen2000_smi_kg_m2": 2,
    "wen2011_asm_kg": 2,
    "wen2011_asmi_kg_m2": 2,
}


def body_exprs() -> list[nw.Expr]:
    """Values that need only the record itself: BMI, the sarcopenia index, the equations."""
    eq = equations()
    return [
        _ratio(nw.col("weight_kg"), _height_squared()).alias("bmi_kg_m2"),
        _ratio(nw.col("creatinine_mg_dl") * 100, nw.col("cystatin_c_mg_l")).alias(
            "sarcopenia_index"
        ),
        *(model_expr(e.model).alias(key) for key, e in eq.items()),
    ]


def estimate_asm_exprs(equation: str) -> list[nw.Expr]:
    """Use an equation's ASM where none was measured, and mark the rows that did."""
    estimated = nw.col("asm_kg").is_null() & ~nw.col(equation).is_null()
    return [
        nw.coalesce(nw.col("asm_kg"), nw.col(equation)).alias("asm_kg"),
        nw.when(estimated)
        .then(nw.lit("equation"))
        .otherwise(nw.col("asm_method"))
        .alias("asm_method"),
        estimated.alias("asm_estimated"),
    ]


def muscle_exprs() -> list[nw.Expr]:
    """Values that need BMI or the final ASM: ASMI, ALM/BMI, grip/BMI, SMI."""
    return [
        _ratio(nw.col("asm_kg"), _height_squared()).alias("asmi_kg_m2"),
        _ratio(nw.col("asm_kg"), nw.col("bmi_kg_m2")).alias("alm_bmi"),
        _ratio(nw.col("grip_kg"), nw.col("bmi_kg_m2")).alias("grip_bmi"),
        _ratio(nw.col("janssen2000_skeletal_muscle_kg"), _height_squared()).alias(
            "janssen2000_smi_kg_m2"
        ),
        _ratio(nw.col("wen2011_asm_kg"), _height_squared()).alias("wen2011_asmi_kg_m2"),
    ]


DERIVED: Sequence[str] = tuple(REPORT_DECIMALS)

# Units of derived values, for reasons (ratios such as ALM/BMI are shown without one).
UNITS: dict[str, str] = {
    "bmi_kg_m2": "kg/m²",
    "asmi_kg_m2": "kg/m²",
    "janssen2000_smi_kg_m2": "kg/m²",
    "wen2011_asmi_kg_m2": "kg/m²",
    "lee2000_skeletal_muscle_kg": "kg",
    "janssen2000_skeletal_muscle_kg": "kg",
    "wen2011_asm_kg": "kg",
}
