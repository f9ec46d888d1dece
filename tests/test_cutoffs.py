"""Every cut-off of every definition: just below, exactly at and just above, per sex.

Expected states come from the source papers as summarised in
/work/shared/reference/criteria.md (§1-§2, §7, §10), never from the criteria data files:
these tests exist to catch a wrong data file. `<` is strict, `<=` includes the cut-off.

ASMI boundaries are built from asm_kg / height_m² with decimal-exact products, so that the
true ratio sits exactly on the cut-off (criteria.md §8.4: compare unrounded, decimal-exact).
"""

from __future__ import annotations

import itertools
from typing import Any

import narwhals as nw
import polars as pl
import pytest

import sarcokit
from sarcokit.thresholds import agreed

M = "male"
F = "female"


def component_state(record: dict[str, Any], definition: str, component: str) -> str:
    """The state of one component of one definition, through the public result contract."""
    result: dict[str, Any] = sarcokit.assess(record, definitions=[definition]).to_dict()
    assert "error" not in result, result.get("error")
    state: str = result["definitions"][definition]["components"][component]
    return state


def _row(
    definition: str,
    component: str,
    record: dict[str, Any],
    expected: str,
    name: str,
) -> Any:
    return pytest.param(definition, component, record, expected, id=f"{definition}-{name}")


# ---------------------------------------------------------------------------------------------
# EWGSOP 2010 (Cruz-Jentoft 2010, Age Ageing 39:412; criteria.md §2.1)

EWGSOP2010 = [
    # grip <30 kg men (Lauretani 2003 as tabulated by EWGSOP 2010) [criteria.md §2.1]
    _row("ewgsop2010", "strength", {"sex": M, "grip_kg": 29.9}, "low", "grip-m-29.9"),
    _row("ewgsop2010", "strength", {"sex": M, "grip_kg": 30.0}, "normal", "grip-m-30.0"),
    _row("ewgsop2010", "strength", {"sex": M, "grip_kg": 30.1}, "normal", "grip-m-30.1"),
    # grip <20 kg women [criteria.md §2.1]
    _row("ewgsop2010", "strength", {"sex": F, "grip_kg": 19.9}, "low", "grip-f-19.9"),
    _row("ewgsop2010", "strength", {"sex": F, "grip_kg": 20.0}, "normal", "grip-f-20.0"),
    _row("ewgsop2010", "strength", {"sex": F, "grip_kg": 20.1}, "normal", "grip-f-20.1"),
    # muscle mass is pre-classified (the paper gives no single cut-off) [criteria.md §2.1]
    _row("ewgsop2010", "muscle_quantity", {"sex": M, "muscle_mass_low": True}, "low", "mass-t"),
    _row("ewgsop2010", "muscle_quantity", {"sex": M, "muscle_mass_low": False}, "normal", "mass-f"),
    # gait <0.8 m/s as printed in the cut-off table (disputed boundary; §2.1, §10.6)
    _row("ewgsop2010", "physical_performance", {"sex": M, "gait_speed_m_s": 0.79}, "low", "g.79"),
    _row("ewgsop2010", "physical_performance", {"sex": M, "gait_speed_m_s": 0.8}, "normal", "g.8"),
    _row(
        "ewgsop2010", "physical_performance", {"sex": F, "gait_speed_m_s": 0.81}, "normal", "g.81"
    ),
    # SPPB <=8 [criteria.md §1, §2.1]
    _row("ewgsop2010", "physical_performance", {"sex": M, "sppb": 7}, "low", "sppb-7"),
    _row("ewgsop2010", "physical_performance", {"sex": M, "sppb": 8}, "low", "sppb-8"),
    _row("ewgsop2010", "physical_performance", {"sex": F, "sppb": 9}, "normal", "sppb-9"),
]

# ---------------------------------------------------------------------------------------------
# EWGSOP2 (Cruz-Jentoft 2019, Age Ageing 48:16, Table 3; criteria.md §2.2)

