"""Request and response bodies of the operator API.

Amounts are JSON strings (or integers) parsed by ``billing.money.parse_decimal``: a float such as
``12.1`` is refused with a 422 that says so, because it has already lost precision by the time it
reaches us.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from api.validation import ApiDate, ApiDateTime, DecimalStr, text_fields_validator
from billing.currency import normalize_currency
from billing.reminders import parse_offsets
from billing.terms import parse_terms


def _currency(value: str) -> str:
    return normalize_currency(value)


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown IANA timezone {value!r} (e.g. 'Europe/Berlin', 'America/New_York')"
        ) from None
    return value


def _terms(value: str) -> str:
    return parse_terms(value).code


def _offsets(value: list[int]) -> list[int]:
    return list(parse_offsets(",".join(str(v) for v in value)))


Currency = Annotated[str, AfterValidator(_currency)]
Timezone = Annotated[str, AfterValidator(_timezone)]
Terms = Annotated[str, AfterValidator(_terms)]
Offsets = Annotated[list[int], AfterValidator(_offsets)]


class Strict(BaseModel):
    """Request bodies: unknown fields refused, text storable (no NUL, no lone surrogate) in every field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return text_fields_validator(value)


# ---------------------------------------------------------------- customers


EInvoiceFormat = Literal["none", "facturx", "xrechnung", "peppol"]
TaxCategory = Literal["S", "Z", "E", "AE", "K", "G", "O"]
Endpoint = Annotated[
    str,
    Field(
        max_length=205,
        pattern=r"^(\d{4}:\S{1,200})?$",
        description="Electronic address `scheme:id` (EAS code), e.g. 0208:0123456789 or 9930:DE123456789.",
    ),
]


class PostalAddress(Strict):
    """A structured postal address (EN 16931 BG-8); ``country`` is ISO 3166-1 alpha-2."""

    line1: str = Field(default="", max_length=300)
    line2: str = Field(default="", max_length=300)
    city: str = Field(default="", max_length=120)
    postal_code: str = Field(default="", max_length=32)
    region: str = Field(default="", max_length=120)
    country: str = Field(default="", pattern=r"^([A-Za-z]{2})?$", description="ISO 3166-1 alpha-2, e.g. DE.")


class CustomerCreate(Strict):
    name: str = Field(min_length=1, max_length=300)
    emails: list[EmailStr] = Field(
        min_length=1, max_length=20, description="Billing contacts; invoices go to all."
    )
    currency: Currency = "USD"
    timezone: Timezone = "UTC"
    payment_terms: Terms = "net_30"
    tags: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=50
    )
    address: str | PostalAddress = Field(
        default="", description="Free text (printed as is) or a structured address (needed for e-invoices)."
    )
    tax_id: str = Field(default="", max_length=64, description="The buyer's VAT identifier (BT-48).")
    buyer_reference: str = Field(
        default="", max_length=200, description="BT-10; the Leitweg-ID of a German public buyer."
    )
    endpoint: Endpoint = ""
    einvoice_format: EInvoiceFormat = Field(
        default="none",
        description="none (PDF only), facturx (hybrid PDF), xrechnung (XML), peppol (UBL XML).",
    )
    owner_email: EmailStr | None = Field(
        default=None, description="Internal account owner; overdue escalations go here."
    )
    reminder_offsets: Offsets | None = Field(
        default=None, description="Days relative to the due date, e.g. [-3,0,7,14,30]."
    )
    dunning_policy: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="Name of a dunning policy (GET /dunning-policies).",
    )
    external_ids: dict[
        Annotated[str, Field(min_length=1, max_length=40)],
        Annotated[str, Field(min_length=1, max_length=200)],
    ] = Field(default_factory=dict, description='Ids in source systems, e.g. {"hubspot": "123"}.')


