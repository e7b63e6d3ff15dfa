"""Invoices as the API takes and shows them: lines, totals, timeline, holds, problems, accounting."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

from api.schemas.common import Currency, Offsets, Strict, Terms
from api.schemas.customers import TaxCategory
from api.validation import ApiDate, DecimalStr

# ---------------------------------------------------------------- invoices


class LineCreate(Strict):
    description: str = Field(min_length=1, max_length=1000)
    quantity: DecimalStr = Decimal(1)
    unit_price: DecimalStr
    discount_percent: DecimalStr = Decimal(0)
    discount_amount: DecimalStr = Decimal(0)
    tax_rate: DecimalStr = Field(default=Decimal(0), description='Percent, e.g. "19".')


class InvoiceLineCreate(LineCreate):
    """A line of a new invoice, with what an e-invoice says of it."""

    unit: str = Field(
        default="C62", pattern=r"^[A-Z0-9]{1,3}$", description="UN/ECE Rec 20: HUR hours, DAY, MON, C62 one."
    )
    tax_category: TaxCategory | None = Field(
        default=None, description="VAT category (BT-151); default S above 0 %, Z at 0 %."
    )
    tax_exemption_reason: str = Field(
        default="", max_length=1000, description="Why no VAT is charged (BT-120): needed for E, AE, K, G, O."
    )


class InvoiceCreate(Strict):
    customer_id: uuid.UUID
    currency: Currency | None = Field(default=None, description="Defaults to the customer's currency.")
    lines: list[InvoiceLineCreate] = Field(min_length=1, max_length=500)
    purchase_order: str = Field(default="", max_length=200, description="Purchase order reference (BT-13).")
    contract_ref: str = Field(default="", max_length=200, description="Contract reference (BT-12).")
    project_ref: str = Field(
        default="", max_length=200, description="Project reference (BT-11); default the invoice's project."
    )
    period_start: date | None = Field(default=None, description="Invoicing period start (BT-73).")
    period_end: date | None = Field(default=None, description="Invoicing period end (BT-74).")

    @model_validator(mode="after")
    def _period_in_order(self) -> InvoiceCreate:
        if self.period_start and self.period_end and self.period_end < self.period_start:
            raise ValueError("period_end: must not be before period_start (BR-29)")
        return self

    payment_terms: Terms | None = Field(default=None, description="net_N, due_on_receipt, eom, net_N_eom.")
    due_date: ApiDate | None = Field(default=None, description="Fixed due date; overrides payment terms.")
    notes: str = Field(default="", max_length=5000)
    reminder_offsets: Offsets | None = None
    dunning_policy: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="A dunning policy by name; wins over the customer's.",
    )


class LineOut(BaseModel):
    description: str
    quantity: str
    unit_price: str
    discount_percent: str
    discount_amount: str
    tax_rate: str
    gross: str
    discount: str
    net: str
    unit: str = "C62"
    tax_category: str = ""
    tax_exemption_reason: str = ""


class EInvoiceOut(BaseModel):
    """The e-invoice produced at issue: ``status`` valid, or invalid (not sent: ``errors`` are the
    official rules that failed; fix the data, then ``POST /invoices/{id}/einvoice/retry``)."""

    format: str
    status: str
    url: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class PaymentOut(BaseModel):
    id: uuid.UUID
    amount: str
    currency: str
    method: str
    reference: str
    received_at: datetime


class EventOut(BaseModel):
    at: datetime
    actor: str
    kind: str
    data: dict[str, Any]


class AccountingOut(BaseModel):
    """Where the invoice stands in the accounting system: ``status`` is pending, synced or sync_failed
    (``error`` in the provider's words; fix the mapping, then ``POST /invoices/{id}/accounting/retry``)."""

    provider: str
    status: str
    external_id: str | None
    error: str | None
    synced_at: datetime | None


class CreditNoteOut(BaseModel):
    """A credit note: ``total`` (tax included, invoice currency) reduced the invoice's amount due;
    ``to_customer_credit`` is the part beyond what was still due, credited to the client's next invoice."""

    id: uuid.UUID
    invoice_id: uuid.UUID
    number: str
    currency: str
    reason: str
    full: bool
    subtotal: str
    tax_total: str
    total: str
    to_customer_credit: str
    issue_date: date
    created_at: datetime
    pdf_url: str | None
    lines: list[LineOut] = Field(default_factory=list)
    accounting: AccountingOut | None = None


class RefundOut(BaseModel):
    """``kind`` ``reopened``: the amount is owed again; ``credit``: the invoice's customer credit paid out."""

    id: uuid.UUID
    payment_id: uuid.UUID
    amount: str
    currency: str
    kind: str
    reason: str
    reference: str
    created_at: datetime


class HoldOut(BaseModel):
    """A dunning hold on the invoice or its customer; ``active`` while neither released nor resumed."""

    id: uuid.UUID
    kind: str  # dispute | payment
    scope: str  # invoice | customer
    reason: str
    started_at: datetime
    resume_at: datetime | None
    released_at: datetime | None
    released_by: str | None
    active: bool


class ActivityProblemOut(BaseModel):
    """A step of the invoice's workflow that keeps failing (retried with backoff, without limit): fix
    the cause, then ``POST /invoices/{id}/activities/retry`` runs it again at once."""

    activity: str
    attempt: int = Field(description="The attempt now waiting; attempt - 1 have failed.")
    error: str
    error_type: str
    last_failed_at: datetime | None
    next_attempt_at: datetime | None
    retry: str = Field(description="The operator action that retries it now.")


class InvoiceOut(BaseModel):
    id: uuid.UUID
    workflow_id: str
    customer_id: uuid.UUID
    status: str
    number: str | None
    currency: str
    payment_terms: str
    issue_date: date | None
    due_date: date | None
    subtotal: str
    discount_total: str
    tax_total: str
    total: str
    amount_paid: str
    amount_due: str
    credit: str
    notes: str
    pdf_url: str | None
    created_at: datetime
    amount_credited: str = "0"
    lines: list[LineOut] = Field(default_factory=list)
    payments: list[PaymentOut] = Field(default_factory=list)
    timeline: list[EventOut] = Field(default_factory=list)
    accounting: AccountingOut | None = None
    credit_notes: list[CreditNoteOut] = Field(default_factory=list)
    refunds: list[RefundOut] = Field(default_factory=list)
    dunning_policy: str | None = None  # frozen at issue (before: the one it would get)
    holds: list[HoldOut] = Field(default_factory=list)
    purchase_order: str = ""
    contract_ref: str = ""
    project_ref: str = ""
    period_start: date | None = None
    period_end: date | None = None
    einvoice: EInvoiceOut | None = None
    link_activity: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description='Hosted page views and email opens: {"viewed": {"count": 12, "visitors": 2}, ...}.',
    )
    problems: list[ActivityProblemOut] = Field(
        default_factory=list, description="Failing workflow steps, with their error and attempt count."
    )


class InvoicePage(BaseModel):
    items: list[InvoiceOut]
    limit: int
    offset: int