EWGSOP2 = [
    # grip <27 kg men [EWGSOP2 Table 3]
    _row("ewgsop2", "strength", {"sex": M, "grip_kg": 26.9}, "low", "grip-m-26.9"),
    _row("ewgsop2", "strength", {"sex": M, "grip_kg": 27.0}, "normal", "grip-m-27.0"),
    _row("ewgsop2", "strength", {"sex": M, "grip_kg": 27.1}, "normal", "grip-m-27.1"),
    # grip <16 kg women [EWGSOP2 Table 3]
    _row("ewgsop2", "strength", {"sex": F, "grip_kg": 15.9}, "low", "grip-f-15.9"),
    _row("ewgsop2", "strength", {"sex": F, "grip_kg": 16.0}, "normal", "grip-f-16.0"),
    _row("ewgsop2", "strength", {"sex": F, "grip_kg": 16.1}, "normal", "grip-f-16.1"),
    # chair stand >15 s for 5 rises, both sexes, a STRENGTH test [EWGSOP2 Table 3]
    _row("ewgsop2", "strength", {"sex": M, "chair_stand_5x_s": 14.9}, "normal", "chair-14.9"),
    _row("ewgsop2", "strength", {"sex": F, "chair_stand_5x_s": 15.0}, "normal", "chair-15.0"),
    _row("ewgsop2", "strength", {"sex": M, "chair_stand_5x_s": 15.1}, "low", "chair-15.1"),
    # inability to rise is a low result, never missing [criteria.md §10.7]
    _row("ewgsop2", "strength", {"sex": F, "chair_stand_unable": True}, "low", "chair-unable"),
    # ASM <20 kg men (no height: ASMI not computable) [EWGSOP2 Table 3]
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": M, "asm_kg": 19.9, "asm_method": "dxa"},
        "low",
        "asm-m-19.9",
    ),
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": M, "asm_kg": 20.0, "asm_method": "dxa"},
        "normal",
        "asm-m-20.0",
    ),
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": M, "asm_kg": 20.1, "asm_method": "bia"},
        "normal",
        "asm-m-20.1",
    ),
    # ASM <15 kg women [EWGSOP2 Table 3]
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": F, "asm_kg": 14.9, "asm_method": "dxa"},
        "low",
        "asm-f-14.9",
    ),
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": F, "asm_kg": 15.0, "asm_method": "dxa"},
        "normal",
        "asm-f-15.0",
    ),
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": F, "asm_kg": 15.1, "asm_method": "bia"},
        "normal",
        "asm-f-15.1",
    ),
    # ASMI <7.0 kg/m² men, height 1.8 m (1.8² = 3.24; ASM stays >=20 kg) [EWGSOP2 Table 3]
    # 6.99 × 3.24 = 22.6476; 7.0 × 3.24 = 22.68; 7.01 × 3.24 = 22.7124
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": M, "height_m": 1.8, "asm_kg": 22.6476, "asm_method": "dxa"},
        "low",
        "asmi-m-6.99",
    ),
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": M, "height_m": 1.8, "asm_kg": 22.68, "asm_method": "dxa"},
        "normal",
        "asmi-m-7.0",
    ),
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": M, "height_m": 1.8, "asm_kg": 22.7124, "asm_method": "bia"},
        "normal",
        "asmi-m-7.01",
    ),
    # ASMI <5.5 kg/m² women, height 1.7 m (1.7² = 2.89; ASM stays >=15 kg) [EWGSOP2 Table 3]
    # 5.49 × 2.89 = 15.8661; 5.5 × 2.89 = 15.895; 5.51 × 2.89 = 15.9239
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": F, "height_m": 1.7, "asm_kg": 15.8661, "asm_method": "bia"},
        "low",
        "asmi-f-5.49",
    ),
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": F, "height_m": 1.7, "asm_kg": 15.895, "asm_method": "bia"},
        "normal",
        "asmi-f-5.5",
    ),
    _row(
        "ewgsop2",
        "muscle_quantity",
        {"sex": F, "height_m": 1.7, "asm_kg": 15.9239, "asm_method": "dxa"},
        "normal",
        "asmi-f-5.51",
    ),
    # gait <=0.8 m/s [EWGSOP2 Table 3]
    _row("ewgsop2", "physical_performance", {"sex": M, "gait_speed_m_s": 0.79}, "low", "gait-.79"),
    _row("ewgsop2", "physical_performance", {"sex": F, "gait_speed_m_s": 0.8}, "low", "gait-.8"),
    _row(
        "ewgsop2", "physical_performance", {"sex": M, "gait_speed_m_s": 0.81}, "normal", "gait-.81"
    ),
    # SPPB <=8 points [EWGSOP2 Table 3]
    _row("ewgsop2", "physical_performance", {"sex": M, "sppb": 7}, "low", "sppb-7"),
    _row("ewgsop2", "physical_performance", {"sex": F, "sppb": 8}, "low", "sppb-8"),
    _row("ewgsop2", "physical_performance", {"sex": M, "sppb": 9}, "normal", "sppb-9"),
    # TUG >=20 s [EWGSOP2 Table 3]
    _row("ewgsop2", "physical_performance", {"sex": M, "tug_s": 19.9}, "normal", "tug-19.9"),
    _row("ewgsop2", "physical_performance", {"sex": F, "tug_s": 20.0}, "low", "tug-20.0"),
    _row("ewgsop2", "physical_performance", {"sex": M, "tug_s": 20.1}, "low", "tug-20.1"),
    # 400 m walk: non-completion or >=6 min [EWGSOP2 Table 3; criteria.md §10.7]
    _row(
        "ewgsop2",
        "physical_performance",
        {"sex": M, "walk_400m_completed": False},
        "low",
        "400m-not-completed",
    ),
    _row(
        "ewgsop2",
        "physical_performance",
        {"sex": M, "walk_400m_time_min": 5.9},
        "normal",
        "400m-5.9",
    ),
    _row(
        "ewgsop2", "physical_performance", {"sex": F, "walk_400m_time_min": 6.0}, "low", "400m-6.0"
    ),
    _row(
        "ewgsop2", "physical_performance", {"sex": M, "walk_400m_time_min": 6.1}, "low", "400m-6.1"
    ),
]


