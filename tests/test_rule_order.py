"""No category chosen by rule order while a missing test could change it (criteria.md §10.8).

EWGSOP 2010 (Cruz-Jentoft 2010; criteria.md §2.1): presarcopenia is low muscle mass "without
impact on muscle strength or physical performance"; sarcopenia is low mass plus low strength or
low performance. So low mass with normal grip and no performance test is open between
presarcopenia and sarcopenia: `indeterminate`, and the next step names the performance test.
"""

from __future__ import annotations

from typing import Any

import pytest

import sarcokit

M = "male"
F = "female"


def _result(record: dict[str, Any], definition: str) -> dict[str, Any]:
    payload = sarcokit.assess(record, definitions=[definition]).to_dict()
    assert "error" not in payload, payload.get("error")
    value: dict[str, Any] = payload["definitions"][definition]
    return value


def test_ewgsop2010_low_mass_normal_grip_no_performance_is_open() -> None:
    # Woman, grip 25 kg >= 20 kg (normal, Lauretani cut-off <20), mass pre-classified low, no
    # gait speed or SPPB: a gait of 0.7 m/s (< 0.8) would make her sarcopenia, a gait of
    # 1.2 m/s presarcopenia. Today's code answered presarcopenia by rule order.
    result = _result({"sex": F, "muscle_mass_low": True, "grip_kg": 25.0}, "ewgsop2010")
    assert result["category"] == "indeterminate"
    assert result["next_steps"] == ["assess_physical_performance"]


def test_ewgsop2010_low_mass_normal_performance_no_grip_is_open() -> None:
    # Man, gait 1.2 m/s >= 0.8 (normal), mass low, no grip: grip 25 < 30 would make sarcopenia.
    result = _result({"sex": M, "muscle_mass_low": True, "gait_speed_m_s": 1.2}, "ewgsop2010")
    assert result["category"] == "indeterminate"
    assert result["next_steps"] == ["assess_muscle_strength"]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # low mass, grip 35 >= 30 and gait 1.2 >= 0.8 both normal: presarcopenia, decided
        (
            {"sex": M, "muscle_mass_low": True, "grip_kg": 35.0, "gait_speed_m_s": 1.2},
            "presarcopenia",
        ),
        # low mass, normal grip, SPPB 10 > 8 (normal): presarcopenia, decided
        ({"sex": F, "muscle_mass_low": True, "grip_kg": 25.0, "sppb": 10}, "presarcopenia"),
        # low mass, normal grip, slow gait 0.7 < 0.8: sarcopenia (mass + performance)
        ({"sex": F, "muscle_mass_low": True, "grip_kg": 25.0, "gait_speed_m_s": 0.7}, "sarcopenia"),
    ],
)
def test_ewgsop2010_presarcopenia_when_decided(record: dict[str, Any], expected: str) -> None:
    assert _result(record, "ewgsop2010")["category"] == expected
