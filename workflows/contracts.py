"""Payloads of the invoice workflow, its messages and its activities.

Stdlib dataclasses only: this module is imported inside the workflow sandbox, and every field added
later must have a default so recorded histories still decode. Money travels as decimal *strings*
(Temporal's JSON converter has no Decimal, and floats are not money).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

TASK_QUEUE_DEFAULT = "invoiceflow"


def invoice_workflow_id(invoice_id: str) -> str:
    return f"invoice-{invoice_id}"


# Activity names: the workflow refers to activities by name so it never imports their heavy modules.
class ActivityName:
    ISSUE_INVOICE = "issue_invoice"
    RENDER_INVOICE_PDF = "render_invoice_pdf"
    SEND_EMAIL = "send_email"
    SET_STATUS = "set_invoice_status"
    APPLY_PAYMENT = "apply_payment"
    CLOSE_INVOICE = "close_invoice"
    RECORD_EVENT = "record_invoice_event"


@dataclass
class InvoiceWorkflowInput:
    invoice_id: str
    customer_id: str
    currency: str


@dataclass
class IssueRequest:
    invoice_id: str
    as_of: datetime  # workflow time: the issue date is this instant in the client's timezone


@dataclass
class ReminderPlanStep:
    kind: str  # "reminder" | "escalation"
    offset_days: int
    send_at: datetime


@dataclass
class IssuedInvoice:
    invoice_id: str
    number: str
    issue_date: str
    due_date: str
    overdue_at: datetime  # start of the day after the due date, client's timezone
    currency: str
    customer_id: str
    customer_name: str
    total: str
    amount_paid: str
    amount_due: str
    reminders: list[ReminderPlanStep] = field(default_factory=list)


@dataclass
class RenderRequest:
    invoice_id: str


@dataclass
class RenderedPdf:
    key: str
    sha256: str
    size: int


@dataclass
class EmailRequest:
    invoice_id: str
    kind: str  # invoice | reminder | escalation | payment_receipt
    key: str  # logical idempotency key: one email per key, ever
    offset_days: int = 0
    attach_pdf_key: str | None = None


@dataclass
class EmailResult:
    key: str
    status: str  # sent | skipped | already_sent
    message_id: str = ""
    detail: str = ""


@dataclass
class StatusChange:
    invoice_id: str
    status: str
    actor: str = "workflow"
    event: str = ""  # timeline kind; defaults to "status.<status>"
    detail: dict[str, str] = field(default_factory=dict)
    dedupe_key: str | None = None


@dataclass
class PaymentInput:
    """A payment as the operator API or a payment webhook sends it."""

    amount: str
    idempotency_key: str
    method: str = "bank_transfer"
    reference: str = ""
    currency: str | None = None
    received_at: datetime | None = None
    actor: str = "api"


@dataclass
class ApplyPaymentRequest:
    invoice_id: str
    payment: PaymentInput
    past_due: bool
    received_at: datetime


@dataclass
class PaymentOutcome:
    payment_id: str
    duplicate: bool
    status: str
    amount_paid: str
    amount_due: str
    credit: str


@dataclass
class VoidInput:
    reason: str
    actor: str = "api"


@dataclass
class UncollectibleInput:
    reason: str = ""
    actor: str = "api"


@dataclass
class CloseRequest:
    invoice_id: str
    status: str  # void | uncollectible
    reason: str
    actor: str


@dataclass
class TimelineEntry:
    at: datetime
    kind: str
    detail: str = ""


@dataclass
class InvoiceState:
    invoice_id: str
    status: str
    number: str | None
    currency: str
    total: str | None
    amount_paid: str
    amount_due: str | None
    credit: str
    due_date: str | None
    next_reminder_at: datetime | None
    timeline: list[TimelineEntry] = field(default_factory=list)


@dataclass
class InvoiceResult:
    invoice_id: str
    status: str
    number: str | None
    amount_paid: str
    amount_due: str
