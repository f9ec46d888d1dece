"""Request dependencies: the database session, who is asking, and what they may do."""

# No `from __future__ import annotations`: FastAPI must see the closure's real dependency
# annotations in _requiring, which refer to a local variable.
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import polars as pl
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from sarcokit.fields import InputError
from sarcokit.web import audit, store
from sarcokit.web.config import Settings, secret_file
from sarcokit.web.export import Column
from sarcokit.web.identity import USERNAME_LENGTH, identifier, identity_key
from sarcokit.web.middleware import route_template
from sarcokit.web.models import Patient, User, Visit
from sarcokit.web.security import (
    PASSWORD_CHANGE,
    SIGN_IN,
    admit_attempt,
    clear_attempts,
    rehash_if_needed,
    session_of,
    user_of_api_token,
    verify_password,
)

SESSION_COOKIE = "sarcokit_session"
PRE_SESSION_CSRF_COOKIE = "sarcokit_csrf"


class LoginRequired(Exception):
    """A page needs a signed-in user; the handler redirects to the login page."""


@dataclass(frozen=True)
class Principal:
    """The signed-in user and, for browser sessions, the session's CSRF token."""

    user: User
    csrf: str | None

    def has(self, role: str) -> bool:
        """Whether the user holds the role."""
        return role in self.user.role_set


def settings(request: Request) -> Settings:
    """The clinic's settings."""
    found: Settings = request.app.state.settings
    return found


async def database(request: Request) -> AsyncIterator[Session]:
    """A session for the request: committed when the handler succeeds, else rolled back.

    The commit runs before the response is sent (the dependency's scope is the function, see
    Db): a client is told a write succeeded only once it is committed with its audit rows, and
    a failed commit is answered as an error.

    At most `db_slots` requests per process hold a session at once, fewer than the worker
    threads: a request holding SQLite's write lock, or the last pooled connection, can then
    always get a thread to finish and release it.
    """
    factory: sessionmaker[Session] = request.app.state.sessions
    async with request.app.state.db_slots:
        db = factory()
        try:
            yield db
            await run_in_threadpool(db.commit)
        except BaseException:
            await run_in_threadpool(db.rollback)
            raise
        finally:
            await run_in_threadpool(db.close)


Db = Annotated[Session, Depends(database, scope="function")]


def session_principal(request: Request, db: Session) -> Principal | None:
    """The user of the request's session cookie, if it belongs to a live session."""
    token = request.cookies.get(SESSION_COOKIE)
    found = session_of(db, token) if token else None
    if found is None:
        return None
    return Principal(found.user, found.csrf_token)


def optional_page_user(request: Request, db: Db) -> Principal | None:
    """The browser session's user, if signed in."""
    return session_principal(request, db)


def page_user(request: Request, db: Db) -> Principal:
    """The browser session's user; anonymous visitors are sent to the login page."""
    principal = session_principal(request, db)
    if principal is None:
        raise LoginRequired
    return principal


def api_user(request: Request) -> Principal:
    """The user a bearer token belongs to (looked up in a session of its own, closed at once)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    user = None
    if scheme.lower() == "bearer" and token:
        factory: sessionmaker[Session] = request.app.state.sessions
        with factory() as db:
            user = user_of_api_token(db, token.strip())
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Principal(user, None)


def _requiring(
    source: Callable[..., Principal], roles: tuple[str, ...]
) -> Callable[..., Principal]:
    def check(request: Request, principal: Annotated[Principal, Depends(source)]) -> Principal:
        if not any(principal.has(role) for role in roles):
            # Denials are audited in a transaction of their own: the request does no work.
            audit.record_alone(
                request.app.state.sessions,
                principal.user.id,
                "access.denied",
                "route",
                route_template(request.scope),
            )
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this needs the role {' or '.join(roles)}"
            )
        return principal

    return check


def page_role(*roles: str) -> Callable[..., Principal]:
    """A page dependency admitting users with any of the roles."""
    return _requiring(page_user, roles)


def api_role(*roles: str) -> Callable[..., Principal]:
    """An API dependency admitting token holders with any of the roles."""
    return _requiring(api_user, roles)


def client_address(request: Request) -> str:
    """The client's address, as sign-in throttling counts it."""
    return request.client.host if request.client else "unknown"


class Throttled(Exception):
    """Too many recent failed sign-ins for this username or this address."""


def _attempt_key(username: str) -> str:
    # Attempts are counted under the username's key, so `Wu` and `ｗｕ` share one count.
    try:
        name = identifier("username", username, USERNAME_LENGTH)
    except InputError:
        name = username.strip()
    return identity_key(name)[:64]


def _admit(request: Request, purpose: str, username: str) -> None:
    config = settings(request)
    window = timedelta(minutes=config.login_window_minutes)
    factory: sessionmaker[Session] = request.app.state.sessions
    key, client = _attempt_key(username), client_address(request)
    if not admit_attempt(factory, purpose, key, client, config.login_attempts, window):
        raise Throttled


def sign_in(request: Request, db: Session, username: str, password: str) -> User | None:
    """The active user with these credentials (every attempt is counted); raises Throttled."""
    try:
        _admit(request, SIGN_IN, username)
    except Throttled:
        audit.record(db, None, "auth.throttled", "user")
        raise
    user = store.user_by_name(db, username)
    if verify_password(user, password) and user is not None and user.active:
        clear_attempts(db, SIGN_IN, _attempt_key(username))
        rehash_if_needed(user, password)
        audit.record(db, user, "auth.sign_in", "user", user.id)
        return user
    # What was typed as a username may be a password: the trail keeps no text of it.
    audit.record(db, None, "auth.failure", "user")
    return None


def confirm_password(request: Request, db: Session, user: User, password: str) -> bool:
    """Whether the password is the signed-in user's; raises Throttled.

    Counted apart from sign-ins: guessing here cannot lock the user out of signing in.
    """
    _admit(request, PASSWORD_CHANGE, user.username)
    if verify_password(user, password):
        clear_attempts(db, PASSWORD_CHANGE, _attempt_key(user.username))
        return True
    return False


def patient_or_404(db: Session, principal: Principal, patient_id: int) -> Patient:
    """The patient (the read audited), or a 404 naming the id."""
    patient = store.get_patient(db, principal.user, patient_id)
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient with id {patient_id}")
    return patient


def visit_or_404(
    db: Session, principal: Principal, visit_id: int, action: str = "visit.read"
) -> Visit:
    """The visit (the read audited under `action`), or a 404 naming the id."""
    visit = store.get_visit(db, principal.user, visit_id, action)
    if visit is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no visit with id {visit_id}")
    return visit


def research_table(
    request: Request, db: Session, principal: Principal
) -> tuple[pl.DataFrame, list[Column]]:
    """The de-identified export for a researcher, pseudonymised with the clinic's key."""
    key = secret_file(settings(request).export_key_path)
    return store.export_table(db, principal.user, key)
