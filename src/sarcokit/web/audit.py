"""The append-only audit log of every read and write of patient data."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from sarcokit.web.models import AuditEvent, User
from sarcokit.web.security import now

_PENDING = "sarcokit_audit"


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
    """
    db.info.setdefault(_PENDING, []).append(
        AuditEvent(
            at=now(),
            user_id=user.id if user else None,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=detail,
        )
    )


@event.listens_for(Session, "before_commit")
def _write_pending(db: Session) -> None:
    db.add_all(db.info.pop(_PENDING, []))


@event.listens_for(Session, "after_rollback")
def _drop_pending(db: Session) -> None:
    db.info.pop(_PENDING, None)