# ---------------------------------------------------------------------------------------------
# AWGS ASMI rows shared by AWGS 2014, AWGS 2019 and cn2021 (DXA <7.0/<5.4, BIA <7.0/<5.7).
# Men at height 1.5 m (1.5² = 2.25): 6.99 × 2.25 = 15.7275; 7.0 × 2.25 = 15.75;
# 7.01 × 2.25 = 15.7725. Women at height 1.6 m (1.6² = 2.56): 5.39 × 2.56 = 13.7984;
# 5.4 × 2.56 = 13.824; 5.41 × 2.56 = 13.8496; 5.69 × 2.56 = 14.5664; 5.7 × 2.56 = 14.592
# (the float trap: 14.592 / 2.56 is 5.699999999999999 in IEEE-754, exactly 5.7 in decimal);
# 5.71 × 2.56 = 14.6176.


def _awgs_asmi(definition: str, source: str) -> list[Any]:
    def rec(sex: str, height: float, asm: float, method: str) -> dict[str, Any]:
        return {"sex": sex, "height_m": height, "asm_kg": asm, "asm_method": method}

    mq = "muscle_quantity"
    return [
        # men DXA and BIA <7.0 kg/m² [source]
        _row(definition, mq, rec(M, 1.5, 15.7275, "dxa"), "low", f"{source}-asmi-m-dxa-6.99"),
        _row(definition, mq, rec(M, 1.5, 15.75, "dxa"), "normal", f"{source}-asmi-m-dxa-7.0"),
        _row(definition, mq, rec(M, 1.5, 15.7725, "dxa"), "normal", f"{source}-asmi-m-dxa-7.01"),
        _row(definition, mq, rec(M, 1.5, 15.7275, "bia"), "low", f"{source}-asmi-m-bia-6.99"),
        _row(definition, mq, rec(M, 1.5, 15.75, "bia"), "normal", f"{source}-asmi-m-bia-7.0"),
        _row(definition, mq, rec(M, 1.5, 15.7725, "bia"), "normal", f"{source}-asmi-m-bia-7.01"),
        # women DXA <5.4 kg/m² [source]
        _row(definition, mq, rec(F, 1.6, 13.7984, "dxa"), "low", f"{source}-asmi-f-dxa-5.39"),
        _row(definition, mq, rec(F, 1.6, 13.824, "dxa"), "normal", f"{source}-asmi-f-dxa-5.4"),
        _row(definition, mq, rec(F, 1.6, 13.8496, "dxa"), "normal", f"{source}-asmi-f-dxa-5.41"),
        # women BIA <5.7 kg/m² [source]; 5.7 exactly (float trap) is NOT low
        _row(definition, mq, rec(F, 1.6, 14.5664, "bia"), "low", f"{source}-asmi-f-bia-5.69"),
        _row(definition, mq, rec(F, 1.6, 14.592, "bia"), "normal", f"{source}-asmi-f-bia-5.7"),
        _row(definition, mq, rec(F, 1.6, 14.6176, "bia"), "normal", f"{source}-asmi-f-bia-5.71"),
        # the DXA cut-off is not the BIA one: 5.41 is normal by DXA but low by BIA [source]
        _row(definition, mq, rec(F, 1.6, 13.8496, "bia"), "low", f"{source}-asmi-f-bia-5.41"),
    ]


# AWGS 2014 (Chen 2014, JAMDA 15:95; cut-offs from PMC6119844 Table 1; criteria.md §2.3)
AWGS2014 = [
    # grip <26 kg men [AWGS 2014, PMC6119844 Table 1]
    _row("awgs2014", "strength", {"sex": M, "grip_kg": 25.9}, "low", "grip-m-25.9"),
    _row("awgs2014", "strength", {"sex": M, "grip_kg": 26.0}, "normal", "grip-m-26.0"),
    _row("awgs2014", "strength", {"sex": M, "grip_kg": 26.1}, "normal", "grip-m-26.1"),
    # grip <18 kg women [AWGS 2014, PMC6119844 Table 1]
    _row("awgs2014", "strength", {"sex": F, "grip_kg": 17.9}, "low", "grip-f-17.9"),
    _row("awgs2014", "strength", {"sex": F, "grip_kg": 18.0}, "normal", "grip-f-18.0"),
    _row("awgs2014", "strength", {"sex": F, "grip_kg": 18.1}, "normal", "grip-f-18.1"),
    # usual gait <0.8 m/s as the abstract prints it (disputed boundary; §2.3, §10.6)
    _row("awgs2014", "physical_performance", {"sex": M, "gait_speed_m_s": 0.79}, "low", "g.79"),
    _row("awgs2014", "physical_performance", {"sex": F, "gait_speed_m_s": 0.8}, "normal", "g.8"),
    _row("awgs2014", "physical_performance", {"sex": M, "gait_speed_m_s": 0.81}, "normal", "g.81"),
    *_awgs_asmi("awgs2014", "awgs2014"),  # DXA <7.0/<5.4, BIA <7.0/<5.7 [PMC6119844 Table 1]
]


