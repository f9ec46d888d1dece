"""The category-rule language of the criteria files: and, or, not, parentheses, known(x).

Rules are parsed with Python's own grammar and only these forms are accepted, then compiled to
columnar expressions. `and`, `or` and `not` follow Kleene's three-valued logic (an unknown
component stays unknown unless the other operand decides), which is what Polars, DuckDB, SQL and
Spark do natively.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable

import narwhals as nw

from sarcokit.thresholds import CriteriaError


def parse_rule(text: str, components: Iterable[str], where: str) -> ast.expr:
    """Parse a rule and check that it names only known components."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        raise CriteriaError(f"{where}: rule {text!r} does not parse: {error.msg}") from None
    allowed = set(components)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in allowed | {"known"}:
            raise CriteriaError(f"{where}: rule {text!r} names unknown component {node.id!r}")
        if not isinstance(
            node, ast.BoolOp | ast.UnaryOp | ast.Name | ast.Call | ast.And | ast.Or | ast.Not
        ) and not isinstance(node, ast.Load):
            raise CriteriaError(f"{where}: rule {text!r} uses {type(node).__name__}")
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            raise CriteriaError(f"{where}: rule {text!r} uses an operator other than not")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name)
            and node.func.id == "known"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Name)
            and not node.keywords
        ):
            raise CriteriaError(f"{where}: rule {text!r}: only known(component) may be called")
    return tree


def compile_rule(tree: ast.expr, column: Callable[[str], nw.Expr]) -> nw.Expr:
    """The rule as a three-valued boolean expression over the component columns."""
    if isinstance(tree, ast.Name):
        return column(tree.id)
    if isinstance(tree, ast.UnaryOp):
        return ~compile_rule(tree.operand, column)
    if isinstance(tree, ast.Call):
        argument = tree.args[0]
        assert isinstance(argument, ast.Name)
        return ~column(argument.id).is_null()
    assert isinstance(tree, ast.BoolOp)
    parts = [compile_rule(value, column) for value in tree.values]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if isinstance(tree.op, ast.And) else combined | part
    return combined


def components_named(tree: ast.expr) -> list[str]:
    """The components a rule depends on, in order of first mention."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id != "known" and node.id not in names:
            names.append(node.id)
    return names
