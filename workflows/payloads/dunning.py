"""Payloads of the dunning clock: the reminder plan, holds, late fees.

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


def reminder_step_id(step: ReminderPlanStep) -> str:
    """A plan step's stable identity: ``s<index>`` for a policy step, ``<kind>:<offset>`` for the
    default plan."""
    return f"s{step.step_index}" if step.template else f"{step.kind}:{step.offset_days}"


def reminder_email_key(invoice_id: str, step: ReminderPlanStep, audience: str = "client") -> str:
    """The outbox key of one reminder email: one email per key, ever. Default-plan keys are unchanged
    from before policies existed; a policy step has one key per audience (client, internal)."""
    if step.template:
        return f"invoice:{invoice_id}:dunning:{step.step_index}:{audience}"
    return f"invoice:{invoice_id}:{step.kind}:{step.offset_days}"


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
