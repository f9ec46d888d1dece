"""The append-only, hash-chained audit log of every read and write of patient data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import event as orm_event
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sarcokit.web.models import AuditEvent, AuditHead, User
from sarcokit.web.security import aware, now

_PENDING = "sarcokit_audit"
# The hash the first row of the chain links to.
GENESIS = "0" * 64


def record(
    db: Session,
    user: User | None,
    action: str,
    entity: str,
    entity_id: int | None = None,
    detail: str = "",
) -> None:
    """Append one event in the caller's transaction; `detail` must hold no patient data.

    Events are written when the transaction commits, with the time they happened: a request
    then writes only at its end, which keeps SQLite's write lock short under concurrent use.
    If they cannot be written, the commit fails and so does the request: the trail is
    fail-closed, a read whose audit row is not stored is not served.
    """
    _pend(db, user.id if user else None, action, entity, entity_id, detail)


def record_alone(
    factory: sessionmaker[Session],
    user_id: int | None,
    action: str,
    entity: str,
    detail: str = "",
) -> None:
    """Append one event in a transaction of its own (for a request refused before any work)."""
    with factory() as db, db.begin():
        _pend(db, user_id, action, entity, None, detail)


def _pend(
    db: Session,
    user_id: int | None,
    action: str,
    entity: str,
    entity_id: int | None,
    detail: str,
) -> None:
    # Held until the transaction commits (see `_write_pending`), stamped with when it happened.
    db.info.setdefault(_PENDING, []).append(
        AuditEvent(
            at=now(),
            user_id=user_id,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=detail,
        )
    )


def _moment(at: datetime) -> str:
    # SQLite returns naive UTC, PostgreSQL aware in the session's zone: one text for both.
    return aware(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(event: AuditEvent, prev_hash: str) -> str:
    """SHA-256 over the row's place, content and the previous row's hash."""
    content = [
        event.seq,
        _moment(event.at),
        event.user_id,
        event.action,
        event.entity,
        event.entity_id,
        event.detail,
        prev_hash,
    ]
    canonical = json.dumps(content, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _append(db: Session, pending: list[AuditEvent]) -> None:
    connection = db.connection()
    # Write before reading: the UPDATE takes SQLite's write lock (or PostgreSQL's row lock) at
    # once, so no other transaction can append between reading the head and moving it.
    connection.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))
    head = connection.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    seq, prev = int(head.seq), str(head.hash)
    for event in pending:
        seq += 1
        event.seq, event.prev_hash = seq, prev
        event.detail = event.detail or ""
        event.hash = prev = chain_hash(event, prev)
    connection.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
    db.add_all(pending)


@orm_event.listens_for(Session, "before_commit")
def _write_pending(db: Session) -> None:
    pending: list[AuditEvent] = db.info.pop(_PENDING, [])
    if pending:
        # The transaction's own changes are written first, so the chain's head is the last lock
        # it takes: two transactions can then never wait on each other (no deadlock).
        db.flush()
        _append(db, pending)


@orm_event.listens_for(Session, "after_rollback")
def _drop_pending(db: Session) -> None:
    db.info.pop(_PENDING, None)


@dataclass(frozen=True)
class ChainReport:
    """What verify found: rows checked, and the first broken link if there is one."""

    rows: int
    # The id of the first row that breaks the chain (None when the break is at its end).
    broken_at: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        """Whether every link holds."""
        return not self.reason


def verify(db: Session) -> ChainReport:
    """Walk the chain from its first row; report the first row whose link or hash is wrong."""
    prev, expected_seq, rows = GENESIS, 1, 0
    for event in db.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(1000):
        rows += 1
        if event.seq != expected_seq:
            why = f"row {event.id} is at place {event.seq}; expected {expected_seq} (rows missing)"
            return ChainReport(rows, event.id, why)
        if event.prev_hash != prev:
            why = f"row {event.id} does not link to the row before it (a row was changed)"
            return ChainReport(rows, event.id, why)
        if chain_hash(event, prev) != event.hash:
            why = f"row {event.id} was changed after it was written (its hash does not match)"
            return ChainReport(rows, event.id, why)
        prev, expected_seq = event.hash, expected_seq + 1
    head = db.get(AuditHead, 1)
    if head is None or head.seq != rows or head.hash != prev:
        last = head.seq if head else 0
        why = f"the chain ends at place {rows} but its head records place {last} (rows removed)"
        return ChainReport(rows, None, why)
    return ChainReport(rows)