def _awgs2019_strength_performance(definition: str) -> list[Any]:
    """AWGS 2019 grip, gait, chair stand and SPPB (Chen 2020 JAMDA 21:300, abstract; §2.4)."""
    d, s, p = definition, "strength", "physical_performance"
    return [
        # grip <28 kg men [AWGS 2019 abstract / Fig. 1]
        _row(d, s, {"sex": M, "grip_kg": 27.9}, "low", "grip-m-27.9"),
        _row(d, s, {"sex": M, "grip_kg": 28.0}, "normal", "grip-m-28.0"),
        _row(d, s, {"sex": M, "grip_kg": 28.1}, "normal", "grip-m-28.1"),
        # grip <18 kg women [AWGS 2019 abstract / Fig. 1]
        _row(d, s, {"sex": F, "grip_kg": 17.9}, "low", "grip-f-17.9"),
        _row(d, s, {"sex": F, "grip_kg": 18.0}, "normal", "grip-f-18.0"),
        _row(d, s, {"sex": F, "grip_kg": 18.1}, "normal", "grip-f-18.1"),
        # 6-m gait <1.0 m/s [AWGS 2019 abstract]
        _row(d, p, {"sex": M, "gait_speed_m_s": 0.99}, "low", "gait-0.99"),
        _row(d, p, {"sex": F, "gait_speed_m_s": 1.0}, "normal", "gait-1.0"),
        _row(d, p, {"sex": M, "gait_speed_m_s": 1.01}, "normal", "gait-1.01"),
        # 5x chair stand >=12 s, a PERFORMANCE test in AWGS 2019 [AWGS 2019 abstract; §7 #2]
        _row(d, p, {"sex": M, "chair_stand_5x_s": 11.9}, "normal", "chair-11.9"),
        _row(d, p, {"sex": F, "chair_stand_5x_s": 12.0}, "low", "chair-12.0"),
        _row(d, p, {"sex": M, "chair_stand_5x_s": 12.1}, "low", "chair-12.1"),
        # inability is low, never missing [criteria.md §10.7]
        _row(d, p, {"sex": F, "chair_stand_unable": True}, "low", "chair-unable"),
        # SPPB <=9 [AWGS 2019 abstract]
        _row(d, p, {"sex": M, "sppb": 8}, "low", "sppb-8"),
        _row(d, p, {"sex": F, "sppb": 9}, "low", "sppb-9"),
        _row(d, p, {"sex": M, "sppb": 10}, "normal", "sppb-10"),
    ]


# AWGS 2019 hospital / research pathway (criteria.md §2.4, §10.4)
AWGS2019 = [*_awgs2019_strength_performance("awgs2019"), *_awgs_asmi("awgs2019", "awgs2019")]

# cn2021 uses the AWGS 2019 cut-offs (criteria.md §2.10, §10.5)
CN2021 = [*_awgs2019_strength_performance("cn2021"), *_awgs_asmi("cn2021", "awgs2019")]

