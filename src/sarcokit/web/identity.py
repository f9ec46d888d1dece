"""Identifiers and free text: one stored form, one comparison key, bounded lengths.

Decisions (README, "Identifiers"):
- An identifier (record number, username) is stored Unicode NFKC-normalised and trimmed, so a
  full-width `ＭＲＮ－０００１` is stored as `MRN-0001`.
- Zero-width characters (U+200B/C/D, U+2060, U+FEFF) are invisible and are removed: a record
  number pasted with one is the same record number.
- Control characters, bidirectional controls and other format or unassigned characters are
  refused, naming the field: they can make two different identifiers look the same.
- Identifiers are compared by their key: the NFKC form case-folded, kept in a column with a
  unique index so the database itself refuses a duplicate.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sarcokit.fields import InputError, Problem

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Control, format, surrogate, private-use and unassigned characters.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Line breaks and tabs are allowed in multi-line text (reasons), nowhere else.
_MULTILINE = frozenset("\n\r\t")

RECORD_NUMBER_LENGTH = 64
USERNAME_LENGTH = 64
NAME_LENGTH = 200
REASON_LENGTH = 500
TOKEN_NAME_LENGTH = 100
PASSWORD_LENGTH = 1024


def shown(value: str) -> str:
    """A refused text as it can be echoed safely: control and lone surrogate characters escaped."""
    return "".join(
        c
        if unicodedata.category(c) not in _REFUSED_CATEGORIES
        else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in value
    )


def _refuse(field: str, value: Any, expected: str, why: str) -> InputError:
    return InputError([Problem(field, value, expected, f"{field} = {value!r}: {why}")])


def _bad_characters(text: str, multiline: bool) -> list[str]:
    return [
        c
        for c in text
        if (c in BIDI_CONTROLS or unicodedata.category(c) in _REFUSED_CATEGORIES)
        and not (multiline and c in _MULTILINE)
    ]


def identifier(field: str, raw: str, max_length: int) -> str:
    """The identifier as stored (NFKC, trimmed, zero-width removed); control or bidi refused."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(c for c in text if c not in ZERO_WIDTH).strip()
    expected = f"1 to {max_length} characters, without control or bidirectional characters"
    bad = _bad_characters(text, multiline=False)
    if bad:
        names = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(bad))
        raise _refuse(field, shown(raw), expected, f"holds the invisible character(s) {names}")
    if not text or len(text) > max_length:
        raise _refuse(field, text[:80], expected, f"has {len(text)} characters")
    return text


def identity_key(text: str) -> str:
    """The comparison key of a stored identifier: its NFKC form, case-folded."""
    return unicodedata.normalize("NFKC", text.casefold())


def free_text(
    field: str, raw: str, max_length: int, *, required: bool = True, multiline: bool = False
) -> str:
    """Free text trimmed and bounded; control characters (but line breaks if multiline) refused."""
    text = raw.strip()
    lower = 1 if required else 0
    expected = f"{lower} to {max_length} characters of text"
    bad = _bad_characters(text, multiline)
    if bad:
        names = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(bad))
        raise _refuse(field, shown(raw[:80]), expected, f"holds the control character(s) {names}")
    if len(text) > max_length or (required and not text):
        raise _refuse(field, shown(text[:80]), expected, f"has {len(text)} characters")
    return text
