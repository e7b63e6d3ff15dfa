"""Subscriptions on the database: creation, per-cycle invoices, versioned terms, event history.

A cycle's invoice id is a UUIDv5 of (subscription, cycle), and ``(subscription_id, subscription_cycle)``
is unique: however often an activity retries or a workflow replays, a cycle is one invoice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from billing.recurrence import Recurrence
from billing.totals import LineInput, parse_lines
from persistence import invoices as repo
from persistence.models import Customer, Invoice, Subscription, SubscriptionEventRow, SubscriptionTerms
from workflows.payloads import (
    CycleInvoice,
    SubscriptionEvent,
    TermsLine,
    subscription_workflow_id,
)

CYCLE_NAMESPACE = uuid.UUID("6f1c2b8e-3d4a-5b6c-9e7f-0a1b2c3d4e5f")


class SubscriptionNotFound(LookupError):
    pass


def cycle_invoice_id(subscription_id: uuid.UUID, cycle: int) -> uuid.UUID:
    return uuid.uuid5(CYCLE_NAMESPACE, f"{subscription_id}:{cycle}")


def line_inputs(lines: list[dict[str, Any]] | list[TermsLine]) -> list[LineInput]:
    return parse_lines(lines)


def terms_json(lines: list[LineInput]) -> list[dict[str, str]]:
    return [
        {
            "description": line.description.strip(),
            "quantity": str(line.quantity),
            "unit_price": str(line.unit_price),
            "discount_percent": str(line.discount_percent),
            "discount_amount": str(line.discount_amount),
            "tax_rate": str(line.tax_rate),
        }
        for line in lines
    ]


def recurrence_of(sub: Subscription) -> Recurrence:
    return Recurrence(
        interval=sub.interval,
        interval_count=sub.interval_count,
        start_date=sub.start_date,
        timezone=sub.timezone,
        send_time=sub.send_time,
        anchor_day=sub.anchor_day,
        end_date=sub.end_date,
        max_cycles=sub.max_cycles,
    )


@dataclass(frozen=True)
class NewSubscription:
    customer: Customer
    currency: str
    lines: list[LineInput]
    recurrence: Recurrence
    payment_terms: str
    auto_send: bool
    catch_up: str


def create(session: Session, new: NewSubscription) -> Subscription:
    rec = new.recurrence
    sub_id = uuid.uuid4()
    sub = Subscription(
        id=sub_id,
        customer_id=new.customer.id,
        currency=new.currency,
        interval=rec.interval,
        interval_count=rec.interval_count,
        anchor_day=rec.anchor_day,
        start_date=rec.start_date,
        end_date=rec.end_date,
        max_cycles=rec.max_cycles,
        timezone=rec.timezone,
        send_time=rec.send_time,
        payment_terms=new.payment_terms,
        auto_send=new.auto_send,
        catch_up=new.catch_up,
        status="active",
        next_cycle=0,
        workflow_id=subscription_workflow_id(str(sub_id)),
    )
    session.add(sub)
    session.flush()
    session.add(
        SubscriptionTerms(
            subscription_id=sub.id, version=1, effective_from_cycle=0, lines=terms_json(new.lines)
        )
    )
    session.flush()
    return sub


def get(session: Session, subscription_id: uuid.UUID, *, lock: bool = False) -> Subscription:
    stmt = select(Subscription).where(Subscription.id == subscription_id)
    if lock:
        stmt = stmt.with_for_update()
    sub = session.scalars(stmt).one_or_none()
    if sub is None:
        raise SubscriptionNotFound(f"subscription {subscription_id} does not exist")
    return sub


def terms_for_cycle(sub: Subscription, cycle: int) -> SubscriptionTerms:
    applicable = [t for t in sub.terms if t.effective_from_cycle <= cycle]
    return max(applicable, key=lambda t: t.version)


def create_cycle_invoice(
    session: Session, subscription_id: uuid.UUID, cycle: int, period_date: date
) -> CycleInvoice:
    sub = get(session, subscription_id, lock=True)
    invoice_id = cycle_invoice_id(sub.id, cycle)
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        terms = terms_for_cycle(sub, cycle)
        customer = session.get(Customer, sub.customer_id)
        assert customer is not None
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer,
                currency=sub.currency,
                lines=line_inputs(terms.lines),
                payment_terms=sub.payment_terms,
                notes=f"Billing period starting {period_date.isoformat()}.",
                source="subscription",
                invoice_id=invoice_id,
                requires_approval=not sub.auto_send,
                collect_billable_items=True,
                subscription_id=sub.id,
                subscription_cycle=cycle,
                period_date=period_date,
            ),
        )
        repo.add_event(
            session,
            invoice.id,
            "subscription.terms",
            actor="subscription",
            data={"version": str(terms.version), "cycle": str(cycle)},
            dedupe_key=f"invoice:{invoice.id}:terms",
        )
    return CycleInvoice(
        invoice_id=str(invoice.id),
        customer_id=str(invoice.customer_id),
        currency=invoice.currency,
        requires_approval=invoice.requires_approval,
        total=str(invoice.total),
    )


def add_terms(
    session: Session,
    subscription_id: uuid.UUID,
    version: int,
    effective_from_cycle: int,
    lines: list[TermsLine],
) -> None:
    session.execute(
        insert(SubscriptionTerms)
        .values(
            subscription_id=subscription_id,
            version=version,
            effective_from_cycle=effective_from_cycle,
            lines=terms_json(line_inputs(lines)),
        )
        .on_conflict_do_nothing(constraint="uq_subscription_terms_version")
    )


def record_event(session: Session, event: SubscriptionEvent) -> None:
    sub = get(session, uuid.UUID(event.subscription_id), lock=True)
    sub.status = event.status
    sub.next_cycle = max(sub.next_cycle, event.next_cycle)
    sub.paused_until = date.fromisoformat(event.paused_until) if event.paused_until else None
    if event.status in ("canceled", "ended") and sub.ended_at is None:
        sub.ended_at = datetime.now(UTC)
    stmt = insert(SubscriptionEventRow).values(
        subscription_id=sub.id,
        kind=event.kind,
        cycle=event.cycle,
        data=dict(event.detail),
        dedupe_key=event.dedupe_key,
    )
    if event.dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    session.execute(stmt)


def history(session: Session, subscription_id: uuid.UUID) -> list[SubscriptionEventRow]:
    return list(
        session.scalars(
            select(SubscriptionEventRow)
            .where(SubscriptionEventRow.subscription_id == subscription_id)
            .order_by(SubscriptionEventRow.id)
        )
    )


def invoices_of(session: Session, subscription_id: uuid.UUID) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.subscription_id == subscription_id)
            .order_by(Invoice.subscription_cycle)
        ).unique()
    )