# AWGS 2019 primary-care pathway (criteria.md §2.4, §3.2, §3.5, §10.2, §10.4)
_CF, _SP = "case_finding", "strength_or_performance"
AWGS2019_COMMUNITY = [
    # calf <34 cm men [AWGS 2019 case-finding; §3.5]
    _row("awgs2019_community", _CF, {"sex": M, "calf_cm": 33.9}, "positive", "calf-m-33.9"),
    _row("awgs2019_community", _CF, {"sex": M, "calf_cm": 34.0}, "negative", "calf-m-34.0"),
    _row("awgs2019_community", _CF, {"sex": M, "calf_cm": 34.1}, "negative", "calf-m-34.1"),
    # calf <33 cm women [AWGS 2019 case-finding; §3.5]
    _row("awgs2019_community", _CF, {"sex": F, "calf_cm": 32.9}, "positive", "calf-f-32.9"),
    _row("awgs2019_community", _CF, {"sex": F, "calf_cm": 33.0}, "negative", "calf-f-33.0"),
    _row("awgs2019_community", _CF, {"sex": F, "calf_cm": 33.1}, "negative", "calf-f-33.1"),
    # SARC-F >=4 [AWGS 2019; SARC-F §3.1]: totals 3, 4, 5
    _row(
        "awgs2019_community",
        _CF,
        {
            "sex": M,
            **{
                "sarc_f_strength": 1,
                "sarc_f_assistance_walking": 1,
                "sarc_f_rise_from_chair": 1,
                "sarc_f_climb_stairs": 0,
                "sarc_f_falls": 0,
            },
        },
        "negative",
        "sarc-f-3",
    ),
    _row(
        "awgs2019_community",
        _CF,
        {
            "sex": M,
            **{
                "sarc_f_strength": 1,
                "sarc_f_assistance_walking": 1,
                "sarc_f_rise_from_chair": 1,
                "sarc_f_climb_stairs": 1,
                "sarc_f_falls": 0,
            },
        },
        "positive",
        "sarc-f-4",
    ),
    _row(
        "awgs2019_community",
        _CF,
        {
            "sex": F,
            **{
                "sarc_f_strength": 2,
                "sarc_f_assistance_walking": 1,
                "sarc_f_rise_from_chair": 1,
                "sarc_f_climb_stairs": 1,
                "sarc_f_falls": 0,
            },
        },
        "positive",
        "sarc-f-5",
    ),
    # SARC-CalF >=11 [AWGS 2019; §3.2]: SARC-F 1 + 10 (calf 33.9 < 34 in a man) = 11
    _row(
        "awgs2019_community",
        _CF,
        {
            "sex": M,
            "calf_cm": 33.9,
            **{
                "sarc_f_strength": 1,
                "sarc_f_assistance_walking": 0,
                "sarc_f_rise_from_chair": 0,
                "sarc_f_climb_stairs": 0,
                "sarc_f_falls": 0,
            },
        },
        "positive",
        "sarc-calf-11",
    ),
    # SARC-F 3, calf 34.0 (not low) in a man: SARC-CalF 3, every screen negative
    _row(
        "awgs2019_community",
        _CF,
        {
            "sex": M,
            "calf_cm": 34.0,
            **{
                "sarc_f_strength": 1,
                "sarc_f_assistance_walking": 1,
                "sarc_f_rise_from_chair": 1,
                "sarc_f_climb_stairs": 0,
                "sarc_f_falls": 0,
            },
        },
        "negative",
        "all-negative",
    ),
    # grip <28 / <18 kg [AWGS 2019 primary-care pathway]
    _row("awgs2019_community", _SP, {"sex": M, "grip_kg": 27.9}, "low", "grip-m-27.9"),
    _row("awgs2019_community", _SP, {"sex": M, "grip_kg": 28.0}, "normal", "grip-m-28.0"),
    _row("awgs2019_community", _SP, {"sex": M, "grip_kg": 28.1}, "normal", "grip-m-28.1"),
    _row("awgs2019_community", _SP, {"sex": F, "grip_kg": 17.9}, "low", "grip-f-17.9"),
    _row("awgs2019_community", _SP, {"sex": F, "grip_kg": 18.0}, "normal", "grip-f-18.0"),
    _row("awgs2019_community", _SP, {"sex": F, "grip_kg": 18.1}, "normal", "grip-f-18.1"),
    # 5x chair stand >=12 s [AWGS 2019 primary-care pathway]
    _row("awgs2019_community", _SP, {"sex": M, "chair_stand_5x_s": 11.9}, "normal", "chair-11.9"),
    _row("awgs2019_community", _SP, {"sex": F, "chair_stand_5x_s": 12.0}, "low", "chair-12.0"),
    _row("awgs2019_community", _SP, {"sex": M, "chair_stand_5x_s": 12.1}, "low", "chair-12.1"),
    _row("awgs2019_community", _SP, {"sex": M, "chair_stand_unable": True}, "low", "chair-unable"),
    # gait speed is not used in the primary-care pathway [criteria.md §2.4]
    _row("awgs2019_community", _SP, {"sex": M, "gait_speed_m_s": 0.5}, "unknown", "gait-unused"),
]

# ---------------------------------------------------------------------------------------------
# IWGS 2011 (Fielding 2011, JAMDA 12:249; values in PMC6119844 Table 1; criteria.md §2.6)
# ASMI <= cut-off (inclusive!). Men at height 1.5 m (2.25): 7.22 × 2.25 = 16.245;
# 7.23 × 2.25 = 16.2675; 7.24 × 2.25 = 16.29. Women at 1.6 m (2.56): 5.66 × 2.56 = 14.4896;
# 5.67 × 2.56 = 14.5152; 5.68 × 2.56 = 14.5408.


def _iwgs(sex: str, height: float, asm: float, method: str = "dxa") -> dict[str, Any]:
    return {"sex": sex, "height_m": height, "asm_kg": asm, "asm_method": method}


IWGS2011 = [
    # gait <1.0 m/s [IWGS 2011; PMC6119844 Table 1]
    _row("iwgs2011", "physical_performance", {"sex": M, "gait_speed_m_s": 0.99}, "low", "g0.99"),
    _row("iwgs2011", "physical_performance", {"sex": F, "gait_speed_m_s": 1.0}, "normal", "g1.0"),
    _row("iwgs2011", "physical_performance", {"sex": M, "gait_speed_m_s": 1.01}, "normal", "g1.01"),
    # ALM/ht² <=7.23 men (DXA) [IWGS 2011; PMC6119844 Table 1]
    _row("iwgs2011", "muscle_quantity", _iwgs(M, 1.5, 16.245), "low", "asmi-m-7.22"),
    _row("iwgs2011", "muscle_quantity", _iwgs(M, 1.5, 16.2675), "low", "asmi-m-7.23"),
    _row("iwgs2011", "muscle_quantity", _iwgs(M, 1.5, 16.29), "normal", "asmi-m-7.24"),
    # ALM/ht² <=5.67 women (DXA) [IWGS 2011; PMC6119844 Table 1]
    _row("iwgs2011", "muscle_quantity", _iwgs(F, 1.6, 14.4896), "low", "asmi-f-5.66"),
    _row("iwgs2011", "muscle_quantity", _iwgs(F, 1.6, 14.5152), "low", "asmi-f-5.67"),
    _row("iwgs2011", "muscle_quantity", _iwgs(F, 1.6, 14.5408), "normal", "asmi-f-5.68"),
    # DXA-only cut-off: a BIA mass cannot be classified (brief; criteria.md §2.6)
    _row("iwgs2011", "muscle_quantity", _iwgs(F, 1.6, 10.0, "bia"), "unknown", "asmi-bia"),
]

