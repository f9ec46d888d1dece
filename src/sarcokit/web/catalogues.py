"""Keep the gettext catalogues complete: extract every message and merge it into the .po files.

Messages come from `_()` / `gettext()` calls in the templates and the web modules, and from the
field labels in reference/fields.toml, the labels in visit_form.toml and the role names, which
templates translate through a variable.
Run `python -m sarcokit.web.catalogues` (or `make catalogues`) after changing any of them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from sarcokit import __version__
from sarcokit.fields import field_specs
from sarcokit.web.forms import derived_labels, history_specs, secondary_results, sections
from sarcokit.web.i18n import _CATALOGUE_DIRS
from sarcokit.web.security import ROLES

_METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**.py", "python"),
]
# Texts the templates translate through a variable (answers and role names).
_FIXED = ("yes", "no", "female", "male", *ROLES)


def data_messages() -> set[str]:
    """Messages that live in data files rather than in code."""
    found = set(_FIXED)
    for section in sections():
        found.add(section.title)
        for form_field in section.fields:
            found.add(form_field.label)
            found.update(text for _, text in form_field.choices)
    found.update(spec.label for spec in field_specs().values() if spec.label)
    found.update(spec["label"] for spec in history_specs())
    found.update(shown["label"] for shown in derived_labels().values())
    for result in secondary_results():
        found.add(result.label)
        found.update(result.values.values())
    return found


Message = str | tuple[str, str]


def code_messages() -> set[Message]:
    """Messages in `_()`, `gettext()` and `ngettext()` calls of the templates and web modules;
    a plural message is its (singular, plural) pair."""
    root = Path(str(files("sarcokit.web")))
    found: set[Message] = set()
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2)}
    for _, _, message, _, _ in extract_from_dir(root, method_map=_METHODS, keywords=keywords):
        if isinstance(message, str) and message:
            found.add(message)
        elif isinstance(message, tuple) and len(message) == 2 and all(message):
            found.add((str(message[0]), str(message[1])))
    return found


def all_messages() -> set[Message]:
    """Every message the interface can show."""
    return code_messages() | set(data_messages())


def _path(language: str) -> Path:
    folder = _CATALOGUE_DIRS[language]
    return Path(str(files("sarcokit.web"))) / "locales" / folder / "LC_MESSAGES" / "messages.po"


def update() -> dict[str, int]:
    """Add new messages to every catalogue (English ones translate to themselves)."""
    messages = sorted(all_messages(), key=lambda m: m if isinstance(m, str) else m[0])
    untranslated: dict[str, int] = {}
    for language in _CATALOGUE_DIRS:
        path = _path(language)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle)
        else:
            catalog = Catalog(locale=language.replace("-", "_"))
        # The same header in every catalogue, free of the template's placeholders.
        catalog.project, catalog.version = "sarcokit", __version__
        catalog.copyright_holder = "the sarcokit contributors"
        catalog.msgid_bugs_address = ""
        catalog.last_translator = catalog.language_team = "the sarcokit contributors"
        catalog.fuzzy = False
        catalog.revision_date = catalog.creation_date
        catalog.header_comment = (
            f"# The sarcokit clinic's interface messages ({language}).\n"
            "# Maintained with `make catalogues`; a test fails when a message lacks a translation."
        )
        for message in messages:
            if message not in catalog:
                empty = ("",) * catalog.num_plurals if isinstance(message, tuple) else ""
                catalog.add(message, message if language == "en" else empty)
        for stale in [m.id for m in catalog if m.id and _key(m.id) not in messages]:
            catalog.delete(stale)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, sort_output=True, omit_header=False)
        untranslated[language] = sum(1 for m in catalog if m.id and not _translated(m.string))
    return untranslated


def _key(message_id: str | tuple[str, ...] | list[str]) -> Message:
    if isinstance(message_id, str):
        return message_id
    return (str(message_id[0]), str(message_id[1]))


def _translated(string: str | tuple[str, ...] | list[str] | None) -> bool:
    if isinstance(string, tuple | list):
        return all(string)
    return bool(string)


if __name__ == "__main__":
    for language, missing in update().items():
        print(f"{language}: {missing} untranslated")
