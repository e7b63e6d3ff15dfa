"""Payloads of the invoice workflow's main line: input, issue, render, email, status, payments, void, state.

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workflows.payloads.approval import ApprovalChain, ApprovalLinkSpec
from workflows.payloads.dunning import HoldSpec, ReminderPlanStep


@dataclass
class ParkedInvoice:
    """The state an issued invoice carries into the run a continue-as-new starts when it parks on its
    dunning clock (``InvoiceWorkflowInput.parked``): what the handlers, the query and the clock read.
    Money as decimal strings; what the workflow keeps as sets travels as lists."""

    status: str
    issued: IssuedInvoice
    total: str
    amount_paid: str
    credit: str
    credited: str
    past_due: bool
    next_step: int
    next_fee: int
    pdf_key: str | None
    timeline: list[TimelineEntry]
    sync_enabled: bool
    sync_status: str = ""
    sync_error: str = ""
    holds: list[HoldSpec] = field(default_factory=list)
    ended_holds: list[str] = field(default_factory=list)
    held_since: datetime | None = None
    approved: bool = False
    revision: int = 0
    chain: ApprovalChain | None = None
    step: int = 0
    approvals: list[str] = field(default_factory=list)
    rejection: list[str] | None = None  # [approver, comment]
    escalated: bool = False
    einvoice_errors: list[str] = field(default_factory=list)
    sent_attach: str | None = None  # what the invoice email attached: a resend attaches the same
    resends: list[str] = field(default_factory=list)  # idempotency keys of the resends done


@dataclass
class InvoiceWorkflowInput:
    invoice_id: str
    customer_id: str
    currency: str
    requires_approval: bool = False  # an operator approves before anything is issued or sent
    # Approval rules in force when the API started the workflow: 0 skips routing (nothing can match);
    # None (subscriptions, estimates, projects, older starts) routes through the database as before.
    approval_rules: int | None = None
    parked: ParkedInvoice | None = None  # set by the continue-as-new of a parked invoice (its state)


@dataclass
class IssueRequest:
    invoice_id: str
    as_of: datetime  # workflow time: the issue date is this instant in the client's timezone


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
    holds: list[HoldSpec] = field(default_factory=list)  # the customer's holds active at issue
    dunning_policy: str | None = None  # name of the frozen policy; None: default offsets
    late_fee_at: list[datetime] = field(
        default_factory=list
    )  # when the policy's late fee is assessed (1st, 2nd, ...)
    project_id: str | None = None  # the project it bills a stage of; its payment may bill the next one
    # The customer's e-invoice format at issue ("none": PDFs only, no e-invoice step); None in older
    # histories, which ask the e-invoice activity.
    einvoice_format: str | None = None


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
    kind: str  # invoice | reminder | escalation | payment_receipt | approval_request | approval_rejected
    key: str  # logical idempotency key: one email per key, ever
    offset_days: int = 0
    attach_pdf_key: str | None = None
    to: list[str] | None = None  # explicit recipients (approvers, the account owner)
    estimate_id: str | None = None  # kind "estimate": the email is about an estimate, not an invoice
    approval: ApprovalLinkSpec | None = None  # signed-link facts for approval emails
    comment: str = ""
    credit_note_id: str | None = None  # kind "credit_note": which credit note the email carries
    # Dunning policy steps: the template and tone of the step, and who gets this message: audience
    # "client" (the invoice's emails, the step's template) or "internal" (``recipients`` roles
    # account_owner / finance_lead; the internal notice, never client-facing text).
    template: str = ""
    tone: str = ""
    audience: str = ""
    recipients: list[str] = field(default_factory=list)
    step_index: int | None = None


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
class EventRecord:
    invoice_id: str
    kind: str
    actor: str
    data: dict[str, str] = field(default_factory=dict)
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
class ResendInput:
    """Send the invoice email to the client again (they say it never arrived). ``idempotency_key`` names
    this resend: it is the email's outbox key, so a retried request sends it once."""

    idempotency_key: str
    actor: str = "api"
    reason: str = ""


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
    revision: int = 0
    approval_rule: str | None = None
    approval_step: int | None = None  # 1-based, while pending approval
    approval_steps: int | None = None
    awaiting_approvers: list[str] = field(default_factory=list)
    accounting_status: str = ""  # pending | synced | skipped | sync_failed
    accounting_error: str = ""
    amount_credited: str = "0"  # sum of the invoice's credit notes
    holds: list[HoldSpec] = field(default_factory=list)  # active dunning holds
    reminders: list[ReminderPlanStep] = field(default_factory=list)  # the plan as the workflow runs it
    reminders_sent: int = 0  # how many of ``reminders`` are behind us


@dataclass
class InvoiceResult:
    invoice_id: str
    status: str
    number: str | None
    amount_paid: str
    amount_due: str
