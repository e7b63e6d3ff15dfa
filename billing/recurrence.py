"""Recurring billing calendars: the date and UTC instant of every cycle of a subscription.

One pure function decides when cycle *n* is billed; the subscription workflow waits on it and the API's
``next_invoice_dates`` preview shows it, so what operators see is what happens.

- Monthly/quarterly/yearly cycles fall on ``anchor_day``, clamped to the month's last day (31 → 30 April,
  28/29 February); the anchor is kept, so 31 Jan → 28 Feb → 31 Mar. A yearly anchor of 29 February
  bills on 28 February in common years.
- Weekly cycles repeat the start date's weekday.
- Cycle 0 is the first anchor date on or after the start date. Each cycle is billed at ``send_time``
  in the customer's timezone (DST-correct), converted to UTC.
- The catch-up policy decides what happens to cycles that should have been billed while nothing ran
  (a worker outage, a pause): bill ``all`` of them, only the ``latest``, or ``none`` (only cycles
  still within the grace period count as on time).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.errors import MoneyError

Interval = Literal["week", "month", "quarter", "year"]
CatchUp = Literal["all", "latest", "none"]
INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}
CATCH_UP_POLICIES: tuple[str, ...] = ("all", "latest", "none")
DEFAULT_GRACE = timedelta(hours=24)


class RecurrenceError(MoneyError):
    pass


@dataclass(frozen=True)
class Recurrence:
    interval: str
    interval_count: int
    start_date: date
    timezone: str
    send_time: time = time(9, 0)
    anchor_day: int | None = None  # defaults to the start date's day
    end_date: date | None = None
    max_cycles: int | None = None

    def __post_init__(self) -> None:
        if self.interval not in ("week", *INTERVAL_MONTHS):
            raise RecurrenceError(f"interval: {self.interval!r} is not one of week, month, quarter, year")
        if not 1 <= self.interval_count <= 52:
            raise RecurrenceError("interval_count: must be between 1 and 52")
        if self.anchor_day is not None:
            if self.interval == "week":
                raise RecurrenceError("anchor_day: weekly cycles follow the start date's weekday")
            if not 1 <= self.anchor_day <= 31:
                raise RecurrenceError("anchor_day: must be between 1 and 31")
        if self.end_date is not None and self.end_date < self.start_date:
            raise RecurrenceError("end_date: must not be before start_date")
        if self.max_cycles is not None and self.max_cycles < 1:
            raise RecurrenceError("max_cycles: must be at least 1")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise RecurrenceError(f"timezone: unknown IANA timezone {self.timezone!r}") from None


@dataclass(frozen=True)
class Cycle:
    index: int
    date: date  # the billing date in the customer's calendar; also the period key
    send_at: datetime  # UTC


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    total = year * 12 + (month - 1) + months
    return total // 12, total % 12 + 1


def _first_offset(rec: Recurrence) -> int:
    """Months from the start month to cycle 0: 0, or 1 when the anchor day has passed in the start month."""
    if rec.interval == "week":
        return 0
    day = rec.anchor_day or rec.start_date.day
    return 0 if _clamped(rec.start_date.year, rec.start_date.month, day) >= rec.start_date else 1


def cycle_date(rec: Recurrence, index: int) -> date:
    if index < 0:
        raise RecurrenceError("cycle index must not be negative")
    if rec.interval == "week":
        return rec.start_date + timedelta(weeks=index * rec.interval_count)
    step = INTERVAL_MONTHS[rec.interval] * rec.interval_count
    months = _first_offset(rec) + index * step
    year, month = _add_months(rec.start_date.year, rec.start_date.month, months)
    return _clamped(year, month, rec.anchor_day or rec.start_date.day)


def send_instant(rec: Recurrence, day: date) -> datetime:
    return datetime.combine(day, rec.send_time, ZoneInfo(rec.timezone)).astimezone(UTC)


def cycle(rec: Recurrence, index: int) -> Cycle | None:
    """Cycle ``index``, or None past the end date or the number of cycles."""
    if rec.max_cycles is not None and index >= rec.max_cycles:
        return None
    day = cycle_date(rec, index)
    if rec.end_date is not None and day > rec.end_date:
        return None
    return Cycle(index=index, date=day, send_at=send_instant(rec, day))


def cycles(rec: Recurrence, *, from_index: int = 0, count: int = 12) -> list[Cycle]:
    found: list[Cycle] = []
    index = from_index
    while len(found) < count:
        current = cycle(rec, index)
        if current is None:
            break
        found.append(current)
        index += 1
    return found


def next_cycles(rec: Recurrence, after: datetime, *, from_index: int = 0, count: int = 5) -> list[Cycle]:
    """The next ``count`` cycles billed after ``after`` (the preview operators see)."""
    index = from_index
    while (current := cycle(rec, index)) is not None and current.send_at <= after:
        index += 1
    return cycles(rec, from_index=index, count=count)


@dataclass(frozen=True)
class CatchUpDecision:
    bill: tuple[Cycle, ...]
    skip: tuple[Cycle, ...]


def due_cycles(rec: Recurrence, *, from_index: int, now: datetime, limit: int = 1000) -> list[Cycle]:
    found: list[Cycle] = []
    index = from_index
    while len(found) < limit and (current := cycle(rec, index)) is not None and current.send_at <= now:
        found.append(current)
        index += 1
    return found


def decide_catch_up(
    due: Sequence[Cycle], policy: str, *, now: datetime, grace: timedelta = DEFAULT_GRACE
) -> CatchUpDecision:
    """Which due cycles to bill. On-time cycles (within ``grace``) are always billed except under
    ``latest``, which bills exactly one: the most recent."""
    if policy not in CATCH_UP_POLICIES:
        raise RecurrenceError(f"catch_up: {policy!r} is not one of {', '.join(CATCH_UP_POLICIES)}")
    if not due:
        return CatchUpDecision((), ())
    if policy == "all":
        return CatchUpDecision(tuple(due), ())
    if policy == "latest":
        return CatchUpDecision((due[-1],), tuple(due[:-1]))
    on_time = tuple(c for c in due if now - c.send_at <= grace)
    return CatchUpDecision(on_time, tuple(c for c in due if c not in on_time))


def local_date(rec: Recurrence, instant: datetime) -> date:
    """The customer's calendar date at ``instant``."""
    return instant.astimezone(ZoneInfo(rec.timezone)).date()


def local_midnight(rec: Recurrence, day: date) -> datetime:
    """The start of ``day`` in the customer's timezone, as UTC (when a pause with a resume date ends)."""
    return datetime.combine(day, time(0), ZoneInfo(rec.timezone)).astimezone(UTC)
