"""Payloads of the invoice workflow, its messages and its activities.

Stdlib dataclasses (and the pure ``billing`` package) only: this module is imported inside the workflow sandbox, and every field added
later must have a default so recorded histories still decode. Money travels as decimal *strings*
(Temporal's JSON converter has no Decimal, and floats are not money).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time

from billing.recurrence import Recurrence

TASK_QUEUE_DEFAULT = "invoiceflow"


def invoice_workflow_id(invoice_id: str) -> str:
    return f"invoice-{invoice_id}"


def reminder_step_id(step: ReminderPlanStep) -> str:
    """A plan step's stable identity: ``s<index>`` for a policy step, ``<kind>:<offset>`` for the default plan."""
    return f"s{step.step_index}" if step.template else f"{step.kind}:{step.offset_days}"


def reminder_email_key(invoice_id: str, step: ReminderPlanStep, audience: str = "client") -> str:
    """The outbox key of one reminder email: one email per key, ever. Default-plan keys are unchanged
    from before policies existed; a policy step has one key per audience (client, internal)."""
    if step.template:
        return f"invoice:{invoice_id}:dunning:{step.step_index}:{audience}"
    return f"invoice:{invoice_id}:{step.kind}:{step.offset_days}"


# Activity names: the workflow refers to activities by name so it never imports their heavy modules.
class ActivityName:
    ISSUE_INVOICE = "issue_invoice"
    CREATE_CYCLE_INVOICE = "create_cycle_invoice"
    RECORD_SUBSCRIPTION_EVENT = "record_subscription_event"
    ADD_SUBSCRIPTION_TERMS = "add_subscription_terms"
    ROUTE_APPROVAL = "route_approval"
    CONVERT_ESTIMATE = "convert_estimate"
    RECORD_ESTIMATE_STATUS = "record_estimate_status"
    REVISE_DRAFT = "revise_draft"
    RENDER_INVOICE_PDF = "render_invoice_pdf"
    SEND_EMAIL = "send_email"
    SET_STATUS = "set_invoice_status"
    APPLY_PAYMENT = "apply_payment"
    CLOSE_INVOICE = "close_invoice"
    RECORD_EVENT = "record_invoice_event"
    CREATE_PROJECT_FROM_DEAL = "create_project_from_deal"
    SYNC_ACCOUNTING = "sync_accounting"
    BILL_PROJECT_TRIGGER = "bill_project_trigger"
    ISSUE_CREDIT_NOTE = "issue_credit_note"
    APPLY_REFUND = "apply_refund"
    RENDER_CREDIT_NOTE_PDF = "render_credit_note_pdf"
    PLACE_DUNNING_HOLD = "place_dunning_hold"
    RELEASE_DUNNING_HOLDS = "release_dunning_holds"
    APPLY_LATE_FEE = "apply_late_fee"


@dataclass
class InvoiceWorkflowInput:
    invoice_id: str
    customer_id: str
    currency: str
    requires_approval: bool = False  # an operator approves before anything is issued or sent


@dataclass
class ApproveInput:
    actor: str = "api"
    comment: str = ""


@dataclass
class IssueRequest:
    invoice_id: str
    as_of: datetime  # workflow time: the issue date is this instant in the client's timezone


@dataclass
class ReminderPlanStep:
    kind: str  # "reminder" | "escalation"
    offset_days: int
    send_at: datetime
    # Dunning policy steps; empty for the default offsets-only plan, which keeps its old keys.
    template: str = ""
    tone: str = ""
    recipients: list[str] = field(default_factory=list)  # roles: client | account_owner | finance_lead
    step_index: int = -1  # position in the frozen policy's steps (len(steps) for the escalation)
    merged: list[int] = field(default_factory=list)  # steps that landed in the same slot, sent as this one
    local_date: str = ""  # the client's calendar day of send_at (ISO): the email says how late it really is


