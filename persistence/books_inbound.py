"""Reads and writes of the inbound accounting sync: cursors, what we pushed, differences, books events.

Everything the use cases in ``services.books_inbound`` need from PostgreSQL, and nothing else: which of
our invoices a provider invoice is, whether a payment in the books is one we recorded or pushed,
whether a push is still under way, the differences an operator decides, and the webhook-inbox rows of
the books' webhooks (recorded ``received`` with no project, claimed by the dispatcher's books lane).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from persistence.books_models import BooksCursor, BooksDifference
from persistence.models import AccountingSync, Invoice, Payment, WebhookEvent

BOOKS_EVENT = "books.change"  # webhook_events.kind of a books webhook event
OPEN, ACCEPTED, REJECTED = "open", "accepted", "rejected"
_MARKER = re.compile(r"invoiceflow:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_SHORT = re.compile(r"\[([0-9a-f]{8})\]\s*$")  # our Xero payment reference ends in "[<our id[:8]>]"


def payment_key(provider: str, tenant_id: str, external_id: str) -> str:
    """The idempotency key of a payment found in the books: the provider's own id, per organisation."""
    return f"books:{provider}:{tenant_id}:{external_id}"[:200]


def provider_payment_id(key: str, provider: str, tenant_id: str) -> str | None:
    """The provider's payment object id in a key made by ``payment_key`` (QBO's also names the
    invoice: ``<payment>:<invoice>``); None for every other payment."""
    prefix = f"books:{provider}:{tenant_id}:"
    return key.removeprefix(prefix).split(":", 1)[0] if key.startswith(prefix) else None


# --- cursors ---------------------------------------------------------------------------------------


def get_cursor(session: Session, provider: str, tenant_id: str) -> str | None:
    return session.scalars(
        select(BooksCursor.cursor).where(BooksCursor.provider == provider, BooksCursor.tenant_id == tenant_id)
    ).one_or_none()


def save_cursor(session: Session, provider: str, tenant_id: str, cursor: str) -> None:
    stmt = insert(BooksCursor).values(provider=provider, tenant_id=tenant_id, cursor=cursor)
    session.execute(
        stmt.on_conflict_do_update(
            constraint="uq_books_cursors_org", set_={"cursor": cursor, "polled_at": datetime.now(UTC)}
        )
    )


# --- our invoices and payments ---------------------------------------------------------------------


@dataclass(frozen=True)
class OurInvoice:
    invoice_id: uuid.UUID
    workflow_id: str
    status: str
    currency: str
    total: Decimal
    number: str


def invoice_by_external_id(
    session: Session, provider: str, tenant_id: str, external_id: str
) -> OurInvoice | None:
    row = session.scalars(
        select(Invoice)
        .join(AccountingSync, AccountingSync.object_id == Invoice.id)
        .where(
            AccountingSync.provider == provider,
            AccountingSync.tenant_id == tenant_id,
            AccountingSync.kind == "invoice",
            AccountingSync.external_id == external_id,
        )
        .order_by(AccountingSync.id.desc())  # the newest, should a provider ever reuse an id
    ).first()
    if row is None:
        return None
    return OurInvoice(row.id, row.workflow_id, row.status, row.currency, row.total, row.number or "")


def invoice_by_id(session: Session, invoice_id: uuid.UUID) -> OurInvoice | None:
    row = session.get(Invoice, invoice_id)
    if row is None:
        return None
    return OurInvoice(row.id, row.workflow_id, row.status, row.currency, row.total, row.number or "")


def recorded_payment(session: Session, key: str) -> Payment | None:
    return session.scalars(select(Payment).where(Payment.idempotency_key == key)).one_or_none()


def recorded_by_provider_id(
    session: Session, provider: str, tenant_id: str, payment_id: str
) -> list[Payment]:
    """Our payments recorded from this provider payment (QBO: one per invoice it settles)."""
    base = payment_key(provider, tenant_id, payment_id)
    return list(
        session.scalars(
            select(Payment).where(
                or_(Payment.idempotency_key == base, Payment.idempotency_key.like(base + ":%"))
            )
        )
    )


def pushed_by_us(
    session: Session, provider: str, tenant_id: str, payment_id: str, memo: str, invoice_id: uuid.UUID | None
) -> bool:
    """Whether a payment in the books is one our sync pushed: its id is in ``accounting_syncs``, or its
    text carries our marker (QBO PrivateNote / FreshBooks note ``invoiceflow:<our id>``, Xero Reference
    ``... [<our id[:8]>]``) naming one of our payments (of that invoice, for the short Xero form)."""
    known = session.scalars(
        select(AccountingSync.id).where(
            AccountingSync.provider == provider,
            AccountingSync.tenant_id == tenant_id,
            AccountingSync.kind == "payment",
            AccountingSync.external_id == payment_id,
        )
    ).first()
    if known is not None:
        return True
    marker = _MARKER.search(memo or "")
    if marker and session.get(Payment, uuid.UUID(marker.group(1))) is not None:
        return True
    short = _SHORT.search(memo or "")
    if short and invoice_id is not None:
        ids = session.scalars(select(Payment.id).where(Payment.invoice_id == invoice_id)).all()
        return any(str(i).startswith(short.group(1)) for i in ids)
    try:  # a Xero payment pushed without a bank reference carries our whole id as its reference
        return session.get(Payment, uuid.UUID((memo or "").strip())) is not None
    except ValueError:
        return False


