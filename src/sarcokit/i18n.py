"""Message catalogues (English and Chinese) for reasons, next steps and the terminal view."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from typing import Any, Literal

Lang = Literal["en", "zh"]
LANGUAGES: tuple[Lang, ...] = ("en", "zh")


@cache
def catalogue(lang: Lang) -> dict[str, str]:
    """All messages of one language, keyed 'section.name'."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang={lang!r}; expected one of {', '.join(LANGUAGES)}")
    raw = tomllib.loads(files("sarcokit").joinpath(f"locales/{lang}.toml").read_text("utf-8"))
    return {
        f"{section}.{key}": value
        for section, entries in raw.items()
        for key, value in entries.items()
    }


def text(lang: Lang, key: str, **values: Any) -> str:
    """One message, formatted; a missing key is a bug and raises KeyError."""
    return catalogue(lang)[key].format(**values)
