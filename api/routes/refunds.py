"""Refunds: ``POST /invoices/{id}/refunds`` returns money from one recorded payment (``services.refunds``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Header, Response, status

from api.deps import DbDep, Operator, TemporalDep
from api.schemas import RefundCreate, RefundResult
from services.errors import Invalid
from services.refunds import refund_payment
from workflows.payloads import RefundInput

router = APIRouter(tags=["refunds"])


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
        raise Invalid("idempotency_key", "idempotency_key is required (body field or Idempotency-Key header)")
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
