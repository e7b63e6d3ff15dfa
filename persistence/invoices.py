"""Invoice operations on the database, shared by the API (create, read) and activities (issue, pay, close).

Each function runs inside the caller's transaction and is idempotent where an activity calls it: the
second call with the same input finds the first call's rows and returns the same answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billing.credits import applicable_credit, split
from billing.payments import payment_amount, payment_currency
from billing.status import FINAL_STATUSES, InvoiceStatus, settle_status
from billing.terms import due_date as compute_due_date
from billing.terms import parse_terms
from billing.totals import LineInput, compute_totals, parse_lines
from persistence import customer_credit, numbering
from persistence.billable_items import collect_billable_items
from persistence.dunning import (
    active_customer_holds,
    add_hold_event,
    freeze_policy,
    hold_spec,
    invoice_plan,
    late_fee_instants,
    requested_policy,
)
from persistence.invoice_rows import (  # the row-level helpers, re-exported for callers of this module
    InvalidInvoiceOperation,
    InvoiceNotFound,
    add_event,
    get_invoice,
    line_rows,
    replace_lines,
    timeline,
)
from persistence.models import BillableItem, Customer, Invoice, Payment
from workflows.payloads import (
    DraftChanges,
    IssuedInvoice,
    PaymentInput,
    PaymentOutcome,
    invoice_workflow_id,
)


@dataclass(frozen=True)
class NewInvoice:
    customer: Customer
    currency: str
    lines: list[LineInput]
    payment_terms: str
    due_date: date | None = None
    notes: str = ""
    source: str = "api"
    reminder_offsets: list[int] | None = None
    invoice_id: uuid.UUID | None = None  # deterministic for subscription cycles
    requires_approval: bool = False
    collect_billable_items: bool = False
    subscription_id: uuid.UUID | None = None
    subscription_cycle: int | None = None
    period_date: date | None = None
    project_id: uuid.UUID | None = None
    dunning_policy: str | None = None  # a named policy; wins over the customer's
    # E-invoice data: per line {unit, tax_category, tax_exemption_reason}; invoice references and period.
    line_extras: list[dict[str, Any]] | None = None
    references: dict[str, Any] | None = None
    actor: str | None = None  # who created it (a user's "email (role)"); unset: the source


def create_invoice(session: Session, new: NewInvoice) -> Invoice:
    """A draft: totals computed and stored, no number yet (numbers are allocated at issue)."""
    totals = compute_totals(new.lines, new.currency)
    invoice_id = new.invoice_id or uuid.uuid4()
    invoice = Invoice(
        id=invoice_id,
        customer_id=new.customer.id,
        status=str(InvoiceStatus.DRAFT),
        currency=new.currency,
        payment_terms=new.payment_terms,
        requested_due_date=new.due_date,
        subtotal=totals.subtotal,
        discount_total=totals.discount_total,
        tax_total=totals.tax_total,
        total=totals.total,
        amount_paid=Decimal(0),
        credit_amount=Decimal(0),
        amount_due=totals.total,
        notes=new.notes,
        source=new.source,
        reminder_offsets=new.reminder_offsets,
        workflow_id=invoice_workflow_id(str(invoice_id)),
        requires_approval=new.requires_approval,
        collect_billable_items=new.collect_billable_items,
        subscription_id=new.subscription_id,
        subscription_cycle=new.subscription_cycle,
        period_date=new.period_date,
        project_id=new.project_id,
        dunning_policy=new.dunning_policy,
    )
    invoice.lines = line_rows(new.lines, totals)
    for row, extras in zip(invoice.lines, new.line_extras or [], strict=False):
        for name, value in extras.items():
            setattr(row, name, value)
    for name, value in (new.references or {}).items():
        setattr(invoice, name, value)
    session.add(invoice)
    session.flush()
    data = {"total": str(totals.total)}
    if new.subscription_cycle is not None:
        data |= {"subscription_id": str(new.subscription_id), "cycle": str(new.subscription_cycle)}
    add_event(session, invoice.id, "created", actor=new.actor or new.source, data=data)
    return invoice


def overdue_instant(due: date, timezone: str) -> datetime:
    """An invoice is overdue from the start of the day after its due date, in the client's timezone."""
    local = datetime.combine(due + timedelta(days=1), time(0), ZoneInfo(timezone))
    return local.astimezone(UTC)


