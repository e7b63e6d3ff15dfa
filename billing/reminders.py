"""Reminder schedules: when, in UTC, each payment reminder and the final escalation go out.

A schedule is data (offsets in days relative to the due date, e.g. ``-3,0,7,14,30``); this pure function
turns it into fixed UTC instants at a local hour in the client's timezone, so the workflow only sleeps
until known instants and never does calendar arithmetic itself.

DST: each reminder is ``send_hour``:00 on its local date, built with ``fold=0`` and normalised through a
UTC round trip. A local time skipped by a spring-forward change (02:00 in Berlin on 2026-03-29) therefore
moves forward by the size of the gap (03:00 CEST); an ambiguous time in a fall-back change (02:00 in
Berlin on 2026-10-25) takes its first occurrence (still summer time).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.errors import MoneyError

DEFAULT_REMINDER_OFFSETS: tuple[int, ...] = (-3, 0, 7, 14, 30)
MAX_OFFSET = 365
ESCALATION_DELAY = timedelta(hours=1)
_OFFSET = re.compile(r"[+-]?[0-9]{1,9}")  # ASCII digits only: "1_0" and "٣" are garbage, not 10 and 3


class ScheduleError(MoneyError):
    """An invalid reminder schedule (offsets, timezone, send hour)."""


@dataclass(frozen=True)
class ReminderStep:
    """One message to send: a ``reminder`` for an offset, or the ``escalation`` after the last one."""

    kind: str  # "reminder" | "escalation"
    offset_days: int
    local_date: date
    send_at: datetime  # timezone-aware, UTC


def _zone(timezone: str) -> ZoneInfo:
    if not isinstance(timezone, str) or not timezone.strip():
        raise ScheduleError(f"timezone: expected an IANA timezone such as 'Europe/Berlin', got {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"timezone: unknown IANA timezone {timezone!r} (e.g. 'Europe/Berlin', 'America/New_York')"
        ) from None


def _validate(offsets: Sequence[int]) -> tuple[int, ...]:
    """Offsets sorted ascending; each a whole number of days within ±MAX_OFFSET, each at most once."""
    if isinstance(offsets, (str, bytes)):
        raise ScheduleError("reminder_offsets: expected a list of whole days, use parse_offsets for text")
    values = tuple(offsets)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScheduleError(f"reminder_offsets: {value!r} is not a whole number of days")
        if not -MAX_OFFSET <= value <= MAX_OFFSET:
            raise ScheduleError(f"reminder_offsets: {value} is outside -{MAX_OFFSET}..{MAX_OFFSET} days")
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        listed = ", ".join(str(value) for value in duplicates)
        raise ScheduleError(f"reminder_offsets: each day may appear only once, repeated: {listed}")
    return tuple(sorted(values))


def local_instant(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """``hour``:00 on ``day`` in ``zone`` as a UTC instant (fold=0; see the module docstring for DST)."""
    return datetime.combine(day, time(hour), zone).astimezone(UTC)


def reminder_schedule(
    due_date: date,
    offsets: Sequence[int],
    timezone: str,
    *,
    send_hour: int = 9,
    escalate: bool = True,
    not_before: datetime | None = None,
) -> tuple[ReminderStep, ...]:
    """The reminder steps for an invoice due on ``due_date``, sorted by ``send_at``.

    One reminder per offset, then (if ``escalate`` and there are offsets) an escalation one hour after the
    last reminder. Steps at or before ``not_before`` are dropped, so an invoice issued late does not fire
    reminders that belong to the past.
    """
    if isinstance(send_hour, bool) or not isinstance(send_hour, int) or not 0 <= send_hour <= 23:
        raise ScheduleError(f"send_hour: must be a whole hour from 0 to 23, got {send_hour!r}")
    if not_before is not None and (not isinstance(not_before, datetime) or not_before.utcoffset() is None):
        raise ScheduleError(f"not_before: must be a timezone-aware datetime, got {not_before!r}")
    zone = _zone(timezone)
    steps: list[ReminderStep] = []
    for offset in _validate(offsets):
        local_date = due_date + timedelta(days=offset)
        steps.append(ReminderStep("reminder", offset, local_date, local_instant(local_date, send_hour, zone)))
    if escalate and steps:
        last = steps[-1]
        steps.append(
            ReminderStep("escalation", last.offset_days, last.local_date, last.send_at + ESCALATION_DELAY)
        )
    if not_before is not None:
        steps = [step for step in steps if step.send_at > not_before]
    return tuple(sorted(steps, key=lambda step: step.send_at))


def parse_offsets(text: str) -> tuple[int, ...]:
    """'-3,0,7,14,30' → (-3, 0, 7, 14, 30), sorted ascending; a blank string means no reminders."""
    if not isinstance(text, str):
        raise ScheduleError(f"reminder_offsets: expected text such as '-3,0,7', got {type(text).__name__}")
    if not text.strip():
        return ()
    values: list[int] = []
    for position, part in enumerate(text.split(","), start=1):
        item = part.strip()
        if not item:
            raise ScheduleError(
                f"reminder_offsets: entry {position} is empty; write days like '-3,0,7,14,30'"
            )
        if not _OFFSET.fullmatch(item):
            raise ScheduleError(
                f"reminder_offsets: {item!r} is not a whole number of days; write days like '-3,0,7'"
            )
        values.append(int(item))
    return _validate(values)
