"""Reminder schedules: when, in UTC, each reminder and the escalation go out.

A schedule is data (offsets in days relative to the due date); this pure function turns it into
instants at a local hour in the client's timezone, DST-correct, so the workflow only waits on fixed
UTC times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.errors import MoneyError

DEFAULT_REMINDER_OFFSETS: tuple[int, ...] = (-3, 0, 7, 14, 30)
MAX_OFFSET = 365
ESCALATION_DELAY = timedelta(hours=1)


class ScheduleError(MoneyError):
    pass


@dataclass(frozen=True)
class ReminderStep:
    kind: str  # "reminder" | "escalation"
    offset_days: int
    local_date: date
    send_at: datetime  # timezone-aware, UTC


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"timezone: unknown IANA timezone {timezone!r}") from None


def _validate(offsets: Sequence[int]) -> tuple[int, ...]:
    values = tuple(offsets)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScheduleError(f"reminder_offsets: {value!r} is not a whole number of days")
        if not -MAX_OFFSET <= value <= MAX_OFFSET:
            raise ScheduleError(f"reminder_offsets: {value} is outside -{MAX_OFFSET}..{MAX_OFFSET} days")
    if len(set(values)) != len(values):
        raise ScheduleError("reminder_offsets: each day may appear only once")
    return tuple(sorted(values))


def local_instant(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """``hour``:00 on ``day`` in ``zone`` as UTC. A local time skipped by a DST change (e.g. 02:30 on
    a spring-forward night) is taken with fold=0 and normalised through UTC, i.e. moved forward."""
    local = datetime.combine(day, time(hour), zone)
    return local.astimezone(UTC)


def reminder_schedule(
    due_date: date,
    offsets: Sequence[int],
    timezone: str,
    *,
    send_hour: int = 9,
    escalate: bool = True,
    not_before: datetime | None = None,
) -> tuple[ReminderStep, ...]:
    if not 0 <= send_hour <= 23:
        raise ScheduleError(f"send_hour: must be 0..23, got {send_hour}")
    zone = _zone(timezone)
    ordered = _validate(offsets)
    steps = [
        ReminderStep(
            kind="reminder",
            offset_days=offset,
            local_date=due_date + timedelta(days=offset),
            send_at=local_instant(due_date + timedelta(days=offset), send_hour, zone),
        )
        for offset in ordered
    ]
    if escalate and steps:
        last = steps[-1]
        steps.append(
            ReminderStep(
                kind="escalation",
                offset_days=last.offset_days,
                local_date=last.local_date,
                send_at=last.send_at + ESCALATION_DELAY,
            )
        )
    if not_before is not None:
        steps = [s for s in steps if s.send_at > not_before]
    return tuple(sorted(steps, key=lambda s: s.send_at))


def parse_offsets(text: str) -> tuple[int, ...]:
    """'-3,0,7,14,30' → (-3, 0, 7, 14, 30); an empty string means no reminders."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(int(part))
        except ValueError:
            raise ScheduleError(f"reminder_offsets: {part!r} is not a whole number of days") from None
    return _validate(values)
