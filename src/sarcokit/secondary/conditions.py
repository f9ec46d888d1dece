"""Chronic diseases that cause secondary sarcopenia, recognised from ICD-10 codes or names."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import polars as pl

from sarcokit.fields import CONDITIONS


@dataclass(frozen=True)
class Condition:
    """A condition known to cause sarcopenia, with its codes, names and cited context."""

    id: str
    label: Mapping[str, str]
    codes: tuple[str, ...]
    names: tuple[str, ...]
    awgs2019_trigger: bool
    context: Mapping[str, str]
    source: str


@cache
def known_conditions() -> dict[str, Condition]:
    """The recognised conditions of reference/secondary/conditions.toml."""
    text = files("sarcokit").joinpath("reference/secondary/conditions.toml").read_text("utf-8")
    raw = tomllib.loads(text)["conditions"]
    return {
        key: Condition(
            id=key,
            label=dict(entry["label"]),
            codes=tuple(code.upper() for code in entry["codes"]),
            names=tuple(name.casefold() for name in entry["names"]),
            awgs2019_trigger=bool(entry["awgs2019_trigger"]),
            context=dict(entry["context"]),
            source=str(entry["source"]),
        )
        for key, entry in raw.items()
    }


def _matches(condition: Condition, given: str) -> bool:
    folded = given.strip().casefold()
    if folded in condition.names:
        return True
    # ICD-10 codes match by prefix, with or without the dot (K74.60 → K7460 starts with K74).
    code = re.sub(r"[.\s]", "", given.strip().upper())
    return bool(re.fullmatch(r"[A-Z]\d{2}[0-9A-Z]*", code)) and any(
        code.startswith(prefix) for prefix in condition.codes
    )


def recognise(given: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split the record's conditions into recognised condition ids and the rest, in order."""
    recognised: list[str] = []
    others: list[str] = []
    for value in given:
        hits = [c.id for c in known_conditions().values() if _matches(c, value)]
        if hits:
            recognised.extend(h for h in hits if h not in recognised)
        else:
            others.append(value)
    return recognised, others


def condition_column(condition_id: str) -> str:
    """Column of a cohort: true where the row's conditions include this one."""
    return f"condition_{condition_id}"


def condition_exprs(given: Iterable[str | None]) -> list[pl.Expr]:
    """Per-condition Boolean columns from a `conditions` text column ('K74.6; COPD').

    Each distinct text is recognised once, in Python, by the same rule as a single record; a row
    without conditions is null (not known), never false.
    """
    lookup: dict[str, list[str]] = {}
    for text in {t for t in given if t is not None}:
        parts = [p.strip() for p in re.split(r"[;,]", text) if p.strip()]
        lookup[text] = recognise(parts)[0]
    ids = pl.col(CONDITIONS).replace_strict(lookup, default=None, return_dtype=pl.List(pl.String))
    return [
        ids.list.contains(condition_id).alias(condition_column(condition_id))
        for condition_id in known_conditions()
    ]
