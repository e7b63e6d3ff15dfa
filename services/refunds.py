"""Refunds return money from one recorded payment (semantics in ``persistence.refunds``): on an open
invoice through the workflow's ``record_refund`` Update (the amount is due again), on a paid or credited
invoice directly against the customer credit it created. The same ``idempotency_key`` records one refund;
the operator API and Stripe refund events both come here."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from billing.errors import MoneyError
from billing.money import format_money
from billing.payments import payment_amount
from persistence import invoices as repo
from persistence import refunds
from persistence.models import Payment
from services.db import Db
from services.errors import Conflict, Invalid, NotFound
from services.workflow_calls import refusal
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import RefundInput, RefundOutcome


async def refund_payment(
    db: Db, temporal: Client, invoice_id: uuid.UUID, refund: RefundInput
) -> RefundOutcome:
    """Record ``refund`` once: ``NotFound`` unknown invoice, ``Invalid`` a refund the payment cannot take,
    ``Conflict`` a refund the invoice's state refuses (void, written off, a closed invoice without enough
    unused credit)."""

    def existing(session: Session) -> RefundOutcome | None:
        row = refunds.find(session, refund.idempotency_key)
        if row is None:
            return None
        if row.invoice_id != invoice_id:
            raise Conflict("this idempotency_key refunded a payment of another invoice")
        invoice = repo.get_invoice(session, invoice_id)
        return refunds.outcome(invoice, row, duplicate=True)

    def precheck(session: Session) -> tuple[str, str]:
        try:
            invoice = repo.get_invoice(session, invoice_id)
        except repo.InvoiceNotFound:
            raise NotFound(f"invoice {invoice_id} does not exist") from None
        payment = session.get(Payment, uuid.UUID(refund.payment_id))
        if payment is None or payment.invoice_id != invoice.id:
            raise Invalid(
                "payment_id", f"invoice {invoice.number or invoice.id} has no payment {refund.payment_id}"
            )
        if payment.method == repo.CREDIT_METHOD:
            raise Invalid(
                "payment_id",
                "customer credit applied to the invoice is not money received; it cannot be refunded",
            )
        try:
            amount = payment_amount(refund.amount, invoice.currency)
        except MoneyError as exc:
            raise Invalid("amount", str(exc)) from None
        left = payment.amount - refunds.refunded(session, payment.id)
        if amount > left:
            raise Invalid(
                "amount",
                f"amount: {format_money(amount, invoice.currency)} is more than the "
                f"{format_money(left, invoice.currency)} still refundable of this payment",
            )
        return invoice.status, invoice.workflow_id

    def direct(session: Session) -> RefundOutcome:
        try:
            return refunds.apply_refund(session, invoice_id, refund, past_due=None)
        except repo.InvalidInvoiceOperation as exc:
            raise Conflict(str(exc)) from None

    found = await db.run(existing)
    if found is not None:
        return found
    invoice_status, workflow_id = await db.run(precheck)
    if invoice_status in refunds.OPEN_STATUSES:
        try:
            return await temporal.get_workflow_handle(workflow_id).execute_update(
                InvoiceWorkflow.record_refund, refund
            )
        except (WorkflowUpdateFailedError, RPCError) as exc:
            found = await db.run(existing)
            if found is not None:
                return found
            invoice_status = await db.run(lambda s: repo.get_invoice(s, invoice_id).status)
            if invoice_status in refunds.OPEN_STATUSES:
                raise refusal(exc) from exc
            # Closed meanwhile (paid by a concurrent payment): refund its credit instead.
    return await db.run(direct)
