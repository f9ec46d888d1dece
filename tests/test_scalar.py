"""The one-record evaluator (sarcokit.scalar) against the columnar engine it must equal.

The expected values are the Polars engine's: both paths run the same compiled expressions, so
for any record, of any field set, every result column, its type and every Result must agree.
Records are generated from the field reference (every input field, its unit alternatives and
both sides of its plausible range) and from the criteria files (every cut-off value exactly,
and its neighbouring floats), with values missing at random.
"""

from __future__ import annotations

import json
import math
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sarcokit import api, scalar
from sarcokit.definitions import definitions
from sarcokit.engine import ASM_EQUATIONS, evaluate
from sarcokit.fields import CONDITIONS, InputError, input_columns, parse_record

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _cutoffs() -> dict[str, list[float]]:
    """Every cut-off of every shipped definition, by the input field it is compared with."""
    found: dict[str, set[float]] = {}
    for definition in definitions(None):
        for test in definition.tests:
            for variant in test.threshold.variants:
                found.setdefault(test.threshold.input, set()).add(float(variant.value))
    return {name: sorted(values) for name, values in found.items()}


CUTOFFS = _cutoffs()


def _number(name: str, spec: Any, low: float, high: float) -> st.SearchStrategy[float]:
    """Plausible values, cut-offs exactly and one float either side, the range's edges, and
    now and then a value just outside the range (a rejected row)."""
    edges = [low, high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf)]
    cutoffs = [v for c in CUTOFFS.get(name, []) for v in (c, math.nextafter(c, 0), c * 1.0001)]
    within = [v for v in cutoffs if low <= v <= high]
    choices = [
        st.floats(low, high, allow_nan=False),
        st.integers(math.ceil(low), int(high)).map(float),
        st.sampled_from(edges),
    ]
    if within:
        choices.insert(0, st.sampled_from(within))
    return st.one_of(*choices)


def _value(name: str) -> st.SearchStrategy[Any]:
    spec, alternative = input_columns()[name]
    if spec.kind == "boolean":
        return st.booleans()
    if spec.kind == "category":
        return st.sampled_from(list(spec.values))
    if spec.kind == "text":
        return st.text(min_size=1, max_size=5)
    low = spec.min if spec.min is not None else -1000.0
    high = spec.max if spec.max is not None else 1000.0
    if alternative is not None:
        converted = spec.alternative(alternative)
        assert converted is not None
        scale = converted.divide_by or 1 / converted.factor
        low, high = low * scale, high * scale
    if spec.kind == "integer":
        return st.integers(int(low) - 1, int(high) + 1)
    return _number(name, spec, float(low), float(high))


COMMON = [
    name
    for name, (spec, _) in input_columns().items()
    if name != "id" and spec.group != "secondary"
]
SECONDARY = [name for name, (spec, _) in input_columns().items() if spec.group == "secondary"]


@st.composite
def records(draw: st.DrawFn, secondary: bool) -> dict[str, Any]:
    """A record with each field present at random (secondary fields only when asked)."""
    present = draw(st.integers(2, 9))
    names = COMMON + (SECONDARY if secondary else [])
    record: dict[str, Any] = {}
    for name in names:
        # Unit alternatives are rarer: given with the canonical field they are a conflict.
        odds = present if input_columns()[name][1] is None else 1
        if draw(st.integers(0, 9)) < odds:
            record[name] = draw(_value(name))
    if draw(st.booleans()):
        record["id"] = draw(st.text(min_size=1, max_size=4))
    return record


