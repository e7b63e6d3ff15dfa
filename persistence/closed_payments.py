"""Money received for an invoice that is already closed as paid or credited: kept as the client's credit.

The invoice's workflow takes no more payments once the invoice is paid, but the money exists (a client
paid twice, by card and by transfer, say). It is recorded here, in one transaction that locks the
invoice: a ``payments`` row (so a refund of that money finds it, and the invoice shows what arrived),
``amount_paid`` and the invoice's credit grow by the amount, and the customer credit ledger gets an
``overpayment`` entry that the client's next invoice in this currency uses. The invoice stays closed.
Once per idempotency key, like every payment; void and written-off invoices are refused (an operator
decides what that money is for).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.credits import split
from billing.money import parse_decimal, require_minor_units
from billing.status import InvoiceStatus
from persistence import customer_credit
from persistence.invoices import InvalidInvoiceOperation, _outcome, add_event, get_invoice
from persistence.models import Payment
from workflows.payloads import PaymentInput, PaymentOutcome

CREDITABLE_STATUSES = (InvoiceStatus.PAID, InvoiceStatus.CREDITED)


def credit_closed_payment(
    session: Session, invoice_id: uuid.UUID, payment: PaymentInput, *, received_at: datetime
) -> PaymentOutcome:
    """Record ``payment`` on a paid or credited invoice as customer credit (see the module docstring)."""
    invoice = get_invoice(session, invoice_id, lock=True)
    existing = session.scalars(
        select(Payment).where(Payment.idempotency_key == payment.idempotency_key)
    ).one_or_none()
    if existing is not None:
        if existing.invoice_id != invoice.id:
            raise InvalidInvoiceOperation(
                f"idempotency key {payment.idempotency_key!r} already recorded a payment on another invoice"
            )
        return _outcome(invoice, existing, duplicate=True)
    if invoice.status not in CREDITABLE_STATUSES:
        raise InvalidInvoiceOperation(f"invoice is {invoice.status}; its money cannot become credit")
    amount = require_minor_units(parse_decimal(payment.amount), invoice.currency, field="amount")
    if amount <= 0:
        raise InvalidInvoiceOperation("amount: must be greater than 0")
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
    session.flush()
    invoice.amount_paid = invoice.amount_paid + amount
    invoice.amount_due, invoice.credit_amount = split(
        invoice.total, invoice.amount_paid, invoice.amount_credited
    )
    add_event(
        session,
        invoice.id,
        "payment.recorded",
        actor=payment.actor,
        data={
            "payment_id": str(row.id),
            "amount": str(amount),
            "method": payment.method,
            "reference": payment.reference,
            "amount_due": str(invoice.amount_due),
            "note": f"the invoice was already {invoice.status}: kept as customer credit",
        },
        dedupe_key=f"payment:{payment.idempotency_key}",
    )
    add_event(
        session,
        invoice.id,
        "credit.created",
        actor=payment.actor,
        data={"amount": str(amount), "reason": f"payment on a {invoice.status} invoice"},
        dedupe_key=f"payment:{payment.idempotency_key}:credit",
    )
    customer_credit.record(
        session,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        amount=amount,
        kind="overpayment",
        dedupe_key=f"payment:{payment.idempotency_key}:credit",
        invoice_id=invoice.id,
    )
    return _outcome(invoice, row, duplicate=False)