IN_FLIGHT = timedelta(minutes=2)  # a push pending longer is stuck (retrying), not racing us


def push_in_flight(session: Session, provider: str, tenant_id: str, invoice_id: uuid.UUID) -> bool:
    """A payment of this invoice is being pushed right now (pending, touched in the last two minutes):
    its provider id is not stored yet. A push stuck in retries for longer does not hold the books
    back; its marker still identifies it."""
    return (
        session.scalars(
            select(AccountingSync.id).where(
                AccountingSync.provider == provider,
                AccountingSync.tenant_id == tenant_id,
                AccountingSync.kind == "payment",
                AccountingSync.invoice_id == invoice_id,
                AccountingSync.status == "pending",
                AccountingSync.updated_at > func.now() - IN_FLIGHT,
            )
        ).first()
        is not None
    )


def credit_note_is_ours(session: Session, provider: str, tenant_id: str, external_id: str) -> bool:
    return (
        session.scalars(
            select(AccountingSync.id).where(
                AccountingSync.provider == provider,
                AccountingSync.tenant_id == tenant_id,
                AccountingSync.kind == "credit_note",
                AccountingSync.external_id == external_id,
            )
        ).first()
        is not None
    )


# --- differences -----------------------------------------------------------------------------------


def record_difference(
    session: Session,
    *,
    provider: str,
    tenant_id: str,
    kind: str,
    external_id: str,
    detail: str,
    invoice_id: uuid.UUID | None = None,
    signature: str = "",
    data: dict[str, Any] | None = None,
) -> bool:
    """Keep a difference once (the same change reported by a poll and a webhook is one row); True if new."""
    inserted = session.execute(
        insert(BooksDifference)
        .values(
            id=uuid.uuid4(),
            provider=provider,
            tenant_id=tenant_id,
            kind=kind,
            external_id=external_id[:200],
            signature=signature[:200],
            invoice_id=invoice_id,
            detail=detail,
            data=data or {},
            status=OPEN,
            resolution="",
        )
        .on_conflict_do_nothing(constraint="uq_books_differences_change")
        .returning(BooksDifference.id)
    ).first()
    return inserted is not None


def list_differences(session: Session, status: str | None = OPEN, limit: int = 500) -> list[BooksDifference]:
    query = select(BooksDifference).order_by(BooksDifference.created_at).limit(limit)
    if status:
        query = query.where(BooksDifference.status == status)
    return list(session.scalars(query))


def get_difference(
    session: Session, difference_id: uuid.UUID, *, lock: bool = False
) -> BooksDifference | None:
    query = select(BooksDifference).where(BooksDifference.id == difference_id)
    return session.scalars(query.with_for_update() if lock else query).one_or_none()


def decide(session: Session, row: BooksDifference, status: str, resolution: str, actor: str) -> None:
    row.status, row.resolution, row.decided_by, row.decided_at = status, resolution, actor, datetime.now(UTC)


# --- the books' webhook events in the inbox --------------------------------------------------------


@dataclass(frozen=True)
class ClaimedEvent:
    event_id: uuid.UUID
    provider: str
    tenant_id: str
    category: str  # payment | invoice | credit_note | contact
    resource_id: str


def claim_events(
    session: Session,
    *,
    lease_s: float,
    limit: int,
    ids: Sequence[uuid.UUID] | None = None,
    ignore_leases: bool = False,
) -> list[ClaimedEvent]:
    """Lease books events still ``received``, oldest first (the same lease the project lane uses)."""
    now = func.now()
    candidates = select(WebhookEvent.id).where(
        WebhookEvent.status == "received", WebhookEvent.kind == BOOKS_EVENT
    )
    if not ignore_leases:
        candidates = candidates.where(
            or_(WebhookEvent.dispatching_until.is_(None), WebhookEvent.dispatching_until <= now)
        )
    if ids is not None:
        candidates = candidates.where(WebhookEvent.id.in_(ids))
    candidates = candidates.order_by(WebhookEvent.received_at).limit(limit).with_for_update(skip_locked=True)
    rows = session.scalars(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(candidates.scalar_subquery()))
        .values(dispatching_until=now + timedelta(seconds=lease_s))
        .returning(WebhookEvent),
        execution_options={"populate_existing": True},
    ).all()
    return [
        ClaimedEvent(
            row.id, row.provider, row.summary.get("tenant", ""), row.summary.get("category", ""), row.ref
        )
        for row in sorted(rows, key=lambda r: r.received_at)
    ]