@dataclass
class HoldSpec:
    """A dunning hold as the invoice workflow keeps it: while any is active no reminder goes out."""

    hold_id: str
    kind: str = "dispute"  # dispute | payment
    reason: str = ""
    resume_at: datetime | None = None  # ends by itself then (a resume date, a payment's grace)
    payment_key: str | None = None  # payment in flight: a payment with this idempotency key ends it
    actor: str = "api"
    customer_wide: bool = False


@dataclass
class PlaceHoldRequest:
    invoice_id: str
    hold: HoldSpec
    at: datetime


@dataclass
class ReleaseInput:
    hold_ids: list[str] = field(default_factory=list)  # empty: every dispute hold of this invoice itself
    actor: str = "api"
    reason: str = ""


@dataclass
class ReleaseHoldsRequest:
    invoice_id: str
    hold_ids: list[str]
    held_from: datetime
    held_until: datetime
    remaining: list[ReminderPlanStep] = field(default_factory=list)
    actor: str = "workflow"
    reason: str = ""  # released | resume_on | payment | grace


@dataclass
class LateFeeRequest:
    invoice_id: str
    sequence: int  # 1-based application of the policy's late fee
    past_due: bool


@dataclass
class LateFeeOutcome:
    applied: bool  # False: nothing was due (paid down, a fee that rounds to nothing)
    sequence: int
    amount: str = "0"
    total: str = ""
    amount_due: str = ""
    status: str = ""
    detail: str = ""


@dataclass
class ReleasePlan:
    """What happens to the reminders a hold held back (``billing.dunning.reminders_after_hold``)."""

    send: list[ReminderPlanStep] = field(default_factory=list)
    skipped: list[ReminderPlanStep] = field(default_factory=list)


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
class ApprovalLinkSpec:
    revision: int
    step: int
    approver: str
    reminder: bool = False
    of_steps: int = 1


@dataclass
class ApprovalStepSpec:
    approvers: list[str]
    mode: str = "any"  # any | all
    delegate: str | None = None


@dataclass
class ApprovalChain:
    rule: str | None
    revision: int
    steps: list[ApprovalStepSpec] = field(default_factory=list)
    remind_after_s: int = 24 * 3600
    escalate_after_s: int = 48 * 3600


@dataclass
class RouteRequest:
    invoice_id: str


@dataclass
class DecisionInput:
    approver: str
    decision: str  # approve | reject
    comment: str = ""
    step: int | None = None  # when given (signed links), must be the current step
    revision: int | None = None  # when given (signed links), must be the current revision
    via: str = "api"  # api | link
    ip: str = ""
    user_agent: str = ""


@dataclass
class DraftChanges:
    """Edits to a draft (after a rejection). Lines replace all lines when given."""

    lines: list[TermsLine] | None = None
    notes: str | None = None
    due_date: str | None = None
    actor: str = "api"


@dataclass
class RevisionRequest:
    invoice_id: str
    revision: int
    changes: DraftChanges


@dataclass
class SubmitInput:
    actor: str = "api"


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


def subscription_workflow_id(subscription_id: str) -> str:
    return f"subscription-{subscription_id}"


@dataclass
class RecurrenceSpec:
    """``billing.recurrence.Recurrence`` in payload form (dates as ISO strings)."""

    interval: str
    interval_count: int
    start_date: str
    timezone: str
    send_time: str  # "HH:MM"
    anchor_day: int | None = None
    end_date: str | None = None
    max_cycles: int | None = None


@dataclass
class SubscriptionWorkflowInput:
    subscription_id: str
    customer_id: str
    currency: str
    recurrence: RecurrenceSpec
    catch_up: str
    # Carried across continue-as-new:
    next_cycle: int = 0
    terms_version: int = 1
    paused: bool = False
    resume_on: str | None = None
    end_at_cycle: int | None = None  # cancel at period end: no cycle from this index on


@dataclass
class CycleInvoiceRequest:
    subscription_id: str
    cycle: int
    period_date: str


@dataclass
class CycleInvoice:
    invoice_id: str
    customer_id: str
    currency: str
    requires_approval: bool
    total: str