def issue(
    session: Session,
    invoice_id: uuid.UUID,
    *,
    as_of: datetime,
    number_prefix: str,
    default_offsets: tuple[int, ...],
    send_hour: int,
) -> IssuedInvoice:
    """Number the invoice and fix its dates, once; later calls return the same facts and plan."""
    invoice = get_invoice(session, invoice_id, lock=True, children=False)
    customer = invoice.customer
    if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE):
        raise InvalidInvoiceOperation(f"invoice {invoice_id} is {invoice.status}; it cannot be issued")
    if invoice.number is None:
        if invoice.collect_billable_items:
            collect_billable_items(session, invoice)
        issue_date = as_of.astimezone(ZoneInfo(customer.timezone)).date()
        due = invoice.requested_due_date or compute_due_date(parse_terms(invoice.payment_terms), issue_date)
        series = numbering.series_for(number_prefix, issue_date)
        invoice.series = series
        invoice.number = numbering.format_number(series, numbering.allocate(session, series))
        invoice.issue_date = issue_date
        invoice.due_date = due
        invoice.issued_at = as_of
        if requested_policy(invoice) is not None:
            freeze_policy(session, invoice)
            add_event(
                session,
                invoice.id,
                "dunning.policy_frozen",
                actor="workflow",
                data={"policy": str((invoice.dunning_snapshot or {}).get("name"))},
                dedupe_key=f"invoice:{invoice.id}:dunning_policy",
            )
        add_event(
            session,
            invoice.id,
            "issued",
            actor="workflow",
            data={
                "number": invoice.number,
                "issue_date": issue_date.isoformat(),
                "due_date": due.isoformat(),
            },
            dedupe_key=f"invoice:{invoice.id}:issued",
        )
        _apply_customer_credit(session, invoice, as_of)
    assert invoice.due_date is not None and invoice.issued_at is not None
    # Dunning: the plan comes from the policy frozen at numbering (or today's offsets without
    # a policy), and holds on the customer apply at once.
    plan = invoice_plan(invoice, fallback_offsets=default_offsets, send_hour=send_hour)
    # FOR SHARE on the customer: a customer-wide hold being placed (FOR UPDATE) either committed before
    # (we see it) or waits for this issue to commit (and then finds this invoice issued).
    session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update(read=True))
    holds = active_customer_holds(session, customer.id, as_of)
    for hold in holds:
        add_hold_event(session, invoice.id, "dunning.hold_placed", hold, actor=hold.actor)
    return IssuedInvoice(
        invoice_id=str(invoice.id),
        number=invoice.number,
        issue_date=invoice.issue_date.isoformat() if invoice.issue_date else "",
        due_date=invoice.due_date.isoformat(),
        overdue_at=overdue_instant(invoice.due_date, customer.timezone),
        currency=invoice.currency,
        customer_id=str(customer.id),
        customer_name=customer.name,
        total=str(invoice.total),
        amount_paid=str(invoice.amount_paid),
        amount_due=str(invoice.amount_due),
        reminders=plan,
        holds=[hold_spec(hold) for hold in holds],
        dunning_policy=(invoice.dunning_snapshot or {}).get("name"),
        late_fee_at=late_fee_instants(invoice),
        project_id=str(invoice.project_id) if invoice.project_id else None,
        einvoice_format=customer.einvoice_format or "none",
    )


CREDIT_METHOD = (
    "customer_credit"  # a payment row that is customer credit applied at issue, not money received
)


def _apply_customer_credit(session: Session, invoice: Invoice, as_of: datetime) -> None:
    """Apply the customer's unapplied credit in the invoice's currency, in the issuing transaction (so
    exactly once: a retried issue finds the invoice numbered and skips this). Recorded as a ledger entry
    and as a payment of method ``customer_credit``, so amount due, status and the workflow see it as
    paid; documents show it as "Credit applied"."""
    customer_credit.lock_customer(session, invoice.customer_id)
    available = customer_credit.balance(session, invoice.customer_id, invoice.currency)
    amount = applicable_credit(max(available, Decimal(0)), invoice.amount_due)
    if amount <= 0:
        return
    if not customer_credit.record(
        session,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        amount=-amount,
        kind="applied",
        dedupe_key=f"invoice:{invoice.id}:credit_applied",
        invoice_id=invoice.id,
    ):
        return
    row = Payment(
        invoice_id=invoice.id,
        idempotency_key=f"credit:{invoice.id}",
        amount=amount,
        currency=invoice.currency,
        method=CREDIT_METHOD,
        reference="customer credit",
        received_at=as_of,
    )
    session.add(row)
    invoice.amount_paid = invoice.amount_paid + amount
    invoice.amount_due, _ = split(invoice.total, invoice.amount_paid, invoice.amount_credited)
    session.flush()
    add_event(
        session,
        invoice.id,
        "credit.applied",
        actor="workflow",
        data={"amount": str(amount), "payment_id": str(row.id), "amount_due": str(invoice.amount_due)},
        dedupe_key=f"invoice:{invoice.id}:credit_applied",
    )


