"""The interface's gettext catalogues (Babel .po files), one per language, chosen per user."""

from __future__ import annotations

import gettext as gnu
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from sarcokit.i18n import Lang

LANGUAGES = ("en", "zh-CN")
LANGUAGE_NAMES = {"en": "English", "zh-CN": "中文"}
_CATALOGUE_DIRS = {"en": "en", "zh-CN": "zh_CN"}
# The core engine's reasons and next steps have their own catalogues, keyed by short codes.
CORE_LANG: dict[str, Lang] = {"en": "en", "zh-CN": "zh"}


@cache
def _parsed(language: str) -> Catalog:
    path = files("sarcokit.web").joinpath(
        f"locales/{_CATALOGUE_DIRS[language]}/LC_MESSAGES/messages.po"
    )
    with path.open("rb") as handle:
        return read_po(handle)


@cache
def catalogue(language: str) -> dict[str, str]:
    """msgid → translation for one language, read from its .po file."""
    return {
        str(message.id): str(message.string)
        for message in _parsed(language)
        if message.id and isinstance(message.id, str) and message.string
    }


@cache
def plural_catalogue(language: str) -> dict[str, tuple[str, ...]]:
    """singular msgid → its translated forms (as many as the language has), for plurals."""
    return {
        str(message.id[0]): tuple(str(form) for form in message.string)
        for message in _parsed(language)
        if isinstance(message.id, tuple | list)
        and isinstance(message.string, tuple | list)
        and all(message.string)
    }


@cache
def plural_rule(language: str) -> Callable[[int], int]:
    """Which plural form a count takes, from the catalogue's Plural-Forms header."""
    return gnu.c2py(_parsed(language).plural_expr)


def plural_translator(language: str) -> Callable[..., str]:
    """ngettext for one language: `ngettext("%(n)s visit", "%(n)s visits", 3, n=3)`."""
    chosen = language if language in LANGUAGES else "en"
    table, rule = plural_catalogue(chosen), plural_rule(chosen)

    def ngettext(singular: str, plural: str, count: int, **values: Any) -> str:
        forms = table.get(singular)
        if forms:
            text = forms[min(rule(count), len(forms) - 1)]
        else:
            text = singular if count == 1 else plural  # untranslated: stays as written
        return text % values if values else text

    return ngettext


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