@dataclass
class SubscriptionEvent:
    subscription_id: str
    kind: (
        str  # cycle.billed | cycle.skipped | paused | resumed | terms.updated | canceling | canceled | ended
    )
    status: str
    next_cycle: int
    cycle: int | None = None
    detail: dict[str, str] = field(default_factory=dict)
    paused_until: str | None = None
    dedupe_key: str | None = None


@dataclass
class TermsLine:
    description: str
    quantity: str
    unit_price: str
    discount_percent: str = "0"
    discount_amount: str = "0"
    tax_rate: str = "0"


@dataclass
class TermsChange:
    subscription_id: str
    version: int
    effective_from_cycle: int
    lines: list[TermsLine] = field(default_factory=list)


@dataclass
class PauseInput:
    resume_on: str | None = None  # ISO date; None: until resumed


@dataclass
class CancelInput:
    at_period_end: bool = False


@dataclass
class TermsUpdateInput:
    lines: list[TermsLine] = field(default_factory=list)


@dataclass
class SubscriptionState:
    subscription_id: str
    status: str  # active | paused | canceling | canceled | ended
    next_cycle: int
    terms_version: int
    resume_on: str | None
    billed_cycles: list[int] = field(default_factory=list)
    skipped_cycles: list[int] = field(default_factory=list)


def recurrence_spec(rec: Recurrence) -> RecurrenceSpec:
    return RecurrenceSpec(
        interval=rec.interval,
        interval_count=rec.interval_count,
        start_date=rec.start_date.isoformat(),
        timezone=rec.timezone,
        send_time=rec.send_time.strftime("%H:%M"),
        anchor_day=rec.anchor_day,
        end_date=rec.end_date.isoformat() if rec.end_date else None,
        max_cycles=rec.max_cycles,
    )


def recurrence_from_spec(spec: RecurrenceSpec) -> Recurrence:
    return Recurrence(
        interval=spec.interval,
        interval_count=spec.interval_count,
        start_date=date.fromisoformat(spec.start_date),
        timezone=spec.timezone,
        send_time=time.fromisoformat(spec.send_time),
        anchor_day=spec.anchor_day,
        end_date=date.fromisoformat(spec.end_date) if spec.end_date else None,
        max_cycles=spec.max_cycles,
    )


def estimate_workflow_id(estimate_id: str) -> str:
    return f"estimate-{estimate_id}"


@dataclass
class EstimateWorkflowInput:
    estimate_id: str
    customer_id: str
    currency: str
    expires_at: datetime  # end of the valid-until day in the client's timezone


@dataclass
class EstimateDecisionInput:
    decision: str  # accept | decline
    note: str = ""
    actor: str = "client"
    via: str = "link"  # link | api
    ip: str = ""
    user_agent: str = ""


@dataclass
class EstimateStatusChange:
    estimate_id: str
    status: str  # sent | declined | expired
    note: str = ""
    actor: str = "workflow"


@dataclass
class ConvertRequest:
    estimate_id: str
    actor: str
    note: str = ""


@dataclass
class ConvertedEstimate:
    invoice_id: str  # empty when the estimate became a project instead
    customer_id: str
    currency: str
    total: str
    project_id: str | None = None  # an estimate with a project plan becomes a project (deposit billed)


@dataclass
class EstimateState:
    estimate_id: str
    status: str  # sent | accepted | declined | expired
    invoice_id: str | None = None
    project_id: str | None = None


# --- Project billing (deal won, contract signed, milestone done) ----------------------------------


def project_workflow_id(project_id: str) -> str:
    return f"project-{project_id}"


class TriggerKind:
    DEAL_WON = "deal_won"
    CONTRACT_SIGNED = "contract_signed"
    MILESTONE_DONE = "milestone_done"


@dataclass
class DealSource:
    """A won CRM deal that no project knows yet: the workflow builds the project from the deal."""

    provider: str  # hubspot | pipedrive
    deal_id: str