def _parsed(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for record in batch:
        try:
            row = parse_record(record)
        except InputError:
            continue
        row.pop(CONDITIONS, None)
        rows.append(row)
    return rows


def _same(left: Any, right: Any) -> bool:
    """Equal values of the same type, NaN equal to NaN."""
    if isinstance(left, float) and isinstance(right, float) and left != left:
        return right != right
    return type(left) is type(right) and left == right


@SETTINGS
@given(
    st.lists(records(secondary=False), min_size=1, max_size=6),
    st.sampled_from([None, *ASM_EQUATIONS]),
    st.booleans(),
)
def test_rows_equal_the_columnar_engine(
    batch: list[dict[str, Any]], estimate_asm: Any, secondary: bool
) -> None:
    if secondary:
        batch = [{**r, **{n: v for n, v in batch[0].items() if n in SECONDARY}} for r in batch]
    parsed = _parsed(batch)
    schema = api._frame_schema(parsed)
    frame = pl.DataFrame(parsed, schema=schema, orient="row") if parsed else None
    if frame is None:
        return
    ids = [d.id for d in definitions(None)]
    expected = evaluate(frame, ids, estimate_asm=estimate_asm, explain=True)
    got = scalar.evaluate_rows(parsed, schema, ids, estimate_asm=estimate_asm, explain=True)
    for want, have in zip(expected.iter_rows(named=True), got, strict=True):
        assert list(have) == list(want)
        wrong = {k: (want[k], have[k]) for k in want if not _same(want[k], have[k])}
        assert not wrong


@SETTINGS
@given(st.lists(records(secondary=True), min_size=1, max_size=4), st.sampled_from(["en", "zh"]))
def test_results_equal_the_columnar_engine(batch: list[dict[str, Any]], lang: Any) -> None:
    scalar_results = [r.to_dict() for r in api.assess_many(batch, lang=lang)]
    with mock.patch.object(api, "SCALAR_MAX_ROWS", 0):
        columnar_results = [r.to_dict() for r in api.assess_many(batch, lang=lang)]
    assert json.dumps(scalar_results, sort_keys=True, default=str) == json.dumps(
        columnar_results, sort_keys=True, default=str
    )


def test_on_a_cutoff_exactly() -> None:
    """AWGS 2019's grip cut-off for women is 18 kg, low when < 18 (criteria.md): 18.0 is
    normal and the float below it is low, on both paths."""
    record = {"sex": "female", "age": 70.0}
    for grip, state in ((18.0, "normal"), (math.nextafter(18.0, 0), "low")):
        parsed = [parse_record({**record, "grip_kg": grip})]
        schema = api._frame_schema(parsed)
        (row,) = scalar.evaluate_rows(parsed, schema, ["awgs2019"], explain=True)
        assert row["awgs2019_strength"] == state


def test_every_definition_compiles_to_the_scalar_path() -> None:
    """No shipped definition or option falls back to the columnar engine."""
    schema = api._frame_schema([{name: None for name in input_columns()}])
    options: list[Any] = [None, *ASM_EQUATIONS]
    for estimate_asm in options:
        for definition in definitions(None):
            scalar.evaluate_rows([{}], schema, [definition.id], estimate_asm=estimate_asm)


def test_problem_flags_spell_the_text_of_the_columnar_text_column() -> None:
    """Polars renders `invalid_fields` from one flag per check at the end; DuckDB still builds
    the text in the query. Rows with problems among the first checks, the last, both, and none
    must read the same on both (and in the scalar path)."""
    import duckdb

    # Every input column but one (the DuckDB path needs at least one absent column to add).
    schema = {name: dtype for name, dtype in api._schema().items() if name != "race"}
    valid = {"sex": "female", "age": 70.0, "height_m": 1.6, "grip_kg": 20.0}
    rows = [
        valid,
        {**valid, "age": 5.0, "grip_kg": 500.0},  # early checks
        {**valid, "crp_mg_l": 5.0, "crp_mg_dl": 0.5},  # a conflict, checked late
        {**valid, "age": 500.0, "weight_kg": 60.0, "weight_lb": 132.0, "crp_mg_l": 5.0},
        {**valid, "age": 500.0, "crp_mg_l": 5.0, "crp_mg_dl": 0.5},  # both
    ]
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    polars = evaluate(frame)["invalid_fields"].to_list()
    relation = duckdb.from_arrow(frame.to_arrow())
    text = evaluate(relation).pl()["invalid_fields"].to_list()
    assert polars == text
    assert polars[0] is None and all(polars[1:])
    assert polars[2] == "crp_mg_l/crp_mg_dl" and polars[4] == "age crp_mg_l/crp_mg_dl"
    parsed = [{k: v for k, v in row.items() if v is not None} for row in rows]
    scalar_rows = scalar.evaluate_rows(parsed, schema, None)
    assert [row["invalid_fields"] for row in scalar_rows] == text


# Values with a 5 in the tenth decimal: rounding them to 9 decimals is a tie whose answer
# depends on the method (Python's round(x, 9) rounds the decimal value; Polars scales, rounds
# half to even and scales back), so the scalar path must round exactly as Polars does.
TIES = [0.9891951495, 2.8910126185, 1.1254409895, 0.9391435765, 2.3734018445]


def test_rounding_ties_as_polars() -> None:
    expected = pl.Series(TIES).round(9).to_list()
    assert [scalar._round(value, 9) for value in TIES] == expected
    assert [round(value, 9) for value in TIES] != expected  # the trap is real


def test_unit_conversion_on_a_rounding_tie() -> None:
    """height_cm → height_m is rounded at 9 decimals; on a tie both paths agree."""
    records = [{"sex": "male", "age": 70.0, "height_cm": value * 100} for value in TIES]
    parsed = _parsed(records)
    schema = api._frame_schema(parsed)
    frame = pl.DataFrame(parsed, schema=schema, orient="row")
    expected = evaluate(frame, ["awgs2019"], explain=True)["height_m"].to_list()
    rows = scalar.evaluate_rows(parsed, schema, ["awgs2019"], explain=True)
    assert [row["height_m"] for row in rows] == expected


def test_measured_bodies_give_the_columnar_engines_bits() -> None:
    # Heights to the millimetre: the equations read height in cm as height_m / 0.01, which
    # Polars computes as height_m * 100.0, so the scalar path must too (true division differed
    # in the last bit of the Wen 2011 ASM estimate on about one row in twenty).
    rng = np.random.default_rng(17)
    batch = [
        {
            "sex": str(rng.choice(["male", "female"])),
            "age": int(rng.integers(60, 95)),
            "height_m": round(float(rng.uniform(1.40, 1.90)), 3),
            "weight_kg": round(float(rng.uniform(40, 100)), 1),
        }
        for _ in range(64)
    ]
    parsed = _parsed(batch)
    schema = api._frame_schema(parsed)
    ids = [d.id for d in definitions(None)]
    expected = evaluate(pl.DataFrame(parsed, schema=schema, orient="row"), ids, explain=True)
    got = scalar.evaluate_rows(parsed, schema, ids, explain=True)
    for want, have in zip(expected.iter_rows(named=True), got, strict=True):
        assert {k: (want[k], have[k]) for k in want if not _same(want[k], have[k])} == {}
