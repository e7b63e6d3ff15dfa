"""Payloads of the subscription workflow: recurrence, cycles, pauses, terms changes.

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time

from billing.recurrence import Recurrence


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
