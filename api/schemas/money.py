"""What moves money on an invoice: payments, credit notes, refunds, void and write-off."""

from __future__ import annotations

import uuid

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

from api.schemas.common import Currency, Strict
from api.schemas.invoices import CreditNoteOut, LineCreate
from api.validation import ApiDateTime, DecimalStr


class PaymentCreate(Strict):
    amount: DecimalStr
    currency: Currency | None = None
    method: str = Field(default="bank_transfer", min_length=1, max_length=40)
    reference: str = Field(default="", max_length=200)
    received_at: ApiDateTime | None = None


class PaymentResult(BaseModel):
    payment_id: uuid.UUID
    duplicate: bool
    status: str
    amount_paid: str
    amount_due: str
    credit: str


class CreditNoteCreate(Strict):
    """Either ``{"reason": ..., "full": true}`` (the whole invoice, with its own lines) or
    ``{"reason": ..., "lines": [...]}`` (lines as on an invoice, tax included in the amount)."""

    reason: str = Field(
        min_length=1, max_length=2000, description="Why the invoice is credited; printed on the credit note."
    )
    full: bool = False
    lines: list[LineCreate] | None = Field(default=None, min_length=1, max_length=500)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The same key twice issues one credit note (or send the Idempotency-Key header).",
    )

    @model_validator(mode="after")
    def _full_or_lines(self) -> CreditNoteCreate:
        if self.full and self.lines:
            raise ValueError('give either "full": true or "lines", not both')
        if not self.full and not self.lines:
            raise ValueError('give "full": true to credit the whole invoice, or the "lines" to credit')
        return self


class CreditNoteResult(BaseModel):
    duplicate: bool
    status: str
    amount_paid: str
    amount_credited: str
    amount_due: str
    credit: str
    credit_note: CreditNoteOut


class RefundCreate(Strict):
    payment_id: uuid.UUID = Field(description="The recorded payment the money is returned from.")
    amount: DecimalStr
    reason: str = Field(default="", max_length=2000)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The same key twice records one refund (or send the Idempotency-Key header).",
    )


class RefundResult(BaseModel):
    refund_id: uuid.UUID
    duplicate: bool
    kind: str
    status: str
    amount_paid: str
    amount_due: str
    credit: str


class VoidCreate(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class ResendCreate(Strict):
    reason: str = Field(default="", max_length=2000, description="why, for the timeline")


class UncollectibleCreate(Strict):
    reason: str = Field(default="", max_length=2000)
