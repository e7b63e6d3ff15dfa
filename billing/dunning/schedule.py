"""The reminder schedule of one invoice under a dunning policy: steps moved into the send window,
collisions merged, escalation after the last step, nothing in the past at issue time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from billing.dunning.policy import DunningPolicy, SendWindow
from billing.dunning.windows import _aware, _first_at_or_after, _next_in_window, _reading, _zone
from billing.errors import DunningError

# ---------------------------------------------------------------- the schedule


@dataclass(frozen=True)
class ScheduledReminder:
    """One message of an invoice's dunning schedule.

    ``step_index`` is the position in ``policy.steps`` (``len(policy.steps)`` for the escalation), a
    stable key for idempotency; ``merged`` lists earlier steps that landed in the same slot and are
    sent as this one; ``local_date`` is the client's calendar date of ``send_at`` (UTC)."""

    step_index: int
    kind: str  # "step" | "escalation"
    offset_days: int  # the nominal day, relative to the due date (the escalation's too)
    template: str
    tone: str
    recipients: tuple[str, ...]
    local_date: date
    send_at: datetime
    merged: tuple[int, ...] = ()


def _slot(day: date, window: SendWindow, zone: ZoneInfo, not_before: datetime | None = None) -> datetime:
    """The window start on ``day`` (client's calendar), moved into the window."""
    nominal = _first_at_or_after(datetime.combine(day, window.start), zone)
    if not_before is not None and nominal < not_before:
        nominal = not_before
    return _next_in_window(nominal, window, zone)


def dunning_schedule(
    policy: DunningPolicy, due_date: date, timezone: str, issued_at: datetime
) -> list[ScheduledReminder]:
    """Every reminder of ``policy`` for an invoice due on ``due_date`` (the client's calendar) and issued
    at ``issued_at``, strictly increasing by ``send_at`` (aware UTC).

    Steps land at the window start of their offset day, moved into the window; steps landing in one
    slot merge (the later wins); the escalation follows the last step's slot; entries at or before
    ``issued_at`` are dropped (module docstring)."""
    if not isinstance(policy, DunningPolicy):
        raise DunningError(f"policy: expected a DunningPolicy, got {type(policy).__name__}")
    if not isinstance(due_date, date) or isinstance(due_date, datetime):
        raise DunningError(f"due_date: expected a date, got {due_date!r}")
    zone = _zone(timezone)
    issued = _aware(issued_at, "issued_at")
    window = policy.send_window
    entries: list[ScheduledReminder] = []
    for index, step in enumerate(policy.steps):
        send_at = _slot(due_date + timedelta(days=step.offset_days), window, zone)
        entry = ScheduledReminder(
            step_index=index,
            kind="step",
            offset_days=step.offset_days,
            template=step.template,
            tone=step.tone,
            recipients=step.recipients,
            local_date=_reading(send_at, zone).date(),
            send_at=send_at,
        )
        # Same slot as the step before (``_slot`` is monotonic, so ``>=`` only ever meets equality).
        if entries and entries[-1].send_at >= send_at:
            previous = entries.pop()
            entry = replace(
                entry,
                send_at=previous.send_at,
                local_date=previous.local_date,
                merged=(*previous.merged, previous.step_index),
            )
        entries.append(entry)
    if policy.escalation is not None and entries:
        last = entries[-1]
        day = last.local_date + timedelta(days=policy.escalation.after_days)
        send_at = _slot(day, window, zone, not_before=last.send_at + timedelta(seconds=1))
        entries.append(
            ScheduledReminder(
                step_index=len(policy.steps),
                kind="escalation",
                offset_days=(day - due_date).days,
                template=policy.escalation.template,
                tone="final",
                recipients=policy.escalation.recipients,
                local_date=_reading(send_at, zone).date(),
                send_at=send_at,
            )
        )
    return [entry for entry in entries if entry.send_at > issued]
