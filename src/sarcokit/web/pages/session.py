"""First run, signing in and out, the sign-in pages' language, and each role's start page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sarcokit.fields import InputError
from sarcokit.web import audit, store
from sarcokit.web.config import secret_file
from sarcokit.web.deps import SESSION_COOKIE, Db, Throttled, settings, sign_in
from sarcokit.web.i18n import LANGUAGES, translator
from sarcokit.web.pages.common import (
    NEXT_COOKIE,
    Form,
    Maybe,
    PreSessionForm,
    SetupForm,
    Signed,
    local_path,
    pre_session_page,
    problems_of,
    readable,
    redirect,
    set_session_cookie,
    status_of,
)
from sarcokit.web.security import close_session, open_session, same
from sarcokit.web.templating import LANGUAGE_COOKIE

router = APIRouter(include_in_schema=False)


@router.get("/setup")
def setup_page(request: Request, db: Db) -> Response:
    """First run: create the administrator with the setup code printed at start-up."""
    if store.count_users(db):
        return redirect("/login")
    return pre_session_page(request, "setup.html", path=str(settings(request).setup_code_path))


@router.post("/setup")
def setup(request: Request, db: Db, form: SetupForm) -> Response:
    """Create the first administrator (who is also a clinician) and sign them in."""
    if store.count_users(db):
        return redirect("/login")
    config = settings(request)
    code = secret_file(config.setup_code_path, 12)
    gettext = translator(form.get("language", "en"))
    if not same(code, form.get("setup_code", "").strip()):
        return pre_session_page(
            request,
            "setup.html",
            400,
            path=str(config.setup_code_path),
            error=gettext("The setup code is wrong."),
            values=form,
        )
    try:
        readable(form)
        user = store.create_user(
            db,
            None,
            form.get("username", ""),
            form.get("display_name", ""),
            form.get("password", ""),
            ["admin", "clinician"],
            form.get("language", "en"),
        )
    except (InputError, store.Conflict) as error:
        return pre_session_page(
            request,
            "setup.html",
            status_of(error),
            path=str(config.setup_code_path),
            problems=problems_of(error),
            values=form,
        )
    config.setup_code_path.unlink(missing_ok=True)
    token, _ = open_session(db, user, config.session_hours)
    response = redirect("/")
    set_session_cookie(response, request, token)
    return response


@router.get("/login")
def login_page(request: Request, db: Db, principal: Maybe) -> Response:
    """The sign-in form (or the first-run page when no account exists)."""
    if principal is not None:
        return redirect("/")
    if not store.count_users(db):
        return redirect("/setup")
    return pre_session_page(request, "login.html")


@router.post("/login")
def login(request: Request, db: Db, form: PreSessionForm) -> Response:
    """Sign in; repeated failures from one address or for one username are throttled."""
    config = settings(request)
    username = form.get("username", "").strip()
    gettext = translator(request.cookies.get(LANGUAGE_COOKIE, "en"))
    try:
        user = sign_in(request, db, username, form.get("password", ""))
    except Throttled:
        message = gettext(
            "Too many failed sign-ins. Wait %(minutes)s minutes and try again.",
            minutes=config.login_window_minutes,
        )
        return pre_session_page(request, "login.html", 429, error=message, username=username)
    if user is None:
        return pre_session_page(
            request,
            "login.html",
            401,
            error=gettext("Unknown username or wrong password."),
            username=username,
        )
    token, _ = open_session(db, user, config.session_hours)
    response = redirect(local_path(request.cookies.get(NEXT_COOKIE, "")) or "/")
    response.delete_cookie(NEXT_COOKIE, path="/")
    set_session_cookie(response, request, token)
    return response


@router.post("/logout")
def logout(request: Request, db: Db, principal: Signed, form: Form) -> Response:
    """Sign out."""
    close_session(db, request.cookies.get(SESSION_COOKIE, ""))
    audit.record(db, principal.user, "auth.sign_out", "user", principal.user.id)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/language/{language}")
def anonymous_language(language: str) -> Response:
    """Choose the language of the sign-in pages (signed-in users set it in their account)."""
    response = redirect("/login")
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, samesite="strict", httponly=True)
    return response


@router.get("/")
def home(principal: Signed) -> Response:
    """Each role's starting page."""
    if principal.has("clinician"):
        return redirect("/patients")
    if principal.has("researcher"):
        return redirect("/research")
    return redirect("/admin")
