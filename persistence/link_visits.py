"""Views of a hosted invoice page and email opens, counted per visitor and day.

The link is public (whoever has it may look), so each view must not be a row of the append-only
timeline: 300 views and 300 pixel hits made 600 rows. Now each (invoice, kind, visitor, UTC day) is one
counter row, and only the first view of a visitor on a day goes to the timeline, for at most
``VISITORS_PER_DAY`` visitors per invoice and kind and day; the rest are counted, not written. A visitor
is a hash of IP and user agent (no raw IP in the key).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from persistence.invoices import add_event
from persistence.models import LinkVisit

VISITORS_PER_DAY = 10


def visitor_of(ip: str, user_agent: str) -> str:
    return hashlib.sha256(f"{ip}|{user_agent}".encode()).hexdigest()[:16]


def record_visit(
    session: Session,
    invoice_id: uuid.UUID,
    kind: str,
    *,
    ip: str,
    user_agent: str,
    now: datetime | None = None,
) -> bool:
    """Count one view (``viewed``) or open (``opened``); True when it also went to the timeline."""
    at = now or datetime.now(UTC)
    day, visitor = at.date(), visitor_of(ip, user_agent)
    stmt = (
        insert(LinkVisit)
        .values(invoice_id=invoice_id, kind=kind, day=day, visitor=visitor, count=1, first_at=at, last_at=at)
        .on_conflict_do_update(
            constraint="pk_link_visits", set_={"count": LinkVisit.count + 1, "last_at": at}
        )
        .returning(LinkVisit.count)
    )
    if session.execute(stmt).scalar_one() != 1:
        return False  # this visitor was already on the timeline today: counted only
    visitors = session.scalar(
        select(func.count())
        .select_from(LinkVisit)
        .where(LinkVisit.invoice_id == invoice_id, LinkVisit.kind == kind, LinkVisit.day == day)
    )
    if (visitors or 0) > VISITORS_PER_DAY:
        return False
    add_event(
        session,
        invoice_id,
        kind,
        actor="client",
        data={"ip": ip, "user_agent": user_agent},
        dedupe_key=f"{kind}:{invoice_id}:{visitor}:{day.isoformat()}",
    )
    return True


def totals(session: Session, invoice_id: uuid.UUID) -> dict[str, dict[str, int]]:
    """``{"viewed": {"count": 300, "visitors": 2}, ...}`` over all days (visitors per day, summed)."""
    rows = session.execute(
        select(LinkVisit.kind, func.sum(LinkVisit.count), func.count())
        .where(LinkVisit.invoice_id == invoice_id)
        .group_by(LinkVisit.kind)
    ).all()
    return {kind: {"count": int(count), "visitors": int(visitors)} for kind, count, visitors in rows}
