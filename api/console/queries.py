"""What the console's pages read: lists with filters, counts of what needs a person. Read-only; every
change goes through ``api.console.actions``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from persistence import webhook_inbox as inbox
from persistence.models import (
    AccountingConnection,
    AccountingSync,
    Customer,
    DunningHold,
    Invoice,
    Project,
    WebhookEvent,
)

PAGE_SIZE = 25
SORTS = {
    "created": Invoice.created_at,
    "number": Invoice.number,
    "due": Invoice.due_date,
    "total": Invoice.total,
    "amount_due": Invoice.amount_due,
    "status": Invoice.status,
    "customer": Customer.name,
}
RECEIVABLE = ("open", "overdue", "partially_paid")


@dataclass
class InvoiceFilters:
    """The list's query string, validated: a bad value is dropped and named in ``errors``."""

    status: str = ""
    customer_id: str = ""
    project_id: str = ""
    currency: str = ""
    q: str = ""
    due_after: str = ""
    due_before: str = ""
    min_amount: str = ""
    max_amount: str = ""
    held: str = ""
    sort: str = "created"
    order: str = "desc"
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, params: dict[str, str]) -> InvoiceFilters:
        f = cls(
            **{
                k: params.get(k, "").strip()[:200]
                for k in (
                    "status",
                    "customer_id",
                    "project_id",
                    "currency",
                    "q",
                    "due_after",
                    "due_before",
                    "min_amount",
                    "max_amount",
                )
            }
        )
        f.held = "yes" if params.get("held") == "yes" else ""
        f.sort = params.get("sort", "created") if params.get("sort") in SORTS else "created"
        f.order = "asc" if params.get("order") == "asc" else "desc"
        try:
            f.page = max(1, min(int(params.get("page", "1")), 10_000))
        except ValueError:
            f.page = 1
        for name in ("customer_id", "project_id"):
            value = getattr(f, name)
            if value:
                try:
                    uuid.UUID(value)
                except ValueError:
                    f.errors.append(f"{name.replace('_', ' ')}: not an id")
                    setattr(f, name, "")
        for name in ("due_after", "due_before"):
            value = getattr(f, name)
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    f.errors.append(f"{name.replace('_', ' ')}: not a date (YYYY-MM-DD)")
                    setattr(f, name, "")
        for name in ("min_amount", "max_amount"):
            value = getattr(f, name)
            if value:
                try:
                    if not Decimal(value).is_finite():
                        raise InvalidOperation
                except InvalidOperation:
                    f.errors.append(f"{name.replace('_', ' ')}: not an amount")
                    setattr(f, name, "")
        return f

    def query(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters, with some changed (sort links, pages)."""
        values = {
            k: str(getattr(self, k))
            for k in (
                "status",
                "customer_id",
                "project_id",
                "currency",
                "q",
                "due_after",
                "due_before",
                "min_amount",
                "max_amount",
                "sort",
                "order",
                "page",
            )
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


def _filtered(f: InvoiceFilters) -> Select[Any]:
    stmt = select(Invoice).join(Customer, Invoice.customer_id == Customer.id)
    if f.status:
        stmt = stmt.where(Invoice.status == f.status)
    if f.customer_id:
        stmt = stmt.where(Invoice.customer_id == uuid.UUID(f.customer_id))
    if f.project_id:
        stmt = stmt.where(Invoice.project_id == uuid.UUID(f.project_id))
    if f.currency:
        stmt = stmt.where(Invoice.currency == f.currency.upper())
    if f.q:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        stmt = stmt.where(or_(Invoice.number.ilike(like), Customer.name.ilike(like)))
    if f.due_after:
        stmt = stmt.where(Invoice.due_date >= date.fromisoformat(f.due_after))
    if f.due_before:
        stmt = stmt.where(Invoice.due_date <= date.fromisoformat(f.due_before))
    if f.held:
        stmt = stmt.where(Invoice.id.in_(select(Invoice.id).where(_held())))
    if f.min_amount:
        stmt = stmt.where(Invoice.total >= Decimal(f.min_amount))
    if f.max_amount:
        stmt = stmt.where(Invoice.total <= Decimal(f.max_amount))
    return stmt


def list_invoices(
    session: Session, f: InvoiceFilters, *, limit: int | None = PAGE_SIZE
) -> tuple[list[Invoice], int]:
    stmt = _filtered(f)
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    column = SORTS[f.sort]
    ordering = column.asc().nulls_last() if f.order == "asc" else column.desc().nulls_last()
    stmt = stmt.order_by(ordering, Invoice.id)
    if limit is not None:
        stmt = stmt.limit(limit).offset((f.page - 1) * limit)
    return list(session.scalars(stmt).unique()), total


def customers(session: Session, q: str = "") -> list[Customer]:
    stmt = select(Customer).order_by(Customer.name)
    if q:
        stmt = stmt.where(Customer.name.ilike(f"%{q}%"))
    return list(session.scalars(stmt.limit(500)))


def projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.name).limit(500)))


def pending_approval(session: Session) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice).where(Invoice.status == "pending_approval").order_by(Invoice.created_at)
        )
    )


def failed_syncs(session: Session) -> list[tuple[AccountingSync, Invoice]]:
    rows = session.execute(
        select(AccountingSync, Invoice)
        .join(Invoice, AccountingSync.invoice_id == Invoice.id)
        .where(AccountingSync.status == "sync_failed")
        .order_by(AccountingSync.updated_at.desc())
        .limit(200)
    )
    return [(s, i) for s, i in rows]


def recent_syncs(session: Session, limit: int = 20) -> list[tuple[AccountingSync, Invoice]]:
    rows = session.execute(
        select(AccountingSync, Invoice)
        .join(Invoice, AccountingSync.invoice_id == Invoice.id)
        .order_by(AccountingSync.updated_at.desc())
        .limit(limit)
    )
    return [(s, i) for s, i in rows]


def unmatched_events(session: Session) -> list[WebhookEvent]:
    return inbox.pending(session)


def recent_deliveries(session: Session, limit: int = 30) -> list[WebhookEvent]:
    return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.received_at.desc()).limit(limit)))


def _held(now: datetime | None = None):  # type: ignore[no-untyped-def]
    """Receivable invoices with an active dunning hold of their own or of their customer."""
    now = now or datetime.now(UTC)
    active = and_(
        DunningHold.released_at.is_(None), or_(DunningHold.resume_at.is_(None), DunningHold.resume_at > now)
    )
    held_customers = select(DunningHold.customer_id).where(active, DunningHold.customer_id.is_not(None))
    held_ids = select(DunningHold.invoice_id).where(active, DunningHold.invoice_id.is_not(None))
    return and_(
        Invoice.status.in_(RECEIVABLE), or_(Invoice.id.in_(held_ids), Invoice.customer_id.in_(held_customers))
    )


def held_invoices(session: Session, now: datetime | None = None) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(_held(now)).order_by(Invoice.due_date).limit(200)))


def einvoice_refused(session: Session, limit: int = 10) -> tuple[list[Invoice], int]:
    """Invoices stopped because their e-invoice failed the official rules (``einvoice_invalid``, the
    failed rules in ``einvoice_errors``): nothing goes out until someone fixes the data."""
    refused = and_(Invoice.einvoice_status == "invalid", Invoice.status == "einvoice_invalid")
    count = int(session.scalar(select(func.count()).select_from(Invoice).where(refused)) or 0)
    rows = session.scalars(select(Invoice).where(refused).order_by(Invoice.created_at).limit(limit))
    return list(rows.unique()), count


@dataclass
class Attention:
    awaiting_approval: int
    sync_failures: int
    unmatched_webhooks: int
    held: int
    einvoice_refused: int = 0
    einvoice_invoices: list[Invoice] = field(default_factory=list)


def attention(session: Session) -> Attention:
    refused, refused_count = einvoice_refused(session)
    return Attention(
        awaiting_approval=int(
            session.scalar(
                select(func.count()).select_from(Invoice).where(Invoice.status == "pending_approval")
            )
            or 0
        ),
        sync_failures=int(
            session.scalar(
                select(func.count()).select_from(AccountingSync).where(AccountingSync.status == "sync_failed")
            )
            or 0
        ),
        unmatched_webhooks=len(inbox.pending(session)),
        held=len(held_invoices(session)),
        einvoice_refused=refused_count,
        einvoice_invoices=refused,
    )


def connections(session: Session) -> list[dict[str, Any]]:
    """The accounting organisations connected, without their tokens."""
    rows = session.scalars(select(AccountingConnection).order_by(AccountingConnection.provider))
    return [
        {
            "provider": r.provider,
            "tenant_id": r.tenant_id,
            "expires_at": r.expires_at,
            "refreshed_at": r.refreshed_at,
        }
        for r in rows
    ]
