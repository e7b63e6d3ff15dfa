"""Payloads of the invoice's approval gate: routed chains, approver decisions, draft revisions.

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

from dataclasses import dataclass, field

from workflows.payloads.subscription import TermsLine


@dataclass
class ApproveInput:
    actor: str = "api"
    comment: str = ""


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
    client: list[str] = field(default_factory=list)  # approvers who are the client's contact


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