def set_status(
    session: Session,
    invoice_id: uuid.UUID,
    status: InvoiceStatus,
    *,
    actor: str,
    event: str,
    dedupe_key: str | None,
    detail: dict[str, str] | None = None,
) -> None:
    invoice = get_invoice(session, invoice_id, lock=True, children=False)
    if invoice.status != status:
        invoice.status = str(status)
        if status in FINAL_STATUSES and invoice.closed_at is None:
            invoice.closed_at = datetime.now(UTC)
    add_event(
        session,
        invoice.id,
        f"status.{status}",
        actor=actor,
        data={"reason": event, **(detail or {})},
        dedupe_key=dedupe_key,
    )


def apply_payment(
    session: Session,
    invoice_id: uuid.UUID,
    payment: PaymentInput,
    *,
    past_due: bool,
    received_at: datetime,
) -> PaymentOutcome:
    """Record a payment once per idempotency key and recompute the invoice's money and status."""
    invoice, existing = lock_for_payment(session, invoice_id, payment.idempotency_key)
    if existing is not None:
        return _outcome(invoice, existing, duplicate=True)
    if invoice.status in FINAL_STATUSES:
        raise InvalidInvoiceOperation(f"invoice is {invoice.status}; it takes no more payments")
    amount = payment_amount(payment.amount, invoice.currency)
    payment_currency(payment.currency, invoice.currency)
    credit_before = invoice.credit_amount
    row = add_payment_row(session, invoice, payment, amount, received_at=received_at)
    if invoice.credit_amount > credit_before:
        add_event(
            session,
            invoice.id,
            "credit.created",
            actor=payment.actor,
            data={"amount": str(invoice.credit_amount), "reason": "overpayment"},
            dedupe_key=f"payment:{payment.idempotency_key}:credit",
        )
        # The client's credit, applied to their next invoice in this currency (same key as migration 0008).
        customer_credit.record(
            session,
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            amount=invoice.credit_amount - credit_before,
            kind="overpayment",
            dedupe_key=f"invoice:{invoice.id}:overpayment",
            invoice_id=invoice.id,
        )
    status = settle_status(
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        past_due=past_due,
        amount_credited=invoice.amount_credited,
    )
    if status != invoice.status:
        invoice.status = str(status)
        if status in FINAL_STATUSES:
            invoice.closed_at = received_at
        add_event(
            session,
            invoice.id,
            f"status.{status}",
            actor=payment.actor,
            data={"reason": "payment"},
            dedupe_key=f"payment:{payment.idempotency_key}:status",
        )
    return _outcome(invoice, row, duplicate=False)


def lock_for_payment(session: Session, invoice_id: uuid.UUID, key: str) -> tuple[Invoice, Payment | None]:
    """The invoice, locked, and the payment already recorded under ``key`` if there is one: a key is
    once per payment, so the same key on another invoice is refused rather than recorded twice."""
    invoice = get_invoice(session, invoice_id, lock=True, children=False)
    existing = session.scalars(select(Payment).where(Payment.idempotency_key == key)).one_or_none()
    if existing is not None and existing.invoice_id != invoice.id:
        raise InvalidInvoiceOperation(
            f"idempotency key {key!r} already recorded a payment on another invoice"
        )
    return invoice, existing


