"""The built-in definitions' ids, in public order: a module of its own so that the command line
can list them without loading the criteria machinery (and narwhals) behind `definitions`."""

from __future__ import annotations

# Public order of the definitions (DESIGN.md); the ids are part of the public contract.
DEFINITION_IDS = (
    "ewgsop2010",
    "ewgsop2",
    "awgs2014",
    "awgs2019",
    "awgs2019_community",
    "awgs2025",
    "cn2021",
    "iwgs2011",
    "fnih2014",
    "sdoc2020",
    "sdoc2020_grip_bmi",
)
