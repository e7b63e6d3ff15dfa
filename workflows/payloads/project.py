"""Payloads of project billing (deal won, contract signed, milestone done).

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

from dataclasses import dataclass, field

from workflows.payloads.invoice import InvoiceWorkflowInput


class TriggerKind:
    DEAL_WON = "deal_won"
    CONTRACT_SIGNED = "contract_signed"
    MILESTONE_DONE = "milestone_done"
    INVOICE_PAID = "invoice_paid"  # an invoice of the project is paid in full (ref = its id)
    TIME_LOGGED = "time_logged"  # a time entry (API: ref = its id; webhook: the entry is in the inbox row)
    TM_PERIOD = "tm_period"  # a T&M period ended (ref = its exclusive end date, client's calendar)
    # A change order needs no signature (ref = its id): apply it, or ask its approvers' current step.
    CHANGE_ORDER = "change_order"


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
    tm_next_period: str | None = None  # the next T&M period end (ISO date), carried over continue-as-new


@dataclass
class TmSchedule:
    """A project's T&M calendar, for its workflow's timer: none when it bills on a threshold or not at
    all."""

    bill_every: str | None = None  # week | month
    timezone: str = "UTC"
    # False while a ``start_on: deposit_paid`` project waits for its deposit: no period timer yet.
    started: bool = True


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
class ProjectEmail:
    """An email a billing decision asks for (one per ``key``, ever: the outbox dedupes retries)."""

    key: str
    kind: str  # project_started | change_order_approval
    project_id: str
    to: list[str] = field(default_factory=list)
    change_order_id: str | None = None
    step: int = 0  # change_order_approval: the chain's step (0-based), its approver, how many steps
    approver: str = ""
    of_steps: int = 0


@dataclass
class BillOutcome:
    outcome: str  # billed | already_billed | nothing_to_bill | unknown_milestone | closed
    detail: str = ""
    invoices: list[InvoiceWorkflowInput] = field(default_factory=list)
    project_done: bool = False
    emails: list[ProjectEmail] = field(default_factory=list)
    started: bool = False  # this trigger started a ``start_on: deposit_paid`` project (its deposit is paid)


@dataclass
class ProjectState:
    project_id: str
    status: str
    processed: int
    pending_triggers: int
    outcomes: list[str] = field(default_factory=list)