# ---------------------------------------------------------------------------------------------
# FNIH 2014 (Studenski 2014, J Gerontol A 69:547, abstract; Alley 2014; criteria.md §2.8)
# ALM/BMI with BMI fixed at 25: weight 64 kg, height 1.6 m -> 64 / 2.56 = 25.0.
# Men: 0.788 × 25 = 19.7; 0.789 × 25 = 19.725; 0.790 × 25 = 19.75.
# Women: 0.511 × 25 = 12.775; 0.512 × 25 = 12.8; 0.513 × 25 = 12.825.


def _fnih(sex: str, asm: float, method: str = "dxa") -> dict[str, Any]:
    return {"sex": sex, "height_m": 1.6, "weight_kg": 64.0, "asm_kg": asm, "asm_method": method}


FNIH2014 = [
    # grip <26 kg men [Studenski 2014 abstract]
    _row("fnih2014", "strength", {"sex": M, "grip_kg": 25.9}, "low", "grip-m-25.9"),
    _row("fnih2014", "strength", {"sex": M, "grip_kg": 26.0}, "normal", "grip-m-26.0"),
    _row("fnih2014", "strength", {"sex": M, "grip_kg": 26.1}, "normal", "grip-m-26.1"),
    # grip <16 kg women [Studenski 2014 abstract]
    _row("fnih2014", "strength", {"sex": F, "grip_kg": 15.9}, "low", "grip-f-15.9"),
    _row("fnih2014", "strength", {"sex": F, "grip_kg": 16.0}, "normal", "grip-f-16.0"),
    _row("fnih2014", "strength", {"sex": F, "grip_kg": 16.1}, "normal", "grip-f-16.1"),
    # ALM/BMI <0.789 men (DXA) [Studenski 2014 abstract]
    _row("fnih2014", "muscle_quantity", _fnih(M, 19.7), "low", "almbmi-m-0.788"),
    _row("fnih2014", "muscle_quantity", _fnih(M, 19.725), "normal", "almbmi-m-0.789"),
    _row("fnih2014", "muscle_quantity", _fnih(M, 19.75), "normal", "almbmi-m-0.790"),
    # ALM/BMI <0.512 women (DXA) [Studenski 2014 abstract]
    _row("fnih2014", "muscle_quantity", _fnih(F, 12.775), "low", "almbmi-f-0.511"),
    _row("fnih2014", "muscle_quantity", _fnih(F, 12.8), "normal", "almbmi-f-0.512"),
    _row("fnih2014", "muscle_quantity", _fnih(F, 12.825), "normal", "almbmi-f-0.513"),
    # DXA-only cut-off: BIA mass cannot be classified (brief; criteria.md §2.8)
    _row("fnih2014", "muscle_quantity", _fnih(F, 5.0, "bia"), "unknown", "almbmi-bia"),
    # gait <0.8 m/s (slowness; Alley 2014 abstract; disputed boundary, §10.6)
    _row("fnih2014", "physical_performance", {"sex": M, "gait_speed_m_s": 0.79}, "low", "g.79"),
    _row("fnih2014", "physical_performance", {"sex": F, "gait_speed_m_s": 0.8}, "normal", "g.8"),
    _row("fnih2014", "physical_performance", {"sex": M, "gait_speed_m_s": 0.81}, "normal", "g.81"),
]

# ---------------------------------------------------------------------------------------------
# SDOC 2020 (Bhasin 2020, JAGS 68:1410; Cawthon 2020, JAGS 68:1429; criteria.md §2.9)
# grip/BMI with BMI fixed at 25 (weight 64 kg, height 1.6 m).
# Men: 1.04 × 25 = 26.0; 1.05 × 25 = 26.25; 1.06 × 25 = 26.5.
# Women: 0.78 × 25 = 19.5; 0.79 × 25 = 19.75; 0.80 × 25 = 20.0.


def _bmi25(sex: str, grip: float) -> dict[str, Any]:
    return {"sex": sex, "height_m": 1.6, "weight_kg": 64.0, "grip_kg": grip}


