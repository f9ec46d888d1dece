"""Which unit a record gives a common field in does not pick a compiled pipeline of its own: a
new pipeline costs a clinic ~0.3 s of CPU with every request in flight waiting (issue 9)."""

from __future__ import annotations

from typing import Any

import sarcokit
from sarcokit.scalar import _compiled

BASE: dict[str, Any] = {"sex": "female", "age": 78, "gait_speed_m_s": 0.9}
UNITS: list[dict[str, Any]] = [
    {"height_m": 1.5, "weight_kg": 60.0, "grip_kg": 17.5},
    {"height_cm": 150.0, "weight_kg": 60.0, "grip_kg": 17.5},
    {"height_in": 59.06, "weight_lb": 132.3, "grip_lb": 38.6},
    {"height_cm": 150.0, "grip_lb": 38.6, "asm_g": 12600, "asm_method": "bia", "calf_in": 12.6},
]


def test_records_in_other_units_share_one_pipeline() -> None:
    sarcokit.assess({**BASE, **UNITS[0]})
    before = _compiled.cache_info()
    results = [sarcokit.assess({**BASE, **units}) for units in UNITS]
    assert _compiled.cache_info().misses == before.misses
    # The first three are one subject in three sets of units: one answer.
    assert len({r.definitions["ewgsop2"].category for r in results[:3]}) == 1