def add_payment_row(
    session: Session,
    invoice: Invoice,
    payment: PaymentInput,
    amount: Decimal,
    *,
    received_at: datetime,
    note: str | None = None,
) -> Payment:
    """The ``payments`` row, the invoice's money recomputed and the ``payment.recorded`` event."""
    row = Payment(
        invoice_id=invoice.id,
        idempotency_key=payment.idempotency_key,
        amount=amount,
        currency=invoice.currency,
        method=payment.method,
        reference=payment.reference,
        received_at=received_at,
    )
    session.add(row)
    invoice.amount_paid = invoice.amount_paid + amount
    invoice.amount_due, invoice.credit_amount = split(
        invoice.total, invoice.amount_paid, invoice.amount_credited
    )
    session.flush()
    data: dict[str, object] = {
        "payment_id": str(row.id),
        "amount": str(amount),
        "method": payment.method,
        "reference": payment.reference,
        "amount_due": str(invoice.amount_due),
    }
    if note is not None:
        data["note"] = note
    add_event(
        session,
        invoice.id,
        "payment.recorded",
        actor=payment.actor,
        data=data,
        dedupe_key=f"payment:{payment.idempotency_key}",
    )
    return row


def _outcome(invoice: Invoice, payment: Payment, *, duplicate: bool) -> PaymentOutcome:
    return PaymentOutcome(
        payment_id=str(payment.id),
        duplicate=duplicate,
        status=invoice.status,
        amount_paid=str(invoice.amount_paid),
        amount_due=str(invoice.amount_due),
        credit=str(invoice.credit_amount),
    )


def close(session: Session, invoice_id: uuid.UUID, status: InvoiceStatus, *, reason: str, actor: str) -> None:
    """Void or write off. Idempotent: closing an invoice already in that state changes nothing."""
    invoice = get_invoice(session, invoice_id, lock=True, children=False)
    if invoice.status == status:
        return
    if invoice.status in FINAL_STATUSES:
        raise InvalidInvoiceOperation(f"invoice is already {invoice.status}")
    if status == InvoiceStatus.VOID and invoice.amount_paid > 0:
        raise InvalidInvoiceOperation("an invoice with payments cannot be voided")
    if status == InvoiceStatus.VOID and invoice.amount_credited > 0:
        raise InvalidInvoiceOperation(
            "an invoice with credit notes cannot be voided; credit the rest instead"
        )
    data = {"reason": reason}
    if status == InvoiceStatus.UNCOLLECTIBLE:
        data["written_off"] = str(invoice.amount_due)
    invoice.status = str(status)
    invoice.void_reason = reason
    invoice.closed_at = datetime.now(UTC)
    if status == InvoiceStatus.VOID:
        # A voided invoice bills nothing: its expenses and time go back to the unbilled pool.
        released = session.execute(
            update(BillableItem).where(BillableItem.invoice_id == invoice.id).values(invoice_id=None)
        ).rowcount  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
        if released:
            data["released_billable_items"] = str(released)
    add_event(
        session,
        invoice.id,
        f"status.{status}",
        actor=actor,
        data=data,
        dedupe_key=f"invoice:{invoice.id}:{status}",
    )


def revise_draft(session: Session, invoice_id: uuid.UUID, revision: int, changes: DraftChanges) -> int:
    """Apply an edit to a draft and move it to ``revision`` (idempotent: a retry finds it done).
    A new revision invalidates every approval link issued for the old one."""
    invoice = get_invoice(session, invoice_id, lock=True)
    if invoice.revision >= revision:
        return invoice.revision
    if invoice.status != InvoiceStatus.DRAFT or invoice.number is not None:
        raise InvalidInvoiceOperation(f"invoice is {invoice.status}; only a draft can be edited")
    changed: dict[str, str] = {}
    if changes.lines is not None:
        totals = replace_lines(session, invoice, parse_lines(changes.lines))
        changed["total"] = str(totals.total)
    if changes.notes is not None:
        invoice.notes = changes.notes
        changed["notes"] = "changed"
    if changes.due_date is not None:
        invoice.requested_due_date = date.fromisoformat(changes.due_date)
        changed["due_date"] = changes.due_date
    invoice.revision = revision
    add_event(
        session,
        invoice.id,
        "draft.revised",
        actor=changes.actor,
        data={"revision": str(revision), **changed},
        dedupe_key=f"invoice:{invoice.id}:revision:{revision}",
    )
    return revision


__all__ = [
    "CREDIT_METHOD",
    "InvalidInvoiceOperation",
    "InvoiceNotFound",
    "NewInvoice",
    "add_event",
    "apply_payment",
    "close",
    "create_invoice",
    "get_invoice",
    "issue",
    "overdue_instant",
    "revise_draft",
    "set_status",
    "timeline",
]