SDOC2020 = [
    # absolute grip <35.5 kg men [Bhasin 2020 / Cawthon 2020 abstracts]
    _row("sdoc2020", "strength", {"sex": M, "grip_kg": 35.4}, "low", "grip-m-35.4"),
    _row("sdoc2020", "strength", {"sex": M, "grip_kg": 35.5}, "normal", "grip-m-35.5"),
    _row("sdoc2020", "strength", {"sex": M, "grip_kg": 35.6}, "normal", "grip-m-35.6"),
    # absolute grip <20 kg women [Bhasin 2020 / Cawthon 2020 abstracts]
    _row("sdoc2020", "strength", {"sex": F, "grip_kg": 19.9}, "low", "grip-f-19.9"),
    _row("sdoc2020", "strength", {"sex": F, "grip_kg": 20.0}, "normal", "grip-f-20.0"),
    _row("sdoc2020", "strength", {"sex": F, "grip_kg": 20.1}, "normal", "grip-f-20.1"),
    # gait <0.8 m/s (strict) [Bhasin 2020 abstract]
    _row("sdoc2020", "physical_performance", {"sex": M, "gait_speed_m_s": 0.79}, "low", "g.79"),
    _row("sdoc2020", "physical_performance", {"sex": F, "gait_speed_m_s": 0.8}, "normal", "g.8"),
    _row("sdoc2020", "physical_performance", {"sex": M, "gait_speed_m_s": 0.81}, "normal", "g.81"),
    # grip/BMI men: the derivation prints "GRBMI of 1.05 kg/kg/m2 or less" (Manini TM et al.
    # J Am Geriatr Soc 2020;68(7):1419-1428, PubMed abstract), so 1.05 itself is weak; the
    # earlier "<1.05" row here came from summaries, and the paper wins.
    _row("sdoc2020_grip_bmi", "strength", _bmi25(M, 26.0), "low", "gripbmi-m-1.04"),
    _row("sdoc2020_grip_bmi", "strength", _bmi25(M, 26.25), "low", "gripbmi-m-1.05"),
    _row("sdoc2020_grip_bmi", "strength", _bmi25(M, 26.5), "normal", "gripbmi-m-1.06"),
    # grip/BMI <0.79 women [Bhasin 2020 / Cawthon 2020 abstracts]
    _row("sdoc2020_grip_bmi", "strength", _bmi25(F, 19.5), "low", "gripbmi-f-0.78"),
    _row("sdoc2020_grip_bmi", "strength", _bmi25(F, 19.75), "normal", "gripbmi-f-0.79"),
    _row("sdoc2020_grip_bmi", "strength", _bmi25(F, 20.0), "normal", "gripbmi-f-0.80"),
    # gait <0.8 m/s applies to the grip/BMI construct too [Bhasin 2020 abstract]
    _row(
        "sdoc2020_grip_bmi",
        "physical_performance",
        {"sex": M, "gait_speed_m_s": 0.79},
        "low",
        "g.79",
    ),
    _row(
        "sdoc2020_grip_bmi",
        "physical_performance",
        {"sex": F, "gait_speed_m_s": 0.8},
        "normal",
        "g.8",
    ),
]

ALL_ROWS = [
    *EWGSOP2010,
    *EWGSOP2,
    *AWGS2014,
    *AWGS2019,
    *AWGS2019_COMMUNITY,
    *CN2021,
    *IWGS2011,
    *FNIH2014,
    *SDOC2020,
]


@pytest.mark.parametrize(("definition", "component", "record", "expected"), ALL_ROWS)
def test_cutoff_boundary(
    definition: str, component: str, record: dict[str, Any], expected: str
) -> None:
    assert component_state(record, definition, component) == expected


# ---------------------------------------------------------------------------------------------
# Sex and method unknown: decided only where every cut-off that could apply agrees
# (brief; criteria.md §8.3 "return indeterminate only when a missing input could change it").

UNDECIDED_SEX_OR_METHOD = [
    # grip 10 kg is low for men (<27) and women (<16) alike [EWGSOP2 Table 3]
    _row("ewgsop2", "strength", {"grip_kg": 10.0}, "low", "nosex-grip-10"),
    # grip 40 kg is normal for both sexes [EWGSOP2 Table 3]
    _row("ewgsop2", "strength", {"grip_kg": 40.0}, "normal", "nosex-grip-40"),
    # grip 20 kg: low for men (<27), normal for women (>=16) -> unknown [EWGSOP2 Table 3]
    _row("ewgsop2", "strength", {"grip_kg": 20.0}, "unknown", "nosex-grip-20"),
    # chair stand has one cut-off for both sexes (>15 s) [EWGSOP2 Table 3]
    _row("ewgsop2", "strength", {"chair_stand_5x_s": 16.0}, "low", "nosex-chair-16"),
    # AWGS men: DXA and BIA agree (<7.0), so a missing method still decides [AWGS 2019]
    _row(
        "awgs2019",
        "muscle_quantity",
        {"sex": M, "height_m": 1.5, "asm_kg": 15.7275},
        "low",
        "nomethod-m-6.99",
    ),
    _row(
        "awgs2019",
        "muscle_quantity",
        {"sex": M, "height_m": 1.5, "asm_kg": 15.75},
        "normal",
        "nomethod-m-7.0",
    ),
    # AWGS women: ASMI 5.5 is normal by DXA (>=5.4) but low by BIA (<5.7) -> unknown
    # 5.5 × 2.56 = 14.08 [AWGS 2019; AWGS 2014 PMC6119844 Table 1]
    _row(
        "awgs2019",
        "muscle_quantity",
        {"sex": F, "height_m": 1.6, "asm_kg": 14.08},
        "unknown",
        "nomethod-f-5.5",
    ),
    _row(
        "awgs2014",
        "muscle_quantity",
        {"sex": F, "height_m": 1.6, "asm_kg": 14.08},
        "unknown",
        "nomethod-f-5.5",
    ),
    # ...but 5.3 (13.568) is low and 5.8 (14.848) normal under both methods
    _row(
        "awgs2019",
        "muscle_quantity",
        {"sex": F, "height_m": 1.6, "asm_kg": 13.568},
        "low",
        "nomethod-f-5.3",
    ),
    _row(
        "awgs2019",
        "muscle_quantity",
        {"sex": F, "height_m": 1.6, "asm_kg": 14.848},
        "normal",
        "nomethod-f-5.8",
    ),
]


