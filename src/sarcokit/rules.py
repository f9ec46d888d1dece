"""The category-rule language of the criteria files: and, or, not, parentheses, known(x).

Rules are parsed with Python's own grammar and only these forms are accepted, then compiled to
columnar expressions. `and`, `or` and `not` follow Kleene's three-valued logic (an unknown
component stays unknown unless the other operand decides), which is what Polars, DuckDB, SQL and
Spark do natively.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache

import narwhals as nw

from sarcokit.i18n import Message
from sarcokit.thresholds import CriteriaError


def parse_rule(text: str, components: Iterable[str], where: str) -> ast.expr:
    """Parse a rule and check that it names only known components."""
    messages, tree = rule_problems(text, list(components), list(components), [])
    if messages or tree is None:
        raise CriteriaError(f"{where}: {messages[0]}")
    return tree


def rule_problems(
    text: str,
    allowed: Sequence[str],
    components: Sequence[str],
    categories: Sequence[str],
) -> tuple[list[str], ast.expr | None]:
    """Every problem of a rule (empty when sound) and its tree (None when it does not parse).

    `allowed` are the components a rule may name; `components` all declared ones (an outcome
    measure is declared but may not decide a category); `categories` the file's categories,
    to say so when a rule names one.
    """
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        return [Message("loader.rule_parse", rule=text, error=error.msg)], None
    messages: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in {*allowed, "known"}:
            if node.id in components:
                messages.append(Message("loader.rule_outcome", rule=text, name=node.id))
            elif node.id in categories:
                messages.append(Message("loader.rule_category", rule=text, name=node.id))
            else:
                declared = ", ".join(allowed) or Message("loader.none")
                messages.append(
                    Message("loader.rule_unknown", rule=text, name=node.id, declared=declared)
                )
        if not isinstance(
            node, ast.BoolOp | ast.UnaryOp | ast.Name | ast.Call | ast.And | ast.Or | ast.Not
        ) and not isinstance(node, ast.Load):
            messages.append(Message("loader.rule_node", rule=text, node=type(node).__name__))
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            messages.append(Message("loader.rule_operator", rule=text))
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name)
            and node.func.id == "known"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Name)
            and not node.keywords
        ):
            messages.append(Message("loader.rule_call", rule=text))
    return messages, (None if messages else tree)


def evaluate_rule(tree: ast.expr, states: Mapping[str, bool | None]) -> bool | None:
    """The rule's three-valued (Kleene) truth for one subject's component flags."""
    if isinstance(tree, ast.Name):
        return states[tree.id]
    if isinstance(tree, ast.UnaryOp):
        inner = evaluate_rule(tree.operand, states)
        return None if inner is None else not inner
    if isinstance(tree, ast.Call):
        argument = tree.args[0]
        assert isinstance(argument, ast.Name)
        return states[argument.id] is not None
    assert isinstance(tree, ast.BoolOp)
    values = [evaluate_rule(value, states) for value in tree.values]
    decisive = isinstance(tree.op, ast.Or)
    if decisive in values:
        return decisive
    return None if None in values else not decisive


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
    return list(_components_named(tree))


# Every assessment asks this of every category rule; walking the tree each time was ~10% of
# one record's assessment. Trees are the definitions' own (cached) objects, keyed by identity.
@lru_cache(maxsize=4096)
def _components_named(tree: ast.expr) -> tuple[str, ...]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id != "known" and node.id not in names:
            names.append(node.id)
    return tuple(names)