@dataclass
class ProjectTrigger:
    """One business event for a project. ``event_key`` is the provider's event identity; the workflow
    ignores a key it has seen, and the billing activity bills each deposit/milestone once anyway."""

    event_key: str
    kind: str  # TriggerKind
    provider: str
    ref: str = ""
    milestone_key: str | None = None
    actor: str = "webhook"
    webhook_event_id: str | None = None


@dataclass
class ProjectWorkflowInput:
    project_id: str
    deal: DealSource | None = None
    seen: list[str] = field(default_factory=list)  # carried over continue-as-new
    initial: list[ProjectTrigger] = field(
        default_factory=list
    )  # triggers it starts with (an accepted estimate)


@dataclass
class ProjectFromDealRequest:
    project_id: str
    deal: DealSource


@dataclass
class ProjectReady:
    project_id: str
    created: bool
    detail: str = ""


@dataclass
class BillTriggerRequest:
    project_id: str
    trigger: ProjectTrigger


@dataclass
class BillOutcome:
    outcome: str  # billed | already_billed | nothing_to_bill | unknown_milestone | closed
    detail: str = ""
    invoices: list[InvoiceWorkflowInput] = field(default_factory=list)
    project_done: bool = False


@dataclass
class ProjectState:
    project_id: str
    status: str
    processed: int
    pending_triggers: int
    outcomes: list[str] = field(default_factory=list)


# --- Accounting sync (QuickBooks Online, Xero, FreshBooks) ---------------------------------------


class AccountingAction:
    INVOICE = "invoice"  # the issued invoice with every line (create, or update to this revision)
    PAYMENT = "payment"  # one payment, linked to the synced invoice
    VOID = "void"
    CREDIT_NOTE = "credit_note"  # one credit note (credit_note_id) against the synced invoice


@dataclass
class AccountingSyncRequest:
    invoice_id: str
    action: str  # AccountingAction
    payment_id: str | None = None
    credit_note_id: str | None = None


@dataclass
class AccountingSyncResult:
    status: str  # synced | skipped (no accounting provider configured)
    provider: str = ""
    external_id: str = ""
    detail: str = ""


ACCOUNTING_VALIDATION_ERROR = (
    "AccountingValidation"  # non-retryable: an operator fixes the mapping, then retries
)


# --- Credit notes ---------------------------------------------------------------------------------


@dataclass
class CreditNoteInput:
    """``POST /invoices/{id}/credit-notes``: the whole invoice (``full``) or ``lines``, with a reason."""

    reason: str
    idempotency_key: str
    full: bool = False
    lines: list[TermsLine] = field(default_factory=list)
    actor: str = "api"
    request_hash: str = ""  # digest of the API body: the same key with another body is refused


@dataclass
class CreditNoteRequest:
    invoice_id: str
    credit_note: CreditNoteInput
    past_due: bool
    as_of: datetime  # workflow time: the credit note's date is this instant in the client's timezone


@dataclass
class CreditNoteOutcome:
    credit_note_id: str
    number: str
    duplicate: bool
    total: str
    to_customer_credit: str
    status: str
    amount_paid: str
    amount_credited: str
    amount_due: str
    credit: str


@dataclass
class CreditNoteRenderRequest:
    credit_note_id: str


# --- Refunds --------------------------------------------------------------------------------------


@dataclass
class RefundInput:
    """Money returned against one recorded payment (``POST /invoices/{id}/refunds``, Stripe refunds)."""

    payment_id: str
    amount: str
    idempotency_key: str
    reason: str = ""
    reference: str = ""
    actor: str = "api"


@dataclass
class RefundRequest:
    invoice_id: str
    refund: RefundInput
    past_due: bool


@dataclass
class RefundOutcome:
    refund_id: str
    duplicate: bool
    kind: str  # reopened (the amount is due again) | credit (the invoice's customer credit paid out)
    status: str
    amount_paid: str
    amount_due: str
    credit: str