@pytest.mark.parametrize(("definition", "component", "record", "expected"), UNDECIDED_SEX_OR_METHOD)
def test_unknown_sex_or_method(
    definition: str, component: str, record: dict[str, Any], expected: str
) -> None:
    assert component_state(record, definition, component) == expected


def test_asmi_float_trap_reports_exactly_5_7() -> None:
    # 14.592 / 1.6² = 5.7 exactly in decimal; reported to 2 dp (DESIGN.md principle 5)
    result: dict[str, Any] = sarcokit.assess(
        {"sex": F, "height_m": 1.6, "asm_kg": 14.592, "asm_method": "bia"},
        definitions=["awgs2019"],
    ).to_dict()
    assert result["derived"]["asmi_kg_m2"] == pytest.approx(5.7, abs=1e-9)
    assert result["definitions"]["awgs2019"]["components"]["muscle_quantity"] == "normal"


def test_discordant_strength_tests_low_wins() -> None:
    # criteria.md §10.1: EWGSOP2 grip 30 kg (normal, >=27) but chair stand 16 s (>15) -> low
    record = {"sex": M, "grip_kg": 30.0, "chair_stand_5x_s": 16.0}
    assert component_state(record, "ewgsop2", "strength") == "low"
    # and the reverse: grip low, chair stand normal -> still low
    record = {"sex": M, "grip_kg": 20.0, "chair_stand_5x_s": 10.0}
    assert component_state(record, "ewgsop2", "strength") == "low"
    # both normal -> normal
    record = {"sex": M, "grip_kg": 30.0, "chair_stand_5x_s": 10.0}
    assert component_state(record, "ewgsop2", "strength") == "normal"


def test_discordant_mass_metrics_low_wins() -> None:
    # criteria.md §2.2 gap, §10.1: a tall man with ASM 21 kg (>=20, normal) and height 1.9 m:
    # ASMI 21 / 3.61 = 5.817... (<7.0, low) -> low muscle quantity under EWGSOP2
    record = {"sex": M, "height_m": 1.9, "asm_kg": 21.0, "asm_method": "dxa"}
    assert component_state(record, "ewgsop2", "muscle_quantity") == "low"


def test_chair_stand_unable_overrides_missing_time() -> None:
    # criteria.md §10.7: inability counts as low, never as missing, in each definition's role
    record = {"sex": F, "chair_stand_unable": True}
    assert component_state(record, "ewgsop2", "strength") == "low"
    assert component_state(record, "awgs2019", "physical_performance") == "low"
    assert component_state(record, "cn2021", "physical_performance") == "low"
    assert component_state(record, "awgs2019_community", "strength_or_performance") == "low"


def test_chair_stand_component_role_per_definition() -> None:
    # criteria.md §7 #2: chair stand is STRENGTH in EWGSOP2 (Table 3) but PERFORMANCE in
    # AWGS 2019 (abstract); it must not leak into the other component.
    record = {"sex": M, "chair_stand_5x_s": 16.0}
    assert component_state(record, "ewgsop2", "strength") == "low"
    assert component_state(record, "ewgsop2", "physical_performance") == "unknown"
    assert component_state(record, "awgs2019", "physical_performance") == "low"
    assert component_state(record, "awgs2019", "strength") == "unknown"
    # AWGS 2014 uses grip and gait only (criteria.md §2.3)
    assert component_state(record, "awgs2014", "physical_performance") == "unknown"
    assert component_state(record, "awgs2014", "strength") == "unknown"


def test_gait_is_not_a_strength_test() -> None:
    record = {"sex": F, "gait_speed_m_s": 0.5}
    for definition in ("ewgsop2", "awgs2019", "fnih2014", "sdoc2020"):
        assert component_state(record, definition, "strength") == "unknown", definition
        assert component_state(record, definition, "physical_performance") == "low", definition


def _agreement(possible: tuple[bool | None, ...], results: tuple[bool | None, ...]) -> bool | None:
    """The answer of every case that may apply, if they all give one and the same."""
    answers = {r for p, r in zip(possible, results, strict=True) if p}
    return next(iter(answers)) if len(answers) == 1 and None not in answers else None


@pytest.mark.parametrize("cases", [2, 3])
def test_cases_agree_for_every_combination(cases: int) -> None:
    """`agreed` (two cases have a shortcut of their own) against the rule it implements, over
    every combination of which cases may apply and what each says, unknown included."""
    rows = [
        (*p, *r)
        for p in itertools.product([True, False], repeat=cases)
        for r in itertools.product([True, False, None], repeat=cases)
    ]
    names = [f"p{i}" for i in range(cases)] + [f"r{i}" for i in range(cases)]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(names, pl.Boolean), orient="row")
    flag = agreed([nw.col(f"p{i}") for i in range(cases)], [nw.col(f"r{i}") for i in range(cases)])
    got = nw.from_native(frame).select(flag.alias("flag")).to_native()["flag"].to_list()
    assert got == [_agreement(row[:cases], row[cases:]) for row in rows]