class CustomerUpdate(Strict):
    """Fields to change; only those present change (``null`` clears the optional ones). Currency and
    external ids are fixed once set: invoices and the books already use them. Issued invoices keep the
    timezone, terms and dunning plan they were issued with."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    emails: list[EmailStr] | None = Field(default=None, min_length=1, max_length=20)
    timezone: Timezone | None = None
    payment_terms: Terms | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=60)]] | None = Field(default=None, max_length=50)
    address: str | PostalAddress | None = None
    tax_id: str | None = Field(default=None, max_length=64)
    buyer_reference: str | None = Field(default=None, max_length=200)
    endpoint: Endpoint | None = None
    einvoice_format: EInvoiceFormat | None = None
    owner_email: EmailStr | None = None
    reminder_offsets: Offsets | None = None
    dunning_policy: str | None = Field(default=None, min_length=1, max_length=120)

    @model_validator(mode="after")
    def _required_stay_set(self) -> CustomerUpdate:
        for name in (
            *("name", "emails", "timezone", "payment_terms", "tags", "address", "tax_id"),
            *("buyer_reference", "endpoint", "einvoice_format"),
        ):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name}: cannot be null (leave it out to keep it)")
        return self


class CustomerOut(BaseModel):
    id: uuid.UUID
    name: str
    emails: list[str]
    currency: str
    timezone: str
    payment_terms: str
    tags: list[str]
    address: str
    tax_id: str
    owner_email: str | None
    reminder_offsets: list[int] | None
    external_ids: dict[str, str]
    postal_address: PostalAddress | None = None
    buyer_reference: str = ""
    endpoint: str = ""
    einvoice_format: str = "none"
    created_at: datetime
    credit: dict[str, str] = Field(
        default_factory=dict,
        description="Unapplied customer credit per currency; applied to the next invoice.",
    )
    dunning_policy: str | None = None


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


class UncollectibleCreate(Strict):
    reason: str = Field(default="", max_length=2000)


# ---------------------------------------------------------------- subscriptions


class SubscriptionCreate(Strict):
    customer_id: uuid.UUID
    currency: Currency | None = Field(default=None, description="Defaults to the customer's currency.")
    lines: list[LineCreate] = Field(min_length=1, max_length=500)
    interval: Literal["week", "month", "quarter", "year"]
    interval_count: int = Field(default=1, ge=1, le=52, description="Every N intervals.")
    anchor_day: int | None = Field(
        default=None, ge=1, le=31, description="Day of month; 31 clamps to the month's end."
    )
    start_date: ApiDate
    end_date: ApiDate | None = None
    max_cycles: int | None = Field(default=None, ge=1, le=10000)
    timezone: Timezone | None = Field(default=None, description="Defaults to the customer's timezone.")
    send_time: time = Field(default=time(9, 0), description="Local time the cycle's invoice goes out.")
    auto_send: bool = Field(
        default=True, description="False: each cycle's invoice waits for an operator's approval."
    )
    payment_terms: Terms | None = None
    catch_up: Literal["all", "latest", "none"] = Field(
        default="all", description="Missed cycles (outage, pause): bill all, only the latest, or none."
    )


class CycleOut(BaseModel):
    cycle: int
    date: date
    send_at: datetime


class TermsOut(BaseModel):
    version: int
    effective_from_cycle: int
    lines: list[dict[str, str]]


class CycleInvoiceOut(BaseModel):
    cycle: int
    period_date: date
    invoice_id: uuid.UUID
    number: str | None
    status: str
    total: str


class SubscriptionEventOut(BaseModel):
    at: datetime
    kind: str
    cycle: int | None
    data: dict[str, Any]


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    workflow_id: str
    customer_id: uuid.UUID
    status: str
    currency: str
    interval: str
    interval_count: int
    anchor_day: int | None
    start_date: date
    end_date: date | None
    max_cycles: int | None
    timezone: str
    send_time: time
    auto_send: bool
    payment_terms: str
    catch_up: str
    next_cycle: int
    paused_until: date | None
    next_invoice_dates: list[CycleOut]
    terms: list[TermsOut]
    invoices: list[CycleInvoiceOut] = Field(default_factory=list)
    history: list[SubscriptionEventOut] = Field(default_factory=list)


class PauseCreate(Strict):
    resume_on: ApiDate | None = Field(
        default=None, description="Resume automatically on this date (client's timezone)."
    )


class CancelCreate(Strict):
    at_period_end: bool = Field(
        default=False, description="Bill nothing more; end when the current period ends."
    )


class TermsCreate(Strict):
    lines: list[LineCreate] = Field(min_length=1, max_length=500)


class ApproveCreate(Strict):
    comment: str = Field(default="", max_length=2000)


# ---------------------------------------------------------------- billable items


class ExpenseCreate(Strict):
    description: str = Field(min_length=1, max_length=1000)
    amount: DecimalStr
    currency: Currency | None = Field(default=None, description="Defaults to the customer's currency.")
    incurred_on: ApiDate
    receipt_ref: str = Field(default="", max_length=200)
    billable: bool = True
    tax_rate: DecimalStr = Decimal(0)
    project_ref: str | None = Field(default=None, max_length=120)


class TimeEntryCreate(Strict):
    description: str = Field(min_length=1, max_length=1000)
    hours: DecimalStr
    rate: DecimalStr
    currency: Currency | None = None
    incurred_on: ApiDate
    billable: bool = True
    tax_rate: DecimalStr = Decimal(0)
    project_ref: str | None = Field(default=None, max_length=120)


class BillableItemOut(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    description: str
    quantity: str
    unit_price: str
    amount: str
    currency: str
    tax_rate: str
    incurred_on: date
    receipt_ref: str
    billable: bool
    status: str
    decided_by: str | None
    invoice_id: uuid.UUID | None
    project_ref: str | None


class DecisionCreate(Strict):
    comment: str = Field(default="", max_length=2000)


class ApprovalDecisionCreate(Strict):
    approver: EmailStr
    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=2000)


class DraftEdit(Strict):
    lines: list[LineCreate] | None = Field(default=None, min_length=1, max_length=500)
    notes: str | None = Field(default=None, max_length=5000)
    due_date: ApiDate | None = None
