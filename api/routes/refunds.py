"""Refunds: ``POST /invoices/{id}/refunds`` returns money from one recorded payment (semantics in
``persistence.refunds``): on an open invoice through the workflow's ``record_refund`` Update (the amount
is due again), on a paid or credited invoice directly against the customer credit it created. The same
``idempotency_key`` records one refund. Stripe refund events use ``refund_payment`` too."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Header, HTTPException, Response, status
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.deps import Db, DbDep, Operator, TemporalDep
from api.routes.invoices import update_error
from api.schemas import RefundCreate, RefundResult
from billing.errors import MoneyError
from billing.money import format_money, parse_decimal, require_minor_units
from persistence import invoices as repo
from persistence import refunds
from persistence.models import Payment
from workflows.payloads import RefundInput, RefundOutcome
from workflows.invoice import InvoiceWorkflow

router = APIRouter(tags=["refunds"])


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}])


async def refund_payment(
    db: Db, temporal: Client, invoice_id: uuid.UUID, refund: RefundInput
) -> RefundOutcome:
    """Record ``refund`` once: 404 unknown invoice, 422 a refund the payment cannot take, 409 a refund the
    invoice's state refuses (void, written off, a closed invoice without enough unused credit)."""

    def existing(session: Session) -> RefundOutcome | None:
        row = refunds.find(session, refund.idempotency_key)
        if row is None:
            return None
        if row.invoice_id != invoice_id:
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail="this idempotency_key refunded a payment of another invoice"
            )
        invoice = repo.get_invoice(session, invoice_id)
        return refunds.outcome(invoice, row, duplicate=True)

    def precheck(session: Session) -> tuple[str, str]:
        try:
            invoice = repo.get_invoice(session, invoice_id)
        except repo.InvoiceNotFound:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"invoice {invoice_id} does not exist"
            ) from None
        payment = session.get(Payment, uuid.UUID(refund.payment_id))
        if payment is None or payment.invoice_id != invoice.id:
            raise _unprocessable(
                "payment_id", f"invoice {invoice.number or invoice.id} has no payment {refund.payment_id}"
            )
        if payment.method == repo.CREDIT_METHOD:
            raise _unprocessable(
                "payment_id",
                "customer credit applied to the invoice is not money received; it cannot be refunded",
            )
        try:
            amount = require_minor_units(
                parse_decimal(refund.amount, field="amount"), invoice.currency, field="amount"
            )
        except MoneyError as exc:
            raise _unprocessable("amount", str(exc)) from None
        if amount <= 0:
            raise _unprocessable("amount", "amount: must be greater than 0")
        left = payment.amount - refunds.refunded(session, payment.id)
        if amount > left:
            raise _unprocessable(
                "amount",
                f"amount: {format_money(amount, invoice.currency)} is more than the "
                f"{format_money(left, invoice.currency)} still refundable of this payment",
            )
        return invoice.status, invoice.workflow_id

    def direct(session: Session) -> RefundOutcome:
        try:
            return refunds.apply_refund(session, invoice_id, refund, past_due=None)
        except repo.InvalidInvoiceOperation as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None

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
                raise update_error(exc) from exc
            # Closed meanwhile (paid by a concurrent payment): refund its credit instead.
    return await db.run(direct)


@router.post(
    "/invoices/{invoice_id}/refunds", status_code=status.HTTP_201_CREATED, response_model=RefundResult
)
async def create_refund(
    invoice_id: uuid.UUID,
    body: RefundCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    operator: Operator,
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> RefundResult:
    """Return money from a recorded payment. Open invoice: the amount is due again. Paid or credited
    invoice: only the customer credit it created (overpayment, or the payments of an invoice credited in
    full) can be refunded, and the invoice stays closed."""
    key = body.idempotency_key or idempotency_key
    if not key:
        raise _unprocessable(
            "idempotency_key", "idempotency_key is required (body field or Idempotency-Key header)"
        )
    outcome = await refund_payment(
        db,
        temporal,
        invoice_id,
        RefundInput(
            payment_id=str(body.payment_id),
            amount=str(body.amount),
            idempotency_key=f"api:{key}",
            reason=body.reason,
            actor=operator,
        ),
    )
    if outcome.duplicate:
        response.status_code = status.HTTP_200_OK
    return RefundResult(
        refund_id=uuid.UUID(outcome.refund_id),
        duplicate=outcome.duplicate,
        kind=outcome.kind,
        status=outcome.status,
        amount_paid=outcome.amount_paid,
        amount_due=outcome.amount_due,
        credit=outcome.credit,
    )
