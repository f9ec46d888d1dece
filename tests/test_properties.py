"""Property tests (Hypothesis, bounded): monotonicity, stability under added measurements,
and agreement between the record API and the frame API.

Severity orders follow the category ladders of DESIGN.md and criteria.md §2 / §10:
a worse measurement must never move a subject to a less severe category, and adding a
measurement may establish a higher stage but never undo a decided "no sarcopenia" nor turn
a decided answer into `indeterminate` (criteria.md §8.3; DESIGN.md principles 2-3).
"""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sarcokit

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INDETERMINATE = "indeterminate"

# Severity ladders, least to most severe (DESIGN.md definitions table; criteria.md §2, §10).
RANK: dict[str, dict[str, int]] = {
    "ewgsop2010": {
        "no_sarcopenia": 0,
        "presarcopenia": 1,
        "sarcopenia": 2,
        "severe_sarcopenia": 3,
    },
    "ewgsop2": {
        "no_sarcopenia": 0,
        "probable_sarcopenia": 1,
        "sarcopenia": 2,
        "severe_sarcopenia": 3,
    },
    "awgs2014": {"no_sarcopenia": 0, "sarcopenia": 1},
    "awgs2019": {"no_sarcopenia": 0, "sarcopenia": 1, "severe_sarcopenia": 2},
    "awgs2019_community": {
        "case_finding_negative": 0,
        "no_possible_sarcopenia": 0,
        "possible_sarcopenia": 1,
    },
    "cn2021": {
        "no_sarcopenia": 0,
        "possible_sarcopenia": 1,
        "sarcopenia": 2,
        "severe_sarcopenia": 3,
    },
    "iwgs2011": {"no_sarcopenia": 0, "sarcopenia": 1},
    "fnih2014": {
        "no_sarcopenia": 0,
        "weakness_with_low_lean_mass": 1,
        "weakness_slowness_low_lean_mass": 2,
    },
    "sdoc2020": {"no_sarcopenia": 0, "sarcopenia": 1},
    "sdoc2020_grip_bmi": {"no_sarcopenia": 0, "sarcopenia": 1},
}
DEFINITIONS = list(RANK)

# Components of each definition (DESIGN.md / brief), for the frame comparison.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "ewgsop2010": ("strength", "muscle_quantity", "physical_performance"),
    "ewgsop2": ("strength", "muscle_quantity", "physical_performance"),
    "awgs2014": ("strength", "muscle_quantity", "physical_performance"),
    "awgs2019": ("strength", "muscle_quantity", "physical_performance"),
    "awgs2019_community": ("case_finding", "strength_or_performance"),
    "cn2021": ("strength", "muscle_quantity", "physical_performance"),
    "iwgs2011": ("physical_performance", "muscle_quantity"),
    "fnih2014": ("strength", "muscle_quantity", "physical_performance"),
    "sdoc2020": ("strength", "physical_performance"),
    "sdoc2020_grip_bmi": ("strength", "physical_performance"),
}

# Input columns the generated records use, with their frame types.
SCHEMA: dict[str, Any] = {
    "id": pl.String,
    "sex": pl.String,
    "age": pl.Float64,
    "height_m": pl.Float64,
    "weight_kg": pl.Float64,
    "grip_kg": pl.Float64,
    "gait_speed_m_s": pl.Float64,
    "chair_stand_5x_s": pl.Float64,
    "chair_stand_unable": pl.Boolean,
    "sppb": pl.Int64,
    "tug_s": pl.Float64,
    "walk_400m_completed": pl.Boolean,
    "asm_kg": pl.Float64,
    "asm_method": pl.String,
    "muscle_mass_low": pl.Boolean,
    "calf_cm": pl.Float64,
    "sarc_f_strength": pl.Int64,
    "sarc_f_assistance_walking": pl.Int64,
    "sarc_f_rise_from_chair": pl.Int64,
    "sarc_f_climb_stairs": pl.Int64,
    "sarc_f_falls": pl.Int64,
}


def grid(low: int, high: int, scale: int) -> st.SearchStrategy[float]:
    """Decimal grid values low/scale .. high/scale, which often land exactly on cut-offs."""
    return st.integers(low, high).map(lambda i: round(i / scale, 4))


def maybe(strategy: st.SearchStrategy[Any], present: int) -> st.SearchStrategy[Any]:
    """The strategy's value with probability present/10, else None (not measured)."""
    return st.tuples(st.integers(0, 9), strategy).map(lambda t: t[1] if t[0] < present else None)


GRIP = grid(50, 500, 10)  # 5.0-50.0 kg, covers every grip cut-off
GAIT = grid(20, 160, 100)  # 0.20-1.60 m/s
CHAIR = grid(50, 300, 10)  # 5.0-30.0 s
ASM = grid(100, 300, 10)  # 10.0-30.0 kg
SPPB = st.integers(0, 12)


