"""Time & materials rules: the project's rule, its billing calendar, and which entries an invoice takes.

A project bills its logged time either on a calendar (``bill_every`` = ``week``: Monday to Sunday, or
``month``: calendar months, both in the client's timezone; each period is billed at 00:00 local time of
the day after it ends) or on a threshold (``threshold_hours`` / ``threshold_amount``: as soon as the
unbilled approved time reaches it). An entry dated inside a period that is billed already (it arrived
late) goes on the next invoice; an entry dated after the period waits for its own.

An optional ``cap`` is a not-to-exceed on everything T&M invoices bill: entries are taken in date order
while they fit, and what does not fit waits (for an operator or a change order raising the cap). An
entry is never split.

Plain functions over plain data (stdlib only): the API validates rules with them, the workflow computes
its timers with them (deterministic: no clock, no I/O) and the billing activity selects entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from billing.errors import MoneyError
from billing.money import parse_decimal, quantize, require_minor_units

BILL_EVERY = ("week", "month")
ZERO = Decimal(0)


@dataclass(frozen=True)
class TmRule:
    rate: Decimal
    rate_card: dict[str, Decimal] = field(default_factory=dict)
    bill_every: str | None = None
    threshold_hours: Decimal | None = None
    threshold_amount: Decimal | None = None
    cap: Decimal | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rate": str(self.rate)}
        if self.rate_card:
            out["rate_card"] = {k: str(v) for k, v in self.rate_card.items()}
        for name in ("bill_every", "threshold_hours", "threshold_amount", "cap"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        return out


def _positive(value: object, currency: str | None, path: str) -> Decimal:
    amount = parse_decimal(value, field=path)
    if currency is not None:
        require_minor_units(amount, currency, field=path)
    if amount <= 0:
        raise MoneyError(f"{path}: must be greater than 0")
    return amount


def parse_rule(data: dict[str, Any], currency: str, path: str = "time_and_materials") -> TmRule:
    """A rule from its JSON form, or a MoneyError naming the field."""
    unknown = set(data) - {"rate", "rate_card", "bill_every", "threshold_hours", "threshold_amount", "cap"}
    if unknown:
        raise MoneyError(f"{path}: unknown fields {sorted(unknown)}")
    if "rate" not in data:
        raise MoneyError(f"{path}.rate: required")
    rate = _positive(data["rate"], currency, f"{path}.rate")
    card = data.get("rate_card") or {}
    if not isinstance(card, dict):
        raise MoneyError(f"{path}.rate_card: expected an object of role → rate")
    rate_card = {str(k): _positive(v, currency, f"{path}.rate_card.{k}") for k, v in card.items()}
    triggers = [k for k in ("bill_every", "threshold_hours", "threshold_amount") if data.get(k) is not None]
    if len(triggers) != 1:
        raise MoneyError(f"{path}: give exactly one of bill_every, threshold_hours or threshold_amount")
    bill_every = data.get("bill_every")
    if bill_every is not None and bill_every not in BILL_EVERY:
        raise MoneyError(f"{path}.bill_every: expected one of {', '.join(BILL_EVERY)}")
    hours = data.get("threshold_hours")
    amount = data.get("threshold_amount")
    cap = data.get("cap")
    return TmRule(
        rate=rate,
        rate_card=rate_card,
        bill_every=bill_every,
        threshold_hours=_positive(hours, None, f"{path}.threshold_hours") if hours is not None else None,
        threshold_amount=_positive(amount, currency, f"{path}.threshold_amount")
        if amount is not None
        else None,
        cap=_positive(cap, currency, f"{path}.cap") if cap is not None else None,
    )


def rate_for(rule: TmRule, role: str | None, explicit: Decimal | None) -> Decimal:
    """An entry's rate: its own, else its role's on the rate card, else the project's."""
    if explicit is not None:
        return explicit
    if role is not None and role in rule.rate_card:
        return rule.rate_card[role]
    return rule.rate


# --- the calendar -----------------------------------------------------------------------------------


def period_end(bill_every: str, day: date) -> date:
    """The first day after the period containing ``day`` (exclusive end): the next Monday, or the 1st
    of the next month."""
    if bill_every == "week":
        return day + timedelta(days=7 - day.weekday())
    if bill_every == "month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    raise ValueError(f"bill_every: {bill_every!r}")


def period_start(bill_every: str, end: date) -> date:
    """The first day of the period that ends (exclusively) on ``end``."""
    last = end - timedelta(days=1)
    return last - timedelta(days=last.weekday()) if bill_every == "week" else last.replace(day=1)


def boundary_instant(end: date, timezone: str) -> datetime:
    """When the period ending on ``end`` is billed: 00:00 of that day in the client's timezone (DST-safe:
    midnight exists in every zone invoiceflow accepts, and ZoneInfo resolves the offset of that day)."""
    return datetime.combine(end, time(0), ZoneInfo(timezone)).astimezone(UTC)


def first_period_end(bill_every: str, now: datetime, timezone: str) -> date:
    return period_end(bill_every, now.astimezone(ZoneInfo(timezone)).date())


# --- what an invoice takes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    key: str
    incurred_on: date
    hours: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Selection:
    taken: list[str]
    waiting_over_cap: list[str]
    amount: Decimal


def threshold_reached(rule: TmRule, entries: Sequence[Entry]) -> bool:
    if rule.threshold_hours is not None:
        return sum((e.hours for e in entries), ZERO) >= rule.threshold_hours
    if rule.threshold_amount is not None:
        return sum((e.amount for e in entries), ZERO) >= rule.threshold_amount
    return False


def select_entries(rule: TmRule, entries: Sequence[Entry], billed_so_far: Decimal) -> Selection:
    """Entries in date order while they fit under the cap (all of them without one)."""
    taken: list[str] = []
    waiting: list[str] = []
    total = ZERO
    for entry in sorted(entries, key=lambda e: (e.incurred_on, e.key)):
        if rule.cap is not None and (waiting or billed_so_far + total + entry.amount > rule.cap):
            waiting.append(entry.key)
            continue
        taken.append(entry.key)
        total += entry.amount
    return Selection(taken=taken, waiting_over_cap=waiting, amount=total)


def entry_amount(hours: Decimal, rate: Decimal, currency: str) -> Decimal:
    """hours × rate, rounded half-up to the currency's minor unit (the line's own rounding)."""
    return quantize(hours * rate, currency)
