"""Passwords (argon2), bearer and session tokens (stored as SHA-256 digests), CSRF, throttling."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

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


SIGN_IN = "sign_in"
PASSWORD_CHANGE = "password"


def admit_attempt(
    factory: sessionmaker[Session],
    purpose: str,
    username: str,
    client: str,
    limit: int,
    window: timedelta,
) -> bool:
    """Count a password attempt before checking it; whether it may be checked.

    The attempt is written and committed first, in a transaction of its own, and only then
    are the attempts in the window counted. Each attempt's count therefore includes every
    attempt committed before it, so of any number of concurrent attempts at most `limit`
    see a count within the limit: no more than `limit` passwords are ever verified, on SQLite
    and PostgreSQL alike. The row stays as the failure if the password proves wrong; a
    refused attempt removes its own row (it checked nothing), and a success clears them.
    """
    keyed, origin = username[:64], client[:64]
    with factory() as db, db.begin():
        row = LoginFailure(username=keyed, client=origin, at=now(), purpose=purpose)
        db.add(row)
    since = now() - window
    counted = LoginFailure.username == keyed
    if purpose == SIGN_IN:
        counted = or_(counted, LoginFailure.client == origin)
    with factory() as db, db.begin():
        count = db.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.at >= since, LoginFailure.purpose == purpose, counted)
        )
        if (count or 0) <= limit:
            return True
        db.execute(delete(LoginFailure).where(LoginFailure.id == row.id))
    return False


def verify_password(user: User | None, password: str) -> bool:
    """Whether the password is the user's (as slow for an unknown user as for a known one)."""
    try:
        return bool(_hasher.verify(user.password_hash if user else _DUMMY_HASH, password))
    except (VerificationError, InvalidHashError):
        return False


def clear_attempts(db: Session, purpose: str, username: str) -> None:
    """Forget a username's counted attempts of one kind (after a success)."""
    db.execute(
        delete(LoginFailure).where(
            LoginFailure.username == username[:64], LoginFailure.purpose == purpose
        )
    )


def rehash_if_needed(user: User, password: str) -> None:
    """Store a fresh hash when the password was hashed at a cost below today's."""
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)


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


def issue_token(db: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new bearer token for the user and its secret; only the secret's digest is kept."""
    token = new_token()
    row = ApiToken(user_id=user.id, name=name, token_hash=digest(token), created_at=now())
    db.add(row)
    db.flush()
    return row, token


def issue_api_token(db: Session, user: User, name: str) -> str:
    """A new bearer token for the user; only its digest is kept."""
    return issue_token(db, user, name)[1]


def tokens_of(db: Session, user: User) -> list[ApiToken]:
    """The user's API tokens, newest first (their secrets are not kept)."""
    return list(
        db.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc()))
    )


def token_of(db: Session, user: User, token_id: int) -> ApiToken | None:
    """One of the user's tokens by id (another user's token is not found)."""
    if not 0 < token_id <= 2**31 - 1:
        return None
    return db.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id))


def user_of_api_token(db: Session, token: str) -> User | None:
    """The active user a bearer token belongs to."""
    # One round trip: the token and its user together.
    return db.scalar(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == digest(token), ~ApiToken.revoked, User.active)
    )
