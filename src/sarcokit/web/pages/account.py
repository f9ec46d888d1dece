"""The signed-in user's account: language, password and API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from sarcokit.fields import InputError
from sarcokit.web import audit, store
from sarcokit.web.deps import SESSION_COOKIE, Db, Principal, Throttled, confirm_password, settings
from sarcokit.web.i18n import translator
from sarcokit.web.identity import TOKEN_NAME_LENGTH, free_text
from sarcokit.web.pages.common import Form, Signed, local_path, redirect
from sarcokit.web.security import issue_token, tokens_of
from sarcokit.web.templating import render

router = APIRouter(include_in_schema=False)


@router.post("/account/language")
def change_language(request: Request, db: Db, principal: Signed, form: Form) -> Response:
    """Switch the signed-in user's language; the page they came from is shown again."""
    principal.user.language = store.check_language(form.get("language", ""))
    return redirect(local_path(form.get("next", "/")) or "/")


def _account(
    request: Request, db: Db, principal: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    tokens = tokens_of(db, principal.user)
    return render(request, "account.html", principal, status_code, tokens=tokens, **context)


@router.get("/account")
def account(request: Request, db: Db, principal: Signed) -> HTMLResponse:
    """The user's language, password and API tokens."""
    return _account(request, db, principal)


@router.post("/account/password")
def change_password(request: Request, db: Db, principal: Signed, form: Form) -> Response:
    """Set a new password after confirming the current one; every other session and every
    API token of the user end. Wrong current passwords are throttled apart from sign-ins."""
    gettext = translator(principal.user.language)
    try:
        confirmed = confirm_password(request, db, principal.user, form.get("current", ""))
    except Throttled:
        message = gettext(
            "Too many wrong passwords. Wait %(minutes)s minutes and try again.",
            minutes=settings(request).login_window_minutes,
        )
        return _account(request, db, principal, 429, error=message)
    if not confirmed:
        return _account(
            request, db, principal, 400, error=gettext("The current password is wrong.")
        )
    try:
        store.update_user(
            db,
            principal.user,
            principal.user,
            password=form.get("password", ""),
            keep_session=request.cookies.get(SESSION_COOKIE),
        )
    except InputError as error:
        return _account(request, db, principal, 422, problems=error.problems)
    message = gettext("Password changed. Your other sessions and your API tokens have ended.")
    return _account(request, db, principal, message=message)


@router.post("/account/tokens")
def create_token(request: Request, db: Db, principal: Signed, form: Form) -> HTMLResponse:
    """A new API token, shown once."""
    try:
        name = free_text("name", form.get("name", "") or "api", TOKEN_NAME_LENGTH)
    except InputError as error:
        return _account(request, db, principal, 422, problems=error.problems)
    row, token = issue_token(db, principal.user, name)
    audit.record(db, principal.user, "token.issue", "api_token", row.id)
    return _account(request, db, principal, token=token)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, db: Db, principal: Signed, token_id: int, form: Form
) -> Response:
    """Revoke one of the user's API tokens; it stops working at once."""
    if not store.revoke_token(db, principal.user, token_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token with id {token_id}")
    return redirect("/account")
