"""`/outbox`: emails in doubt, for an operator. SMTP cannot be exactly-once: an email whose send had an
unknown outcome is resent a bounded number of times, then waits here as "may have been delivered"
(``activities.email_delivery``). The operator asks the client, then resends it or marks it delivered;
the waiting email step picks the decision up on its next look."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities import email_delivery
from api.deps import DbDep, Operator
from persistence.models import OutboxEntry

router = APIRouter(prefix="/outbox", tags=["outbox"])

IN_DOUBT = ("uncertain", "unknown", "data_sent", "resend")


class OutboxEmailOut(BaseModel):
    key: str
    kind: str
    invoice_id: uuid.UUID | None
    status: str
    may_have_been_delivered: bool
    attempts: int
    unknown_outcomes: int
    resends_after_unknown: int
    message_id: str
    to: list[str]
    note: str
    created_at: datetime


def email_out(row: OutboxEntry) -> OutboxEmailOut:
    payload: dict[str, Any] = row.payload or {}
    return OutboxEmailOut(
        key=row.key,
        kind=row.kind,
        invoice_id=row.invoice_id,
        status=row.status,
        may_have_been_delivered=row.status in ("uncertain", "unknown", "data_sent"),
        attempts=row.attempts,
        unknown_outcomes=int(payload.get("unknown_outcomes", 0)),
        resends_after_unknown=int(payload.get("unknown_resends", 0)),
        message_id=str(payload.get("message_id", "")),
        to=list(payload.get("to", [])),
        note=row.last_error or "",
        created_at=row.created_at,
    )


@router.get("/emails", response_model=list[OutboxEmailOut])
async def list_emails(
    db: DbDep,
    _: Operator,
    status: str = Query("in_doubt", description="in_doubt (default), or one outbox status, e.g. uncertain"),
    limit: int = Query(100, ge=1, le=500),
) -> list[OutboxEmailOut]:
    """Emails whose delivery is in doubt (waiting for an operator, or for a resend), newest first."""
    wanted = IN_DOUBT if status == "in_doubt" else (status,)

    def tx(session: Session) -> list[OutboxEmailOut]:
        rows = session.scalars(
            select(OutboxEntry)
            .where(OutboxEntry.kind.like("email.%"), OutboxEntry.status.in_(wanted))
            .order_by(OutboxEntry.created_at.desc())
            .limit(limit)
        )
        return [email_out(r) for r in rows]

    return await db.run(tx)


async def _decide(db: DbDep, key: str, action: Any, operator: str) -> OutboxEmailOut:
    def tx(session: Session) -> OutboxEmailOut:
        try:
            row = action(session, key, f"operator:{operator}")
        except ValueError as exc:
            raise HTTPException(409, detail=str(exc)) from None
        if row is None:
            raise HTTPException(404, detail=f"no email {key!r} in the outbox")
        session.flush()
        return email_out(row)

    return await db.run(tx)


@router.post("/emails/{key:path}/resend", response_model=OutboxEmailOut)
async def resend(key: str, db: DbDep, operator: Operator) -> OutboxEmailOut:
    """Send an email in doubt once more (same Message-ID); its step sends it on its next look."""
    return await _decide(db, key, email_delivery.operator_resend, operator)


@router.post("/emails/{key:path}/mark-delivered", response_model=OutboxEmailOut)
async def mark_delivered(key: str, db: DbDep, operator: Operator) -> OutboxEmailOut:
    """The client has it: the email is done and is not sent again."""
    return await _decide(db, key, email_delivery.operator_mark_delivered, operator)
