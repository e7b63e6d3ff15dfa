"""Recording a payment on an invoice: once per idempotency key, through the invoice's workflow.

The amount rule is ``billing.payments`` (the workflow's validator and persistence use the same one); a
key that already recorded a payment answers with that payment instead of recording another.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client

from billing.errors import MoneyError
from billing.limits import check_amount
from billing.payments import payment_amount, payment_currency
from persistence import invoices as repo
from persistence.models import Payment
from services.db import Db
from services.errors import Conflict, Invalid, NotFound
from services.workflow_calls import run_update
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import PaymentInput


@dataclass(frozen=True)
class PaymentRecorded:
    payment_id: uuid.UUID
    duplicate: bool
    status: str
    amount_paid: str
    amount_due: str
    credit: str


@dataclass(frozen=True)
class ReceivedPayment:
    """Money received for one invoice; ``idempotency_key`` is namespaced by the caller (``api:``, ...)."""

    amount: Decimal
    idempotency_key: str
    method: str = "bank_transfer"
    reference: str = ""
    currency: str | None = None
    received_at: datetime | None = None
    actor: str = "api"


async def record_payment(
    db: Db,
    temporal: Client,
    invoice_id: uuid.UUID,
    payment: ReceivedPayment,
    *,
    max_amount: Decimal | None = None,
) -> PaymentRecorded:
    def check(session: Session) -> tuple[str, PaymentRecorded | None]:
        try:
            invoice = repo.get_invoice(session, invoice_id)
        except repo.InvoiceNotFound:
            raise NotFound(f"invoice {invoice_id} does not exist") from None
        for name, rule in (
            ("amount", lambda: payment_amount(payment.amount, invoice.currency)),
            ("currency", lambda: payment_currency(payment.currency, invoice.currency)),
            ("amount", lambda: check_amount(payment.amount, "amount", max_amount, invoice.currency)),
        ):
            try:
                rule()
            except MoneyError as exc:
                raise Invalid(name, str(exc)) from None
        if payment.received_at is not None and payment.received_at.tzinfo is None:
            raise Invalid("received_at", "received_at needs a timezone, e.g. 2026-11-25T10:00:00Z")
        prior = session.scalars(
            select(Payment).where(Payment.idempotency_key == payment.idempotency_key)
        ).one_or_none()
        if prior is None:
            return invoice.workflow_id, None
        if prior.invoice_id != invoice_id:
            raise Conflict("this Idempotency-Key recorded a payment on another invoice")
        return invoice.workflow_id, PaymentRecorded(
            payment_id=prior.id,
            duplicate=True,
            status=invoice.status,
            amount_paid=str(invoice.amount_paid),
            amount_due=str(invoice.amount_due),
            credit=str(invoice.credit_amount),
        )

    workflow_id, prior = await db.run(check)
    if prior is not None:
        return prior
    outcome = await run_update(
        temporal,
        workflow_id,
        InvoiceWorkflow.record_payment,
        PaymentInput(
            amount=str(payment.amount),
            idempotency_key=payment.idempotency_key,
            method=payment.method,
            reference=payment.reference,
            currency=payment.currency,
            received_at=payment.received_at,
            actor=payment.actor,
        ),
    )
    return PaymentRecorded(
        payment_id=uuid.UUID(outcome.payment_id),
        duplicate=outcome.duplicate,
        status=outcome.status,
        amount_paid=outcome.amount_paid,
        amount_due=outcome.amount_due,
        credit=outcome.credit,
    )
