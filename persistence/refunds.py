"""Refunds of recorded payments, once per idempotency key, in one transaction that locks the invoice.

What a refund means depends on where the invoice stands:

- **open, overdue or partially paid**: the money goes back and is owed again: ``amount_paid`` drops,
  the amount due rises and the status is settled again (partially paid → open, say). The invoice's
  workflow runs this (Update ``record_refund``), so its timers and state follow.
- **paid or credited** (closed): only the customer credit that invoice created (an overpayment, or the
  payments of an invoice later credited in full) can be paid out, and no more than the customer still
  has unapplied: the credit ledger goes down and the invoice stays closed. Refunding beyond that would
  reopen a closed invoice; it is refused (issue the credit note while the invoice is open instead).
- void or written off: refused.

Credit applied at issue (payments of method ``customer_credit``) is not money received and cannot be
refunded; the refundable amount of a payment is its amount minus its earlier refunds.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.credits import split
from billing.errors import MoneyError
from billing.money import format_money, parse_decimal, require_minor_units
from billing.status import FINAL_STATUSES, InvoiceStatus, settle_status
from persistence import customer_credit
from persistence.invoices import CREDIT_METHOD, InvalidInvoiceOperation, add_event, get_invoice
from persistence.models import Payment, Refund
from workflows.payloads import RefundInput, RefundOutcome

OPEN_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.OVERDUE, InvoiceStatus.PARTIALLY_PAID)
CLOSED_PAID_STATUSES = (InvoiceStatus.PAID, InvoiceStatus.CREDITED)


def refunded(session: Session, payment_id: uuid.UUID) -> Decimal:
    return Decimal(
        session.scalar(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(Refund.payment_id == payment_id)
        )
        or 0
    )


def find(session: Session, idempotency_key: str) -> Refund | None:
    return session.scalars(select(Refund).where(Refund.idempotency_key == idempotency_key)).one_or_none()


def for_invoice(session: Session, invoice_id: uuid.UUID) -> list[Refund]:
    return list(
        session.scalars(select(Refund).where(Refund.invoice_id == invoice_id).order_by(Refund.created_at))
    )


def outcome(invoice, row: Refund, *, duplicate: bool) -> RefundOutcome:  # type: ignore[no-untyped-def]
    return RefundOutcome(
        refund_id=str(row.id),
        duplicate=duplicate,
        kind=row.kind,
        status=invoice.status,
        amount_paid=str(invoice.amount_paid),
        amount_due=str(invoice.amount_due),
        credit=str(invoice.credit_amount),
    )


def apply_refund(
    session: Session, invoice_id: uuid.UUID, refund: RefundInput, *, past_due: bool | None
) -> RefundOutcome:
    """Record a refund and its effect (see the module docstring). ``past_due`` comes from the invoice's
    workflow, which must run refunds of open invoices; None (a closed invoice, no workflow) refuses them."""
    invoice = get_invoice(session, invoice_id, lock=True)
    existing = find(session, refund.idempotency_key)
    if existing is not None:
        if existing.invoice_id != invoice.id:
            raise InvalidInvoiceOperation(
                f"idempotency key {refund.idempotency_key!r} already refunded a payment of another invoice"
            )
        return outcome(invoice, existing, duplicate=True)
    try:
        payment_id = uuid.UUID(refund.payment_id)
    except ValueError:
        raise InvalidInvoiceOperation(f"payment_id: {refund.payment_id!r} is not a payment id") from None
    payment = session.get(Payment, payment_id)
    if payment is None or payment.invoice_id != invoice.id:
        raise InvalidInvoiceOperation(
            f"payment_id: invoice {invoice.number or invoice.id} has no payment {refund.payment_id}"
        )
    if payment.method == CREDIT_METHOD:
        raise InvalidInvoiceOperation(
            "payment_id: customer credit applied to the invoice is not money received; it cannot be refunded"
        )
    cur = invoice.currency
    try:
        amount = require_minor_units(parse_decimal(refund.amount, field="amount"), cur, field="amount")
    except MoneyError as exc:
        raise InvalidInvoiceOperation(str(exc)) from None
    if amount <= 0:
        raise InvalidInvoiceOperation("amount: must be greater than 0")
    left = payment.amount - refunded(session, payment.id)
    if amount > left:
        raise InvalidInvoiceOperation(
            f"amount: {format_money(amount, cur)} is more than the {format_money(left, cur)} still "
            "refundable of this payment"
        )
    if invoice.status in OPEN_STATUSES:
        if past_due is None:
            raise InvalidInvoiceOperation("an open invoice is refunded through its workflow")
        kind = "reopened"
    elif invoice.status in CLOSED_PAID_STATUSES:
        customer_credit.lock_customer(session, invoice.customer_id)
        available = min(invoice.credit_amount, customer_credit.balance(session, invoice.customer_id, cur))
        if amount > available:
            raise InvalidInvoiceOperation(
                f"invoice is {invoice.status}: only its unused customer credit of "
                f"{format_money(max(available, Decimal(0)), cur)} "
                "can be refunded; a closed invoice is not reopened by a refund (credit it while it is open "
                "instead)"
            )
        kind = "credit"
    else:
        raise InvalidInvoiceOperation(f"invoice is {invoice.status}; it has nothing to refund")

    row = Refund(
        invoice_id=invoice.id,
        payment_id=payment.id,
        idempotency_key=refund.idempotency_key,
        amount=amount,
        currency=cur,
        kind=kind,
        reason=refund.reason.strip(),
        reference=refund.reference,
        actor=refund.actor,
    )
    session.add(row)
    session.flush()
    invoice.amount_paid = invoice.amount_paid - amount
    invoice.amount_due, invoice.credit_amount = split(
        invoice.total, invoice.amount_paid, invoice.amount_credited
    )
    add_event(
        session,
        invoice.id,
        "refund.recorded",
        actor=refund.actor,
        data={
            "refund_id": str(row.id),
            "payment_id": str(payment.id),
            "amount": str(amount),
            "kind": kind,
            "reason": row.reason,
            "reference": refund.reference,
            "amount_due": str(invoice.amount_due),
        },
        dedupe_key=f"refund:{refund.idempotency_key}",
    )
    if kind == "credit":
        customer_credit.record(
            session,
            customer_id=invoice.customer_id,
            currency=cur,
            amount=-amount,
            kind="refund",
            dedupe_key=f"refund:{row.id}",
            invoice_id=invoice.id,
        )
    else:
        assert past_due is not None
        status = settle_status(
            total=invoice.total,
            amount_paid=invoice.amount_paid,
            past_due=past_due,
            amount_credited=invoice.amount_credited,
        )
        if status != invoice.status:
            invoice.status = str(status)
            if status not in FINAL_STATUSES:
                invoice.closed_at = None
            add_event(
                session,
                invoice.id,
                f"status.{status}",
                actor=refund.actor,
                data={"reason": "refund"},
                dedupe_key=f"refund:{refund.idempotency_key}:status",
            )
    return outcome(invoice, row, duplicate=False)
