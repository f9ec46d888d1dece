"""Message catalogues (English and Chinese) for reasons, next steps and the terminal view."""

from __future__ import annotations

import threading
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


# Labels a local definition file brings for its own categories, components, inputs and steps.
_LOCAL_LABELS: dict[str, dict[str, str]] = {}
# Sections whose keys are ids a local definition may introduce; any other missing key is a bug.
LOCAL_SECTIONS = ("category", "component", "state", "next", "input")
# label()'s answers by (language, key), emptied whenever a local definition brings labels; how
# many times labels were registered; the lock that keeps the two in step.
_LABELS: dict[tuple[Lang, str], str] = {}
_REGISTERED = 0
_LABELS_LOCK = threading.Lock()


def register_labels(lang: str, labels: dict[str, str]) -> None:
    """Add a local definition's labels ('category.my_id' → text) for one language."""
    global _REGISTERED
    with _LABELS_LOCK:
        _LOCAL_LABELS.setdefault(lang, {}).update(labels)
        _REGISTERED += 1
        _LABELS.clear()  # a remembered fallback may now have a label of its own


def text(lang: Lang, key: str, /, **values: Any) -> str:
    """One message, formatted; a missing key is a bug and raises KeyError, except an id that a
    local definition introduced, which reads as its own label or, lacking one, as the id."""
    messages = catalogue(lang)
    if key in messages:
        return messages[key].format(**values)
    section, _, name = key.partition(".")
    if section in LOCAL_SECTIONS:
        local = _LOCAL_LABELS.get(lang, {})
        return local.get(key) or _LOCAL_LABELS.get("en", {}).get(key) or name.replace("_", " ")
    raise KeyError(key)


def label(lang: Lang, key: str) -> str:
    """A message without values (a category's, a component's, an input's name), remembered:
    every reason of every record looks up several."""
    found = _LABELS.get((lang, key))
    if found is None:
        registered = _REGISTERED
        found = text(lang, key)
        with _LABELS_LOCK:
            # Kept only if no labels were registered while it was worked out (a thread
            # rendering a reason while another loads a local definition).
            if registered == _REGISTERED:
                _LABELS[(lang, key)] = found
    return found


class Message(str):
    """A message in English that can be shown again in another language: it keeps its
    catalogue key and values (a value may itself be a Message)."""

    key: str
    values: dict[str, Any]

    def __new__(cls, message_key: str, /, **values: Any) -> Message:
        """The English text of `message_key` with `values`, remembering both."""
        made = super().__new__(cls, text("en", message_key, **values))
        made.key, made.values = message_key, values
        return made


def translated(message: str, lang: Lang) -> str:
    """A Message in `lang`; any other text as it is."""
    if not isinstance(message, Message):
        return message
    values = {
        k: translated(v, lang) if isinstance(v, str) else v for k, v in message.values.items()
    }
    return text(lang, message.key, **values)
