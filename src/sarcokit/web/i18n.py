"""The interface's gettext catalogues (Babel .po files), one per language, chosen per user."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

from babel.messages.pofile import read_po

from sarcokit.i18n import Lang

LANGUAGES = ("en", "zh-CN")
LANGUAGE_NAMES = {"en": "English", "zh-CN": "中文"}
_CATALOGUE_DIRS = {"en": "en", "zh-CN": "zh_CN"}
# The core engine's reasons and next steps have their own catalogues, keyed by short codes.
CORE_LANG: dict[str, Lang] = {"en": "en", "zh-CN": "zh"}


@cache
def catalogue(language: str) -> dict[str, str]:
    """msgid → translation for one language, read from its .po file."""
    path = files("sarcokit.web").joinpath(
        f"locales/{_CATALOGUE_DIRS[language]}/LC_MESSAGES/messages.po"
    )
    with path.open("rb") as handle:
        parsed = read_po(handle)
    return {
        str(message.id): str(message.string)
        for message in parsed
        if message.id and isinstance(message.id, str) and message.string
    }


def translator(language: str) -> Callable[..., str]:
    """gettext for one language: `_("%(n)s visits", n=3)`; untranslated text stays as written."""
    table = catalogue(language if language in LANGUAGES else "en")

    def gettext(message: str, **values: Any) -> str:
        translated = table.get(message, message)
        return translated % values if values else translated

    return gettext


def best_language(accept_language: str | None) -> str:
    """The supported language an Accept-Language header prefers most."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"
