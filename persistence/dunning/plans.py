"""Dunning policies on the database and the reminder plan an invoice follows (frozen at issue)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.dunning import (
    DEFAULT_SEND_WINDOW,
    DunningPolicy,
    ScheduledReminder,
    SendWindow,
    dunning_schedule,
    policy_from_dict,
)
from billing.reminders import reminder_schedule
from persistence.models import (
    DunningPolicyRow,
    Invoice,
)
from workflows.payloads import (
    ReminderPlanStep,
)


def get_policy(session: Session, name: str) -> DunningPolicyRow | None:
    return session.scalars(select(DunningPolicyRow).where(DunningPolicyRow.name == name)).one_or_none()


def requested_policy(invoice: Invoice) -> str | None:
    """The invoice's own policy wins over its customer's; None: the default offsets."""
    return invoice.dunning_policy or invoice.customer.dunning_policy


def freeze_policy(session: Session, invoice: Invoice) -> None:
    """Copy the policy onto the invoice (called in the issuing transaction, once)."""
    if invoice.dunning_snapshot is not None:
        return
    name = requested_policy(invoice)
    if name is None:
        return
    row = get_policy(session, name)
    if row is None:  # the foreign keys make this unreachable; be explicit anyway
        raise LookupError(f"dunning policy {name!r} does not exist")
    invoice.dunning_snapshot = dict(row.definition)


def _legacy_window(send_hour: int) -> SendWindow:
    """Holds re-time reminders into a window; invoices without a policy use one that opens at the
    configured reminder hour (eight hours long, weekdays)."""
    if send_hour == DEFAULT_SEND_WINDOW.start.hour:
        return DEFAULT_SEND_WINDOW
    return SendWindow(time(send_hour), time(send_hour + 8) if send_hour <= 15 else time(23, 59))


def _policy(snapshot: dict[str, Any] | None) -> DunningPolicy | None:
    return None if snapshot is None else policy_from_dict(snapshot)


def plan_steps(schedule: list[ScheduledReminder]) -> list[ReminderPlanStep]:
    return [
        ReminderPlanStep(
            kind="escalation" if r.kind == "escalation" else "reminder",
            offset_days=r.offset_days,
            send_at=r.send_at,
            template=r.template,
            tone=r.tone,
            recipients=list(r.recipients),
            step_index=r.step_index,
            merged=list(r.merged),
            local_date=r.local_date.isoformat(),
        )
        for r in schedule
    ]


def reminder_plan(
    policy: DunningPolicy | None,
    due: date,
    timezone: str,
    issued_at: datetime,
    *,
    offsets: list[int] | tuple[int, ...],
    send_hour: int,
) -> list[ReminderPlanStep]:
    """The reminders an invoice gets: the policy's schedule (send window, collisions, escalation), or,
    without a policy, today's offsets at the send hour (old keys and behaviour unchanged)."""
    if policy is not None:
        return plan_steps(dunning_schedule(policy, due, timezone, issued_at))
    plan = reminder_schedule(due, offsets, timezone, send_hour=send_hour, not_before=issued_at)
    return [ReminderPlanStep(kind=s.kind, offset_days=s.offset_days, send_at=s.send_at) for s in plan]


def default_offsets(invoice: Invoice, fallback: tuple[int, ...]) -> list[int]:
    return next(
        (o for o in (invoice.reminder_offsets, invoice.customer.reminder_offsets) if o is not None),
        list(fallback),
    )


def invoice_plan(
    invoice: Invoice, *, fallback_offsets: tuple[int, ...], send_hour: int
) -> list[ReminderPlanStep]:
    """The plan of an issued invoice, from its frozen policy (or the default offsets)."""
    assert invoice.due_date is not None and invoice.issued_at is not None
    return reminder_plan(
        _policy(invoice.dunning_snapshot),
        invoice.due_date,
        invoice.customer.timezone,
        invoice.issued_at,
        offsets=default_offsets(invoice, fallback_offsets),
        send_hour=send_hour,
    )


def resume_instant(day: date, timezone: str) -> datetime:
    """A hold's ``resume_on`` date ends it at the start of that day on the client's clock."""
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(UTC)
