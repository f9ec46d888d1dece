"""The clinic's tables. Schema changes go through Alembic migrations, never create_all."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of the clinic schema."""


# SQLite's AUTOINCREMENT never hands out an id again, not even the id of a row whose insert was
# rolled back or of the highest row after it was removed; PostgreSQL's sequences never do.
_NEVER_REUSE: dict[str, Any] = {"sqlite_autoincrement": True}


class User(Base):
    """An account: roles are a comma-separated subset of admin, clinician, researcher."""

    __tablename__ = "users"
    __table_args__ = _NEVER_REUSE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # The username's comparison key (identity.identity_key): unique, so `Wu` and `wu` clash.
    username_key: Mapped[str] = mapped_column(
        String(255), unique=True, index=True, server_default=""
    )
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    @property
    def role_set(self) -> frozenset[str]:
        """The user's roles."""
        return frozenset(r for r in self.roles.split(",") if r)


class ApiToken(Base):
    """A bearer token; only its SHA-256 digest is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = _NEVER_REUSE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(default=False)
    user: Mapped[User] = relationship()


class LoginSession(Base):
    """A browser session; the cookie holds the token, the table its digest."""

    __tablename__ = "login_sessions"
    __table_args__ = _NEVER_REUSE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class LoginFailure(Base):
    """A failed login, kept to throttle guessing by username and by client address."""

    __tablename__ = "login_failures"
    __table_args__ = _NEVER_REUSE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Sign-ins and password changes are counted apart: failed password changes must not lock
    # their user out of signing in.
    purpose: Mapped[str] = mapped_column(String(16), server_default="sign_in")


class Setting(Base):
    """A clinic setting, stored as JSON."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Patient(Base):
    """A patient of the clinic."""

    __tablename__ = "patients"
    __table_args__ = _NEVER_REUSE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_number: Mapped[str] = mapped_column(String(64), unique=True)
    # The record number's comparison key (identity.identity_key): `MRN-0001`, `mrn-0001` and
    # the full-width form share it, and the unique index refuses the second of them.
    record_key: Mapped[str] = mapped_column(String(255), unique=True, index=True, server_default="")
    name: Mapped[str] = mapped_column(String(200))
    sex: Mapped[str] = mapped_column(String(8))
    date_of_birth: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    visits: Mapped[list[Visit]] = relationship(
        back_populates="patient", order_by="(Visit.visit_date, Visit.id)"
    )


class VisitContent:
    """What a visit records, in a visit and in each superseded version of it."""

    visit_date: Mapped[date] = mapped_column(Date)
    measurements: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The result (English) and engine version when the version was saved, kept for the record.
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    definitions: Mapped[list[str]] = mapped_column(JSON)
    engine_version: Mapped[str] = mapped_column(String(32))


class Visit(VisitContent, Base):
    """A visit: the measurements as entered (subject-record fields) and the result at saving."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_patient_date", "patient_id", "visit_date"), _NEVER_REUSE)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    patient: Mapped[Patient] = relationship(back_populates="visits")
    revisions: Mapped[list[VisitRevision]] = relationship(order_by="VisitRevision.id")
    void: Mapped[VisitVoid | None] = relationship(lazy="selectin")

    @property
    def voided(self) -> bool:
        """Whether the visit was voided (entered by mistake); it is kept, never deleted."""
        return self.void is not None


class VisitVoid(Base):
    """A visit entered by mistake: when, by whom and why it was voided."""

    __tablename__ = "visit_voids"
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), primary_key=True)
    voided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    voided_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)


class VisitRevision(VisitContent, Base):
    """A superseded version of a visit, kept when the visit is corrected, with who and why."""

    __tablename__ = "visit_revisions"
    __table_args__ = _NEVER_REUSE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replaced_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    replacer: Mapped[User] = relationship(lazy="joined")


class AuditEvent(Base):
    """Who read or wrote which patient data, when. Rows can be added, never changed.

    Each row carries its place in the chain (`seq`), the hash of the row before it and its own
    hash over both (see audit.chain_hash), so an edited, removed or inserted row is evident.
    """

    __tablename__ = "audit_log"
    __table_args__ = _NEVER_REUSE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The end of the audit chain: one row, locked by every transaction that appends to it."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class LocalDefinition(Base):
    """One uploaded version of a local definition file: the exact text, never changed or
    removed (triggers refuse both), so every visit can be traced to the text that produced it.

    A newer upload of the same definition id is a new row; the clinic uses the newest row of
    each id that is not retired.
    """

    __tablename__ = "local_definitions"
    __table_args__ = (
        Index("ix_local_definitions_definition", "definition_id", "sha256"),
        _NEVER_REUSE,
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploader: Mapped[User] = relationship(foreign_keys=[uploaded_by], lazy="joined")

    @property
    def retired(self) -> bool:
        """Whether an administrator withdrew this version (it stays stored)."""
        return self.retired_at is not None


class PatientIdentifier(Base):
    """An EHR's identifier (system and value) of a clinic patient, linked at a SMART launch."""

    __tablename__ = "patient_identifiers"
    __table_args__ = (
        UniqueConstraint("system", "value", name="uq_patient_identifiers_system_value"),
        _NEVER_REUSE,
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    system: Mapped[str] = mapped_column(String(500))
    value: Mapped[str] = mapped_column(String(200))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    linked_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class SmartLaunch(Base):
    """One SMART on FHIR EHR launch: the state and PKCE verifier until the callback (single use),
    then the access token (encrypted), the EHR patient, and the visit saved from it with the state
    of its write-back to the EHR."""

    __tablename__ = "smart_launches"
    __table_args__ = _NEVER_REUSE
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Digests only: the state travels through the EHR, the handle names the launch in URLs.
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    handle_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The PKCE code verifier, erased once the code is exchanged.
    verifier: Mapped[str] = mapped_column(String(128))
    iss: Mapped[str] = mapped_column(String(500))
    launch: Mapped[str] = mapped_column(String(500))
    token_endpoint: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    access_token: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scope: Mapped[str] = mapped_column(Text, default="")
    fhir_patient: Mapped[str | None] = mapped_column(String(64))
    # What the launch page read from the EHR: the Patient's identity and the pre-filled values
    # with their sources, so saving the visit does not depend on the EHR answering again.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), unique=True)
    # "" (no visit yet), "pending", "written" or "failed".
    write_back: Mapped[str] = mapped_column(String(16), default="")
    write_back_detail: Mapped[str] = mapped_column(Text, default="")
    write_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
