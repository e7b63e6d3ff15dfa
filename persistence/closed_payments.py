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

from sqlalchemy.orm import Session

from billing.money import parse_decimal, require_minor_units
from billing.status import InvoiceStatus
from persistence import customer_credit
from persistence.invoices import (
    InvalidInvoiceOperation,
    _outcome,
    add_event,
    add_payment_row,
    lock_for_payment,
)
from workflows.payloads import PaymentInput, PaymentOutcome

CREDITABLE_STATUSES = (InvoiceStatus.PAID, InvoiceStatus.CREDITED)


def credit_closed_payment(
    session: Session, invoice_id: uuid.UUID, payment: PaymentInput, *, received_at: datetime
) -> PaymentOutcome:
    """Record ``payment`` on a paid or credited invoice as customer credit (see the module docstring)."""
    invoice, existing = lock_for_payment(session, invoice_id, payment.idempotency_key)
    if existing is not None:
        return _outcome(invoice, existing, duplicate=True)
    if invoice.status not in CREDITABLE_STATUSES:
        raise InvalidInvoiceOperation(f"invoice is {invoice.status}; its money cannot become credit")
    amount = require_minor_units(parse_decimal(payment.amount), invoice.currency, field="amount")
    if amount <= 0:
        raise InvalidInvoiceOperation("amount: must be greater than 0")
    row = add_payment_row(
        session,
        invoice,
        payment,
        amount,
        received_at=received_at,
        note=f"the invoice was already {invoice.status}: kept as customer credit",
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
