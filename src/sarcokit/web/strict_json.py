"""A strict reading of JSON request bodies, applied before FastAPI reads them.

Python's json module accepts what JSON (RFC 8259) does not, or what no clinical record needs:
NaN and ±Infinity, numbers that overflow to infinity (1e309), integers of thousands of digits,
duplicate keys (the last silently wins), lone surrogates ("\\ud800", which cannot be stored or
encoded) and nesting deep enough to exhaust the stack. Each is refused with a 422 naming where
in the body it is, before any handler runs, so nothing of such a body is stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from sarcokit.fields import Problem

MAX_DEPTH = 32
# No field of the clinic takes an integer near this many digits (a record id is 10).
MAX_INTEGER_DIGITS = 18
MAX_PROBLEMS = 20
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused:
    """A value the reader refused, kept in place so the walk can name where it was."""

    def __init__(self, value: str, expected: str, why: str) -> None:
        self.value, self.expected, self.why = value, expected, why


class _DuplicateKeys(dict[str, Any]):
    """An object that named some keys more than once."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    repeated = [key for key, _ in pairs if key in seen or seen.add(key)]  # type: ignore[func-returns-value]
    if not repeated:
        return dict(pairs)
    found = _DuplicateKeys(pairs)
    found.duplicates = list(dict.fromkeys(repeated))
    return found


def _constant(text: str) -> _Refused:
    return _Refused(text, "a finite number", "NaN and infinities are not numbers in JSON")


def _float(text: str) -> float | _Refused:
    value = float(text)
    if not math.isfinite(value):
        return _Refused(text[:40], "a finite number", "the number is too large")
    return value


def _int(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        return _Refused(
            f"{text[:20]}… ({digits} digits)",
            f"an integer of at most {MAX_INTEGER_DIGITS} digits",
            f"the integer has {digits} digits",
        )
    return int(text)


def _problem(field: str, value: Any, expected: str, why: str) -> Problem:
    return Problem(field, value, expected, f"{field}: {why}; expected {expected}")


def _walk(document: Any) -> list[Problem]:
    problems: list[Problem] = []
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack and len(problems) < MAX_PROBLEMS:
        path, value, depth = stack.pop()
        name = path or "body"
        if depth > MAX_DEPTH:
            problems.append(
                _problem(name, None, f"nesting at most {MAX_DEPTH} deep", "nested too deeply")
            )
            continue
        if isinstance(value, _Refused):
            problems.append(_problem(name, value.value, value.expected, value.why))
        elif isinstance(value, str):
            if _SURROGATE.search(value):
                problems.append(
                    _problem(name, None, "text of valid Unicode characters", "a lone surrogate")
                )
        elif isinstance(value, dict):
            for key in getattr(value, "duplicates", []):
                problems.append(
                    _problem(
                        f"{path}.{key}" if path else key,
                        None,
                        "each key at most once",
                        "the key is given more than once",
                    )
                )
            for key, item in reversed(list(value.items())):
                if _SURROGATE.search(key):
                    problems.append(
                        _problem(name, None, "keys of valid Unicode characters", "a lone surrogate")
                    )
                    continue
                stack.append((f"{path}.{key}" if path else key, item, depth + 1))
        elif isinstance(value, list):
            for index in reversed(range(len(value))):
                stack.append((f"{path}.{index}" if path else str(index), value[index], depth + 1))
    return problems


def body_problems(raw: bytes) -> list[Problem]:
    """Why a request body is not acceptable JSON (empty when it is)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return [_problem("body", None, "a JSON document in UTF-8", f"not UTF-8 ({error.reason})")]
    try:
        document = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except RecursionError:
        return [_problem("body", None, f"nesting at most {MAX_DEPTH} deep", "nested too deeply")]
    except (json.JSONDecodeError, ValueError) as error:
        return [_problem("body", None, "a JSON document", f"not JSON ({error})")]
    return _walk(document)