@st.composite
def records(draw: st.DrawFn, present: int = 6) -> dict[str, Any]:
    """A plausible subject; each measurement is present with probability present/10."""
    record: dict[str, Any] = {
        "sex": draw(st.sampled_from(["male", "female"])),
        "age": draw(maybe(st.integers(60, 95).map(float), present)),
        "height_m": draw(maybe(grid(145, 195, 100), 9)),
        "weight_kg": draw(maybe(grid(80, 220, 2), present)),
        "grip_kg": draw(maybe(GRIP, present)),
        "gait_speed_m_s": draw(maybe(GAIT, present)),
        "chair_stand_5x_s": draw(maybe(CHAIR, present)),
        "chair_stand_unable": draw(maybe(st.booleans(), 2)),
        "sppb": draw(maybe(SPPB, present)),
        "tug_s": draw(maybe(grid(50, 350, 10), present)),
        "walk_400m_completed": draw(maybe(st.booleans(), 2)),
        "asm_kg": draw(maybe(ASM, present)),
        "asm_method": draw(maybe(st.sampled_from(["dxa", "bia"]), present)),
        "muscle_mass_low": draw(maybe(st.booleans(), present)),
        "calf_cm": draw(maybe(grid(250, 450, 10), present)),
    }
    if draw(st.booleans()):
        for item in (
            "sarc_f_strength",
            "sarc_f_assistance_walking",
            "sarc_f_rise_from_chair",
            "sarc_f_climb_stairs",
            "sarc_f_falls",
        ):
            record[item] = draw(st.integers(0, 2))
    if record["chair_stand_unable"] is True:
        record["chair_stand_5x_s"] = None
    return {k: v for k, v in record.items() if v is not None}


def categories(*batch: dict[str, Any]) -> list[dict[str, str]]:
    """Each record's category under every definition (one assess_many call for speed)."""
    out: list[dict[str, str]] = []
    for record, res in zip(batch, sarcokit.assess_many(list(batch)), strict=True):
        result: dict[str, Any] = res.to_dict()
        assert "error" not in result, (record, result.get("error"))
        out.append({d: result["definitions"][d]["category"] for d in DEFINITIONS})
    return out


# ---------------------------------------------------------------------------------------------
# (a) A worse measurement never lowers a category.


WORSENED_FIELDS = (
    "grip_kg",
    "gait_speed_m_s",
    "asm_kg",
    "chair_stand_5x_s",
    "sppb",
    "tug_s",
    "muscle_mass_low",
)
# Two independent draws of a value, the better one for the base record: the pair straddles
# a cut-off often. "Better" is higher for grip, gait, ASM and SPPB, lower for timed tests.
PAIR: dict[str, tuple[st.SearchStrategy[Any], bool]] = {
    "grip_kg": (GRIP, True),
    "gait_speed_m_s": (GAIT, True),
    "asm_kg": (ASM, True),
    "sppb": (SPPB, True),
    "chair_stand_5x_s": (CHAIR, False),
    "tug_s": (grid(50, 350, 10), False),
}


@st.composite
def worsened(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """A record and, for each measurement, a copy with that measurement made worse (lower grip /
    gait / ASM / SPPB, longer chair stand / TUG, muscle mass pre-classified low)."""
    base = draw(records())
    variants: list[tuple[str, dict[str, Any]]] = []
    for field in WORSENED_FIELDS:
        if field == "muscle_mass_low":
            better, worse_value = False, True
        else:
            strategy, higher_is_better = PAIR[field]
            a, b = draw(strategy), draw(strategy)
            if a == b:
                continue
            better, worse_value = (
                (max(a, b), min(a, b)) if higher_is_better else (min(a, b), max(a, b))
            )
        base[field] = better
        variants.append((field, {field: worse_value}))
    base.pop("chair_stand_unable", None)
    return base, [(field, {**base, **change}) for field, change in variants]


@SETTINGS
@given(worsened())
def test_worse_measurement_never_lowers_category(
    case: tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]],
) -> None:
    base, variants = case
    before, *afters = categories(base, *(worse for _, worse in variants))
    for (field, worse), after in zip(variants, afters, strict=True):
        for definition, ladder in RANK.items():
            b, a = before[definition], after[definition]
            assert b in ladder or b == INDETERMINATE, (definition, b)
            assert a in ladder or a == INDETERMINATE, (definition, a)
            if INDETERMINATE in (a, b):
                continue
            assert ladder[a] >= ladder[b], (definition, field, base, worse, b, a)


# ---------------------------------------------------------------------------------------------
# (b) Adding the measurements of a component that was unmeasured never contradicts a decided
# category. Measurements are added component by component: under criteria.md §10.1 a
# component that is normal on some tests can still become low when another of its tests is
# added, so only whole unknown components are filled in.

