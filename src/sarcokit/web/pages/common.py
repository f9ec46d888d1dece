"""What every page module shares: who may see a page, the posted form and its CSRF check,
redirects, and the problems a refused form shows beside its fields."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from sarcokit.fields import InputError, Problem
from sarcokit.web import store
from sarcokit.web.deps import (
    PRE_SESSION_CSRF_COOKIE,
    SESSION_COOKIE,
    Db,
    Principal,
    optional_page_user,
    page_role,
    page_user,
    settings,
)
from sarcokit.web.security import new_token, same
from sarcokit.web.templating import render

Signed = Annotated[Principal, Depends(page_user)]
Maybe = Annotated[Principal | None, Depends(optional_page_user)]
Clinician = Annotated[Principal, Depends(page_role("clinician"))]
Researcher = Annotated[Principal, Depends(page_role("researcher"))]
Admin = Annotated[Principal, Depends(page_role("admin"))]

# Where to go after signing in, when a page sent the visitor to sign in first (a SMART launch).
NEXT_COOKIE = "sarcokit_next"


class FormIn(dict[str, str]):
    """A posted form's fields, and why some of them could not be read."""

    problems: list[Problem]


async def read_form(request: Request) -> FormIn:
    """The posted form's text fields; a repeated field or bytes not in UTF-8 become problems."""
    data = await request.form()
    form = FormIn()
    form.problems = []
    for key, value in data.multi_items():
        if not isinstance(value, str):
            continue
        if key in form:
            # Which of two values was meant cannot be known; neither is taken.
            form.problems.append(
                Problem(key, None, "the field once", f"{key} is given more than once")
            )
        elif "\ufffd" in value:
            # The form decoder puts U+FFFD where the bytes were not UTF-8 (a lone surrogate).
            form.problems.append(
                Problem(key, None, "text in UTF-8", f"{key} holds bytes that are not UTF-8")
            )
        form[key] = value
    return form


RawForm = Annotated[FormIn, Depends(read_form)]


def check_csrf(expected: str | None, form: FormIn, shows_problems: bool = False) -> None:
    """Refuse a forged form (403); a form that could not be read is refused (422) unless the
    route shows its problems beside the fields (`shows_problems`)."""
    given = form.get("csrf_token", "")
    if not expected or not given or not same(expected, given):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form's CSRF token is missing or stale")
    if form.problems and not shows_problems:
        raise HTTPException(422, form.problems[0].message)


# The CSRF check as dependencies. A route lists its role dependency before its form, so a user
# without the role is refused (and the refusal audited) before the form is looked at; both
# share the one session lookup (FastAPI resolves `page_user` once per request).


def _signed_form(form: RawForm, principal: Signed) -> FormIn:
    check_csrf(principal.csrf, form)
    return form


def _signed_form_shown(form: RawForm, principal: Signed) -> FormIn:
    check_csrf(principal.csrf, form, shows_problems=True)
    return form


def _pre_session_form(request: Request, form: RawForm) -> FormIn:
    check_csrf(request.cookies.get(PRE_SESSION_CSRF_COOKIE), form)
    return form


def _setup_form(request: Request, db: Db, form: RawForm) -> FormIn:
    # Once an account exists the setup route only redirects, reading nothing of the form.
    if not store.count_users(db):
        check_csrf(request.cookies.get(PRE_SESSION_CSRF_COOKIE), form, shows_problems=True)
    return form


# A signed-in user's form, its CSRF token checked; a form that could not be read is refused.
Form = Annotated[FormIn, Depends(_signed_form)]
# The same, for routes that show a form's problems beside its fields.
ShownForm = Annotated[FormIn, Depends(_signed_form_shown)]
# A form posted before a session exists (sign-in), checked against the double-submit cookie.
PreSessionForm = Annotated[FormIn, Depends(_pre_session_form)]
# The first-run form (checked while setup is still open).
SetupForm = Annotated[FormIn, Depends(_setup_form)]


def redirect(url: str) -> RedirectResponse:
    """A 303 to the URL (the answer to a POST that succeeded)."""
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def local_path(text: str) -> str | None:
    """The text when it is a path on this site; None for anything a browser could follow off-site
    (`//host`, `/\\host`) or that is not a plain printable path."""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return None
    return text if text.isprintable() and " " not in text else None


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    """Give the browser its session cookie."""
    config = settings(request)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=config.session_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=config.cookie_secure,
        path="/",
    )


def pre_session_page(
    request: Request, name: str, status_code: int = 200, **context: Any
) -> Response:
    """A page shown before sign-in; its forms' CSRF uses a double-submit cookie."""
    token = request.cookies.get(PRE_SESSION_CSRF_COOKIE) or new_token()
    response = render(request, name, None, status_code=status_code, csrf=token, **context)
    response.set_cookie(
        PRE_SESSION_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings(request).cookie_secure,
    )
    return response


def problems_of(error: Exception) -> list[Problem]:
    """The problems a refused form shows beside its fields."""
    if isinstance(error, InputError):
        return error.problems
    if isinstance(error, store.Conflict):
        return [Problem(error.field, error.value, error.expected, str(error))]
    return [Problem("form", None, "", str(error))]


def status_of(error: Exception) -> int:
    """409 for a clash with a stored record, 422 for a refused value."""
    return status.HTTP_409_CONFLICT if isinstance(error, store.Conflict) else 422


def readable(form: FormIn) -> None:
    """Raise the problems met reading the form, to show them beside their fields."""
    if form.problems:
        raise InputError(form.problems)
