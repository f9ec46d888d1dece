"""The cited reference files of secondary sarcopenia and the three-valued helpers they share."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from importlib.resources import files
from typing import Any

import narwhals as nw

from sarcokit.thresholds import CriteriaError, agreed, parse_threshold, threshold_expr

NULL_BOOL = nw.lit(None, dtype=nw.Boolean())


def _sources_named(node: Any) -> Iterator[str]:
    """Every `source` value anywhere in a parsed file."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "source":
                yield str(value)
            else:
                yield from _sources_named(value)
    elif isinstance(node, list):
        for item in node:
            yield from _sources_named(item)


@cache
def reference(name: str) -> Mapping[str, Any]:
    """One file of reference/secondary/; every `source` must name an entry of its [sources]."""
    where = where_of(name)
    raw = tomllib.loads(files("sarcokit").joinpath(where).read_text("utf-8"))
    sources = raw.get("sources", {})
    for key, entry in sources.items():
        if not {"citation", "verified"} <= set(entry):
            raise CriteriaError(f"{where}: source {key!r} needs a citation and a verified note")
    body = {key: value for key, value in raw.items() if key != "sources"}
    unknown = sorted(set(_sources_named(body)) - set(sources))
    if unknown:
        raise CriteriaError(f"{where}: sources {unknown} are not listed under [sources]")
    return raw


def where_of(name: str) -> str:
    """The package path of a reference file, for error messages."""
    return f"reference/secondary/{name}.toml"


def cutoff_expr(raw: Mapping[str, Any], where: str) -> nw.Expr:
    """A cited cut-off test (the criteria-file shape) as a three-valued flag."""
    return threshold_expr(parse_threshold(str(raw["input"]), raw, where))


def condition_expr(raw: Mapping[str, Any], where: str) -> nw.Expr:
    """A stratum condition: a column equal to a value, or a cut-off test."""
    if "equals" in raw:
        return nw.col(str(raw["input"])) == bool(raw["equals"])
    return cutoff_expr(raw, where)


def any_of(flags: Sequence[nw.Expr]) -> nw.Expr:
    """Kleene OR: true if any flag is true, false only if every flag is false, else null."""
    return nw.any_horizontal(flags, ignore_nulls=False)


def all_of(flags: Sequence[nw.Expr]) -> nw.Expr:
    """Kleene AND: false if any flag is false, true only if every flag is true, else null."""
    return nw.all_horizontal(flags, ignore_nulls=False)


def stratified(cases: Sequence[tuple[nw.Expr, nw.Expr]]) -> nw.Expr:
    """The result of the stratum that applies, from (applies, result) pairs.

    When the stratum is unknown (a missing age), the answer is still decided if every stratum
    that may apply gives the same one, as `sarcokit.thresholds` does for a missing sex.
    """
    return agreed(
        [applies.fill_null(True) for applies, _ in cases], [result for _, result in cases]
    )


def banded_expr(raw: Mapping[str, Any], where: str) -> nw.Expr:
    """The label of the first band whose test holds, `otherwise` for any other known value.

    Null when the value is missing. Bands are ordered most to least extreme in the file.
    """
    bands = raw["bands"]
    value = nw.col(bands[0]["test"]["input"])
    first, *rest = bands
    chain = nw.when(cutoff_expr(first["test"], where)).then(nw.lit(first["label"]))
    for band in rest:
        chain = chain.when(cutoff_expr(band["test"], where)).then(nw.lit(band["label"]))
    return (
        chain.when(~value.is_null())
        .then(nw.lit(raw["otherwise"]))
        .otherwise(nw.lit(None, dtype=nw.String()))
    )


def criterion_expr(raw: Mapping[str, Any], where: str) -> nw.Expr:
    """Three-valued: one test, any of several tests, or the test of the stratum that applies
    (a stratum without a test is unknown)."""
    if "test" in raw:
        return cutoff_expr(raw["test"], where)
    if "tests" in raw:
        return any_of([cutoff_expr(t, where) for t in raw["tests"]])
    return stratified(
        [
            (
                all_of([condition_expr(c, where) for c in stratum["when"]]),
                cutoff_expr(stratum["test"], where) if "test" in stratum else NULL_BOOL,
            )
            for stratum in raw["strata"]
        ]
    )
