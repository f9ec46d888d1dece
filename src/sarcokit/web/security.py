"""Passwords (argon2), bearer and session tokens (stored as SHA-256 digests), CSRF, throttling."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, joinedload

from sarcokit.web.models import ApiToken, LoginFailure, LoginSession, User

ROLES = ("admin", "clinician", "researcher")
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown username as slow as one for a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A stored time as aware UTC (SQLite returns naive values)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password has {len(password)} characters; expected at least {MIN_PASSWORD_LENGTH}"
    return None


def digest(token: str) -> str:
    """The SHA-256 digest under which a high-entropy token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode(), b.encode())


def throttled(db: Session, username: str, client: str, limit: int, window: timedelta) -> bool:
    """Whether recent failures for this username or this client reached the limit."""
    since = now() - window
    count = db.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.at >= since)
        .where(or_(LoginFailure.username == username, LoginFailure.client == client))
    )
    return (count or 0) >= limit


def authenticate(db: Session, username: str, password: str, client: str) -> User | None:
    """The active user with these credentials; a failure is recorded for throttling."""
    user = db.scalar(select(User).where(User.username == username))
    ok: bool
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if ok and user is not None and user.active:
        db.execute(delete(LoginFailure).where(LoginFailure.username == username))
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return user
    db.add(LoginFailure(username=username[:64], client=client[:64], at=now()))
    return None


def open_session(db: Session, user: User, hours: int) -> tuple[str, str]:
    """A new browser session: the cookie token and its CSRF token."""
    token, csrf = new_token(), new_token()
    db.add(
        LoginSession(
            token_hash=digest(token),
            csrf_token=csrf,
            user_id=user.id,
            expires_at=now() + timedelta(hours=hours),
        )
    )
    return token, csrf


def session_of(db: Session, token: str) -> LoginSession | None:
    """The live session a cookie token belongs to."""
    found = db.scalar(
        select(LoginSession)
        .options(joinedload(LoginSession.user))
        .where(LoginSession.token_hash == digest(token))
    )
    if found is None or aware(found.expires_at) <= now() or not found.user.active:
        return None
    return found


def close_session(db: Session, token: str) -> None:
    """End a browser session."""
    db.execute(delete(LoginSession).where(LoginSession.token_hash == digest(token)))


def issue_api_token(db: Session, user: User, name: str) -> str:
    """A new bearer token for the user; only its digest is kept."""
    token = new_token()
    db.add(ApiToken(user_id=user.id, name=name, token_hash=digest(token), created_at=now()))
    return token


def user_of_api_token(db: Session, token: str) -> User | None:
    """The active user a bearer token belongs to."""
    # One round trip: the token and its user together.
    return db.scalar(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == digest(token), ~ApiToken.revoked, User.active)
    )
