"""Administration: accounts, the clinic's settings and definitions, voided visits, the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from sarcokit.definitions import DEFINITION_IDS
from sarcokit.fields import InputError
from sarcokit.web import store
from sarcokit.web.api import forget_definitions, local_definitions_out, uploaded_file
from sarcokit.web.deps import Db, Principal
from sarcokit.web.i18n import CORE_LANG, translator
from sarcokit.web.pages.common import (
    Admin,
    Form,
    ShownForm,
    problems_of,
    readable,
    redirect,
    status_of,
)
from sarcokit.web.security import ROLES
from sarcokit.web.templating import render

router = APIRouter(include_in_schema=False)


def _admin_page(
    request: Request, db: Db, principal: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        "admin.html",
        principal,
        status_code,
        users=store.users(db),
        roles=ROLES,
        definition_ids=_offered(db),
        definitions=store.definition_lookup(db),
        chosen=store.clinic_definitions(db),
        clinic_name=store.clinic_name(db),
        clinic_name_length=store.CLINIC_NAME_LENGTH,
        uploads=local_definitions_out(db),
        max_definition_kib=store.MAX_DEFINITION_BYTES // 1024,
        **context,
    )


def _offered(db: Db) -> list[str]:
    # Built-in definitions, then the uploaded ones with a version in use.
    return [*DEFINITION_IDS, *sorted(store.current_local(db))]


@router.get("/admin")
def admin(request: Request, db: Db, principal: Admin, created: str = "") -> HTMLResponse:
    """Accounts and clinic settings; after an account was created, a line confirming it."""
    # Only a redirect sets `created`; anything else in it just shows the page.
    made = (
        store.user_by_id(db, int(created))
        if created.isascii() and created.isdigit() and len(created) < 12
        else None
    )
    if made is None:
        return _admin_page(request, db, principal)
    gettext = translator(principal.user.language)
    roles = ", ".join(gettext(r) for r in ROLES if r in made.role_set)
    message = gettext(
        "Account %(username)s created (%(roles)s).", username=made.username, roles=roles
    )
    return _admin_page(request, db, principal, message=message)


@router.post("/admin/users")
def admin_create_user(request: Request, db: Db, principal: Admin, form: ShownForm) -> Response:
    """Create an account."""
    roles = [r for r in ROLES if form.get(f"role_{r}")]
    try:
        readable(form)
        user = store.create_user(
            db,
            principal.user,
            form.get("username", ""),
            form.get("display_name", ""),
            form.get("password", ""),
            roles,
            form.get("language", "en"),
        )
    except (InputError, store.Conflict) as error:
        return _admin_page(
            request, db, principal, status_of(error), problems=problems_of(error), values=form
        )
    # Redirected (a reload does not post again); the page names the account just made.
    return redirect(f"/admin?created={user.id}")


@router.post("/admin/users/{user_id}")
def admin_change_user(
    request: Request, db: Db, principal: Admin, user_id: int, form: ShownForm
) -> Response:
    """Change an account's roles or status, or set a new password."""
    user = store.user_by_id(db, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user with id {user_id}")
    try:
        readable(form)
        store.update_user(
            db,
            principal.user,
            user,
            roles=[r for r in ROLES if form.get(f"role_{r}")],
            active=form.get("active") == "on",
            password=form.get("password") or None,
        )
    except (InputError, store.Conflict) as error:
        return _admin_page(request, db, principal, status_of(error), problems=problems_of(error))
    return redirect("/admin")


@router.post("/admin/settings")
def admin_settings(request: Request, db: Db, principal: Admin, form: Form) -> Response:
    """Choose the clinic's definitions (the lead one comes first) and the name its reports carry."""
    lead = form.get("lead", "")
    others = [d for d in _offered(db) if form.get(f"definition_{d}") and d != lead]
    try:
        # The name is checked before anything is stored, so a refused form changes nothing.
        name = store.check_clinic_name(form["clinic_name"]) if "clinic_name" in form else None
        store.set_clinic_definitions(db, principal.user, [lead, *others] if lead else others)
        if name is not None:
            store.set_clinic_name(db, principal.user, name)
        forget_definitions(request)
    except InputError as error:
        return _admin_page(request, db, principal, 422, problems=error.problems, values=form)
    return redirect("/admin")


@router.post("/admin/definitions")
async def admin_upload_definition(
    request: Request, db: Db, principal: Admin, form: Form
) -> Response:
    """Upload a local definition file; a file with problems is shown back with every one."""
    refused: InputError | None = None
    try:
        raw, filename = await uploaded_file(request)
    except InputError as missing:
        raw, filename, refused = b"", "", missing

    def stored() -> Response:
        try:
            if refused is not None:
                raise refused
            language = CORE_LANG[principal.user.language]
            store.upload_definition(db, principal.user, raw, filename, language)
        except (InputError, store.Conflict) as error:
            return _admin_page(
                request,
                db,
                principal,
                status_of(error),
                problems=problems_of(error),
                refused=filename or None,
            )
        forget_definitions(request)
        return redirect("/admin#definitions")

    return await run_in_threadpool(stored)


@router.post("/admin/definitions/{upload_id}/retire")
def admin_retire_definition(
    request: Request, db: Db, principal: Admin, upload_id: int, form: Form
) -> Response:
    """Retire one uploaded version (it stays stored; old visits still show it)."""
    try:
        retired = store.retire_definition(db, principal.user, upload_id)
    except store.Conflict as error:
        return _admin_page(request, db, principal, 409, problems=problems_of(error))
    if retired is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no uploaded definition {upload_id}")
    forget_definitions(request)
    return redirect("/admin#definitions")


@router.get("/admin/voided")
def admin_voided(request: Request, db: Db, principal: Admin) -> HTMLResponse:
    """Voided visits: what they recorded, who voided them, when and why."""
    visits = store.all_voided_visits(db, principal.user)
    names = store.usernames(db)
    return render(request, "voided.html", principal, visits=visits, names=names)


@router.get("/admin/audit")
def admin_audit(request: Request, db: Db, principal: Admin) -> HTMLResponse:
    """The newest audit events."""
    events = store.audit_events(db, principal.user, 200)
    names = store.usernames(db)
    return render(request, "audit.html", principal, events=events, names=names)
