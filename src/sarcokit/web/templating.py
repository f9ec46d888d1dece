"""Jinja templates rendered in the reader's language."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from sarcokit import __version__
from sarcokit.i18n import text as core_text
from sarcokit.reasons import definition_name
from sarcokit.web.deps import Principal
from sarcokit.web.forms import field_label, problem_text
from sarcokit.web.i18n import (
    CORE_LANG,
    LANGUAGE_NAMES,
    LANGUAGES,
    best_language,
    plural_translator,
    translator,
)

LANGUAGE_COOKIE = "sarcokit_lang"


@cache
def templates() -> Jinja2Templates:
    """The template set; autoescaping is on for every HTML template."""
    from importlib.resources import files

    return Jinja2Templates(directory=str(files("sarcokit.web").joinpath("templates")))


def language_of(request: Request, principal: Principal | None) -> str:
    """The signed-in user's language, else the visitor's cookie or browser preference."""
    if principal is not None:
        return principal.user.language
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return best_language(request.headers.get("accept-language"))


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    status_code: int = 200,
    csrf: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in the reader's language, with the CSRF token its forms carry."""
    language = language_of(request, principal)
    return templates().TemplateResponse(
        request,
        name,
        {
            **base_context(language),
            "principal": principal,
            "csrf": csrf or (principal.csrf if principal else ""),
            **context,
        },
        status_code=status_code,
    )


def base_context(language: str) -> dict[str, Any]:
    """What every template sees: gettext, the core engine's texts, the language."""
    core = CORE_LANG[language]
    gettext = translator(language)
    return {
        "_": gettext,
        "ngettext": plural_translator(language),
        "field_label": lambda name: field_label(name, gettext, language),
        "problem_text": lambda problem: problem_text(problem, gettext, language),
        "core": lambda key, **values: core_text(core, key, **values),
        # A definition's name in the reader's language (its criteria file's labels).
        "definition_name": lambda definition_id: definition_name(definition_id, core),
        "lang": language,
        "core_lang": core,
        "languages": LANGUAGE_NAMES,
        "version": __version__,
        "static": "/static/",
    }


def render_text(name: str, language: str, **context: Any) -> str:
    """A template rendered to text outside a request (the PDF report)."""
    template = templates().env.get_template(name)
    return template.render({**base_context(language), "principal": None, "csrf": "", **context})