COMPONENT_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "ewgsop2": {
        "strength": ("grip_kg", "chair_stand_5x_s", "chair_stand_unable"),
        "muscle_quantity": ("asm_kg",),
        "physical_performance": ("gait_speed_m_s", "sppb", "tug_s", "walk_400m_completed"),
    },
    "awgs2019": {
        "strength": ("grip_kg",),
        "muscle_quantity": ("asm_kg",),
        "physical_performance": (
            "gait_speed_m_s",
            "chair_stand_5x_s",
            "chair_stand_unable",
            "sppb",
        ),
    },
    "sdoc2020": {"strength": ("grip_kg",), "physical_performance": ("gait_speed_m_s",)},
    "sdoc2020_grip_bmi": {"strength": ("grip_kg",), "physical_performance": ("gait_speed_m_s",)},
    "awgs2014": {
        "strength": ("grip_kg",),
        "muscle_quantity": ("asm_kg",),
        "physical_performance": ("gait_speed_m_s",),
    },
    "cn2021": {
        "strength": ("grip_kg",),
        "muscle_quantity": ("asm_kg",),
        "physical_performance": (
            "gait_speed_m_s",
            "chair_stand_5x_s",
            "chair_stand_unable",
            "sppb",
        ),
    },
    "iwgs2011": {"muscle_quantity": ("asm_kg",), "physical_performance": ("gait_speed_m_s",)},
    "fnih2014": {
        "strength": ("grip_kg",),
        "muscle_quantity": ("asm_kg",),
        "physical_performance": ("gait_speed_m_s",),
    },
}
# Where a decided no_sarcopenia must survive any added component. (Not ewgsop2010: there,
# normal strength and performance end the case-finding algorithm, but a later low mass
# establishes presarcopenia.)
NO_SARCOPENIA_IS_FINAL = tuple(COMPONENT_FIELDS)


@SETTINGS
@given(records(present=8), st.data())
def test_adding_a_component_never_contradicts_a_decided_category(
    full: dict[str, Any], data: st.DataObject
) -> None:
    drops: dict[str, set[str]] = {}
    partials: list[dict[str, Any]] = []
    for definition, groups in COMPONENT_FIELDS.items():
        dropped = data.draw(
            st.sets(st.sampled_from(sorted(groups)), min_size=1), label=f"drop {definition}"
        )
        removed = {f for component in dropped for f in groups[component]}
        drops[definition] = dropped
        partials.append({k: v for k, v in full.items() if k not in removed})
    after, *befores = categories(full, *partials)
    for (definition, dropped), partial, result in zip(
        drops.items(), partials, befores, strict=True
    ):
        before = result[definition]
        now = after[definition]
        if before == INDETERMINATE:
            continue
        # a decided answer stays decided
        assert now != INDETERMINATE, (definition, dropped, partial, full, before)
        # a decided no_sarcopenia is final
        if before == "no_sarcopenia" and definition in NO_SARCOPENIA_IS_FINAL:
            assert now == "no_sarcopenia", (definition, dropped, partial, full, now)
        # a stage may be raised, never lowered
        assert RANK[definition][now] >= RANK[definition][before], (
            definition,
            dropped,
            partial,
            full,
            before,
            now,
        )


# ---------------------------------------------------------------------------------------------
# (c) assess_many on a cohort equals evaluate() on the same cohort as a Polars frame.


@SETTINGS
@given(st.lists(records(), min_size=1, max_size=12))
def test_assess_many_matches_frame_evaluate(cohort: list[dict[str, Any]]) -> None:
    cohort = [{"id": f"p{i}", **r} for i, r in enumerate(cohort)]
    results = [r.to_dict() for r in sarcokit.assess_many(cohort)]
    frame = pl.DataFrame([{k: r.get(k) for k in SCHEMA} for r in cohort], schema=SCHEMA)
    out = sarcokit.evaluate(frame)
    assert isinstance(out, pl.DataFrame)
    assert out.height == len(cohort)
    assert [r["id"] for r in results] == [r["id"] for r in cohort]
    for result, row in zip(results, out.iter_rows(named=True), strict=True):
        assert "error" not in result, result.get("error")
        assert row["invalid_fields"] is None
        for definition, components in COMPONENTS.items():
            got = result["definitions"][definition]
            assert got["category"] == row[f"{definition}_category"], (definition, result["id"])
            for component in components:
                assert got["components"][component] == row[f"{definition}_{component}"], (
                    definition,
                    component,
                    result["id"],
                )
        assert result["screening"]["sarc_f"]["total"] == row["sarc_f_total"]
        assert result["screening"]["calf"]["low"] == row["calf_low"]
