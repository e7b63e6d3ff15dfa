"""Dunning policies: when each reminder goes out, which late fees are due, what a hold does.

A policy is data stored as JSON on the customer and frozen on the invoice when it is issued, so a later
edit never changes what an issued invoice's client receives. Everything here is a pure function of its
arguments (no clock, no I/O), so the invoice workflow and the API preview compute the same instants.

Rules, in the order they are applied:

- **Send window.** A reminder may only go out while the client's wall clock shows an allowed weekday and
  a time in ``[start, end)`` (default 09:00-17:00, Monday to Friday; 17:00 itself is outside).
  ``next_in_window`` returns the *earliest* such instant at or after a given one, in UTC.
- **Step times.** A step's nominal time is the window start on ``due_date + offset_days`` in the client's
  calendar; it is moved forward into the window (a Saturday step goes out on Monday at the window start).
- **DST.** All times are read on the client's wall clock (zoneinfo). A window start skipped by a
  spring-forward change opens at the moment the clocks jump (02:30 on a 02:00→03:00 night opens at
  03:00); an ambiguous start in a fall-back change opens at its first occurrence; a window lying wholly
  inside a skipped hour does not open that day. When the clocks go back into a window that had already
  closed, the repeated stretch is inside the window again, because what the client sees is the clock.
- **Collisions.** Two steps that land in the same slot (a Saturday step and the Monday step after it)
  are merged into one message: the later step wins (its template, tone and recipients, because it is
  the more advanced stage) and ``merged`` lists the indices of the steps it absorbed. A client never
  gets two reminders at one instant, and the schedule is strictly increasing.
- **Escalation.** The policy's optional escalation is an internal message (never to the client)
  ``after_days`` after the client's calendar date of the last step's slot, moved into the window like a
  step, so it always comes strictly after the last step.
- **Issue time.** Entries at or before ``issued_at`` are dropped, compared on their moved instant: an
  invoice issued late does not fire the reminders that belong to the past in one burst, while a Saturday
  step of an invoice issued on Sunday still goes out on Monday.
- **Holds** (a dispute, a payment in flight): reminders whose time falls inside the hold are missed. At
  release only the latest missed one is sent, at the first window slot from the release, unless a
  regular reminder is due by then anyway; the others are skipped for good. See ``reminders_after_hold``.
- **Late fees.** Fixed or percent of the outstanding principal, charged ``after_days`` after the due date,
  once unless ``compounding`` (then once per ``period_days``, a percent fee on principal plus earlier
  fees), never more than ``max_applications`` (and ``MAX_FEE_APPLICATIONS``) times, rounded half-up to
  the currency's minor units.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.currency import normalize_currency
from billing.errors import DunningError, MoneyError
from billing.money import exact_arithmetic, parse_decimal, quantize, require_minor_units

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_SEND_WINDOW",
    "MAX_FEE_APPLICATIONS",
    "PAYMENT_IN_FLIGHT_GRACE",
    "RECIPIENTS",
    "TONES",
    "WEEKDAY_NAMES",
    "DunningError",
    "DunningPolicy",
    "DunningStep",
    "Escalation",
    "HoldDecision",
    "LateFee",
    "LateFeeCharge",
    "ScheduledReminder",
    "SendWindow",
    "dunning_schedule",
    "late_fees",
    "next_in_window",
    "payment_hold",
    "policy_from_dict",
    "policy_to_dict",
    "reminders_after_hold",
]

POLICY_VERSION = 1
TONES: tuple[str, ...] = ("friendly", "firm", "final")
RECIPIENTS: tuple[str, ...] = ("client", "account_owner", "finance_lead")
INTERNAL_RECIPIENTS: tuple[str, ...] = ("account_owner", "finance_lead")
WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
FEE_KINDS: tuple[str, ...] = ("fixed", "percent")
MAX_OFFSET = 365
MAX_STEPS = 20
MAX_FEE_APPLICATIONS = 1000
PAYMENT_IN_FLIGHT_GRACE = timedelta(days=5)
# A window with at least one allowed weekday opens within 8 days unless DST swallows it; 16 is ample.
_SEARCH_DAYS = 16
_HUNDRED = Decimal(100)
_TEMPLATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


# ---------------------------------------------------------------- policy data


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DunningError(f"{name}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise DunningError(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _template(value: object, name: str) -> str:
    if not isinstance(value, str) or not _TEMPLATE.fullmatch(value):
        raise DunningError(
            f"{name}: expected a template name of letters, digits, '_', '.' or '-' "
            f"(at most 64), got {value!r}"
        )
    return value


def _recipients(value: object, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise DunningError(f"{name}: expected a non-empty list drawn from {', '.join(allowed)}")
    for item in value:
        if item not in allowed:
            raise DunningError(f"{name}: {item!r} is not one of {', '.join(allowed)}")
    if len(set(value)) != len(value):
        raise DunningError(f"{name}: each recipient may appear only once")
    return tuple(value)


@dataclass(frozen=True)
class DunningStep:
    """One reminder: ``offset_days`` relative to the due date (negative = before it)."""

    offset_days: int
    template: str
    tone: str = "friendly"
    recipients: tuple[str, ...] = ("client",)

    def __post_init__(self) -> None:
        _whole(self.offset_days, "offset_days", -MAX_OFFSET, MAX_OFFSET)
        _template(self.template, "template")
        if self.tone not in TONES:
            raise DunningError(f"tone: {self.tone!r} is not one of {', '.join(TONES)}")
        object.__setattr__(self, "recipients", _recipients(self.recipients, "recipients", RECIPIENTS))


@dataclass(frozen=True)
class SendWindow:
    """When reminders may go out, on the client's wall clock: ``[start, end)`` on ``weekdays``
    (0 = Monday, as ``date.weekday()``). Whole minutes only, and within one day (no overnight windows),
    because a reminder that lands at 02:00 local time reads as spam."""

    start: time = time(9, 0)
    end: time = time(17, 0)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise DunningError(f"{name}: expected a local time such as 09:00, got {value!r}")
            if value.second or value.microsecond:
                raise DunningError(f"{name}: whole minutes only, got {value.isoformat()}")
        if self.end <= self.start:
            raise DunningError(
                f"end: must be after start ({self.start:%H:%M}), got {self.end:%H:%M}; "
                "windows cannot span midnight"
            )
        if isinstance(self.weekdays, (str, bytes)) or not isinstance(
            self.weekdays, (list, tuple, set, frozenset)
        ):
            raise DunningError(f"weekdays: expected a list of weekdays, got {self.weekdays!r}")
        days = list(self.weekdays)
        for day in days:
            _whole(day, "weekdays", 0, 6)
        if not days:
            raise DunningError("weekdays: at least one weekday is needed, or no reminder could ever go out")
        if len(set(days)) != len(days):
            raise DunningError("weekdays: each weekday may appear only once")
        object.__setattr__(self, "weekdays", tuple(sorted(days)))


DEFAULT_SEND_WINDOW = SendWindow()


@dataclass(frozen=True)
class LateFee:
    """A late fee: ``value`` in the invoice's currency (``fixed``) or percent of the principal
    (``percent``), first charged ``after_days`` after the due date. Only a ``compounding`` fee repeats,
    every ``period_days``; a compounding percent fee applies to principal plus the fees before it."""

    kind: str
    value: Decimal
    after_days: int
    compounding: bool = False
    max_applications: int | None = None
    period_days: int = 30

    def __post_init__(self) -> None:
        if self.kind not in FEE_KINDS:
            raise DunningError(f"kind: {self.kind!r} is not one of {', '.join(FEE_KINDS)}")
        if isinstance(self.value, float):
            raise DunningError('value: floats are not accepted for money, send a string such as "12.50"')
        if not isinstance(self.value, Decimal) or not self.value.is_finite():
            raise DunningError(f"value: expected a finite Decimal, got {self.value!r}")
        if self.value <= 0:
            raise DunningError(f"value: must be greater than 0, got {self.value}")
        if self.kind == "percent" and self.value > _HUNDRED:
            raise DunningError(f"value: a percent fee is at most 100, got {self.value}")
        _whole(self.after_days, "after_days", 1, MAX_OFFSET)
        if not isinstance(self.compounding, bool):
            raise DunningError(f"compounding: expected true or false, got {self.compounding!r}")
        _whole(self.period_days, "period_days", 1, MAX_OFFSET)
        if self.max_applications is not None:
            _whole(self.max_applications, "max_applications", 1, MAX_FEE_APPLICATIONS)
            if not self.compounding and self.max_applications != 1:
                raise DunningError(
                    "max_applications: a fee that does not compound is charged once; set compounding"
                )

    @property
    def limit(self) -> int:
        """How many times the fee may be charged at most; an unlimited compounding fee still stops at
        ``MAX_FEE_APPLICATIONS``, so a forgotten invoice cannot grow fees (and work) without bound."""
        if not self.compounding:
            return 1
        return MAX_FEE_APPLICATIONS if self.max_applications is None else self.max_applications


@dataclass(frozen=True)
class Escalation:
    """The hand-over after the last step: an internal message (never to the client) ``after_days``
    after the last step went out, so someone decides on collection instead of another reminder."""

    after_days: int = 1
    template: str = "escalation"
    recipients: tuple[str, ...] = ("account_owner",)

    def __post_init__(self) -> None:
        _whole(self.after_days, "after_days", 1, MAX_OFFSET)
        _template(self.template, "template")
        object.__setattr__(
            self, "recipients", _recipients(self.recipients, "recipients", INTERNAL_RECIPIENTS)
        )


@dataclass(frozen=True)
class DunningPolicy:
    """A named dunning policy; ``steps`` are listed in the order they are sent (strictly increasing
    offsets), so a step's index is a stable identity for idempotency keys and the audit trail."""

    name: str
    steps: tuple[DunningStep, ...]
    send_window: SendWindow = DEFAULT_SEND_WINDOW
    late_fee: LateFee | None = None
    escalation: Escalation | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name.strip()) > 120:
            raise DunningError("name: required, at most 120 characters")
        object.__setattr__(self, "name", self.name.strip())
        if isinstance(self.steps, (str, bytes)) or not isinstance(self.steps, (list, tuple)):
            raise DunningError("steps: expected a list of steps")
        steps = tuple(self.steps)
        if len(steps) > MAX_STEPS:
            raise DunningError(f"steps: at most {MAX_STEPS} steps, got {len(steps)}")
        for i, step in enumerate(steps):
            if not isinstance(step, DunningStep):
                raise DunningError(f"steps[{i}]: expected a DunningStep, got {type(step).__name__}")
            if i and step.offset_days <= steps[i - 1].offset_days:
                raise DunningError(
                    f"steps[{i}].offset_days: must be after steps[{i - 1}] ({steps[i - 1].offset_days}), "
                    f"got {step.offset_days}; list steps in the order they are sent"
                )
        object.__setattr__(self, "steps", steps)
        if not isinstance(self.send_window, SendWindow):
            raise DunningError(f"send_window: expected a SendWindow, got {type(self.send_window).__name__}")
        if self.late_fee is not None and not isinstance(self.late_fee, LateFee):
            raise DunningError(f"late_fee: expected a LateFee, got {type(self.late_fee).__name__}")
        if self.escalation is not None:
            if not isinstance(self.escalation, Escalation):
                raise DunningError(
                    f"escalation: expected an Escalation, got {type(self.escalation).__name__}"
                )
            if not steps:
                raise DunningError("escalation: needs at least one step to follow")


DEFAULT_POLICY = DunningPolicy(
    name="Standard",
    steps=(
        DunningStep(-3, "reminder", "friendly"),
        DunningStep(0, "reminder", "friendly"),
        DunningStep(7, "reminder", "firm"),
        DunningStep(14, "reminder", "firm"),
        DunningStep(30, "reminder", "final", ("client", "account_owner")),
    ),
    escalation=Escalation(after_days=1),
)


# ---------------------------------------------------------------- JSON (customer and invoice columns)


def _prefixed(path: str, error: MoneyError) -> DunningError:
    return DunningError(f"{path}.{error}" if path else str(error))


def _object(value: object, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DunningError(f"{path}: expected an object")
    unknown = set(value) - allowed
    if unknown:
        raise DunningError(f"{path}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise DunningError(f"{path}: expected a list")
    return value


def _hhmm(value: object, path: str) -> time:
    if not isinstance(value, str) or not (match := _HHMM.fullmatch(value)):
        raise DunningError(f"{path}: expected a local time as HH:MM such as '09:00', got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _step(raw: object, path: str) -> DunningStep:
    data = _object(raw, path, {"offset_days", "template", "tone", "recipients"})
    for key in ("offset_days", "template"):
        if key not in data:
            raise DunningError(f"{path}.{key}: required")
    try:
        return DunningStep(
            offset_days=data["offset_days"],
            template=data["template"],
            tone=data.get("tone", "friendly"),
            recipients=data.get("recipients", ["client"]),
        )
    except DunningError as error:
        raise _prefixed(path, error) from None


def _window(raw: object, path: str) -> SendWindow:
    data = _object(raw, path, {"start", "end", "weekdays"})
    start = _hhmm(data.get("start", "09:00"), f"{path}.start")
    end = _hhmm(data.get("end", "17:00"), f"{path}.end")
    days: list[int] = []
    for name in _list(data.get("weekdays", list(WEEKDAY_NAMES[:5])), f"{path}.weekdays"):
        if name not in WEEKDAY_NAMES:
            raise DunningError(f"{path}.weekdays: {name!r} is not one of {', '.join(WEEKDAY_NAMES)}")
        days.append(WEEKDAY_NAMES.index(name))
    try:
        return SendWindow(start, end, tuple(days))
    except DunningError as error:
        raise _prefixed(path, error) from None


def _late_fee(raw: object, path: str) -> LateFee:
    data = _object(
        raw, path, {"kind", "value", "after_days", "compounding", "max_applications", "period_days"}
    )
    for key in ("kind", "value", "after_days"):
        if key not in data:
            raise DunningError(f"{path}.{key}: required")
    try:
        value = parse_decimal(data["value"], field=f"{path}.value")
    except MoneyError as error:
        raise DunningError(str(error)) from None
    try:
        return LateFee(
            kind=data["kind"],
            value=value,
            after_days=data["after_days"],
            compounding=data.get("compounding", False),
            max_applications=data.get("max_applications"),
            period_days=data.get("period_days", 30),
        )
    except DunningError as error:
        raise _prefixed(path, error) from None


def _escalation(raw: object, path: str) -> Escalation:
    data = _object(raw, path, {"after_days", "template", "recipients"})
    try:
        return Escalation(
            after_days=data.get("after_days", 1),
            template=data.get("template", "escalation"),
            recipients=data.get("recipients", ["account_owner"]),
        )
    except DunningError as error:
        raise _prefixed(path, error) from None


def policy_from_dict(data: Mapping[str, Any]) -> DunningPolicy:
    """A validated policy from its JSON form, or a ``DunningError`` naming the field
    (``steps[2].tone: 'angry' is not one of friendly, firm, final``). Money is never a float."""
    data = _object(data, "policy", {"version", "name", "steps", "send_window", "late_fee", "escalation"})
    version = data.get("version", POLICY_VERSION)
    if isinstance(version, bool) or version != POLICY_VERSION:
        raise DunningError(f"version: this release reads version {POLICY_VERSION}, got {version!r}")
    if "name" not in data:
        raise DunningError("name: required")
    if "steps" not in data:
        raise DunningError("steps: required (an empty list means no reminders)")
    steps = tuple(_step(raw, f"steps[{i}]") for i, raw in enumerate(_list(data["steps"], "steps")))
    window = (
        DEFAULT_SEND_WINDOW
        if data.get("send_window") is None
        else _window(data["send_window"], "send_window")
    )
    fee = None if data.get("late_fee") is None else _late_fee(data["late_fee"], "late_fee")
    escalation = None if data.get("escalation") is None else _escalation(data["escalation"], "escalation")
    return DunningPolicy(
        name=data["name"], steps=steps, send_window=window, late_fee=fee, escalation=escalation
    )


def policy_to_dict(policy: DunningPolicy) -> dict[str, Any]:
    """The JSON form ``policy_from_dict`` reads back to an equal policy; money as strings, times as
    HH:MM, weekdays by name, so the stored column is readable and stable."""
    window = policy.send_window
    fee = policy.late_fee
    esc = policy.escalation
    return {
        "version": POLICY_VERSION,
        "name": policy.name,
        "steps": [
            {
                "offset_days": s.offset_days,
                "template": s.template,
                "tone": s.tone,
                "recipients": list(s.recipients),
            }
            for s in policy.steps
        ],
        "send_window": {
            "start": f"{window.start:%H:%M}",
            "end": f"{window.end:%H:%M}",
            "weekdays": [WEEKDAY_NAMES[d] for d in window.weekdays],
        },
        "late_fee": None
        if fee is None
        else {
            "kind": fee.kind,
            "value": str(fee.value),
            "after_days": fee.after_days,
            "compounding": fee.compounding,
            "max_applications": fee.max_applications,
            "period_days": fee.period_days,
        },
        "escalation": None
        if esc is None
        else {"after_days": esc.after_days, "template": esc.template, "recipients": list(esc.recipients)},
    }


# ---------------------------------------------------------------- wall-clock arithmetic


def _zone(timezone: str) -> ZoneInfo:
    if not isinstance(timezone, str) or not timezone.strip():
        raise DunningError(f"timezone: expected an IANA timezone such as 'Europe/Berlin', got {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DunningError(f"timezone: unknown IANA timezone {timezone!r}") from None


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise DunningError(f"{name}: expected a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _reading(instant: datetime, zone: ZoneInfo) -> datetime:
    """What the client's wall clock shows at ``instant`` (naive)."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _inside(instant: datetime, window: SendWindow, zone: ZoneInfo) -> bool:
    local = instant.astimezone(zone)
    return local.weekday() in window.weekdays and window.start <= local.time() < window.end


def _occurrences(local: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the clock shows ``local``: one, two (fall-back) or none (spring-forward)."""
    found: list[datetime] = []
    for fold in (0, 1):
        instant = local.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if _reading(instant, zone) == local and instant not in found:
            found.append(instant)
    return sorted(found)


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first second after ``before`` at which the zone's offset is already that of ``after``
    (binary search, deterministic; zoneinfo has no public list of transitions)."""
    target = after.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _first_at_or_after(local: datetime, zone: ZoneInfo) -> datetime:
    """The earliest instant at which the clock shows ``local`` or later: its first occurrence, or, for a
    time skipped by a spring-forward change, the moment the clocks jump."""
    found = _occurrences(local, zone)
    if found:
        return found[0]
    # In a gap fold=1 uses the later (larger) offset, so it is the earlier instant: the jump lies between.
    a = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    b = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _transition(min(a, b), max(a, b), zone)


def _openings(day: date, window: SendWindow, zone: ZoneInfo) -> list[datetime]:
    """Every instant at which the window can open on ``day``: the clock reaching ``start`` (each time
    it does), and the clocks going back into the window after it had closed (``end`` repeated)."""
    start = datetime.combine(day, window.start)
    found = [_first_at_or_after(start, zone), *_occurrences(start, zone)]
    ends = _occurrences(datetime.combine(day, window.end), zone)
    if len(ends) == 2:
        found.append(_transition(ends[0], ends[1], zone))
    return found


def _next_in_window(instant: datetime, window: SendWindow, zone: ZoneInfo) -> datetime:
    if _inside(instant, window, zone):
        return instant
    today = _reading(instant, zone).date()
    best: datetime | None = None
    for n in range(-1, _SEARCH_DAYS):
        day = today + timedelta(days=n)
        if day.weekday() not in window.weekdays:
            continue
        for candidate in _openings(day, window, zone):
            if (
                candidate > instant
                and _inside(candidate, window, zone)
                and (best is None or candidate < best)
            ):
                best = candidate
    if best is None:
        raise DunningError(f"send_window: does not open within {_SEARCH_DAYS} days in {zone.key}")
    return best


def next_in_window(instant_utc: datetime, window: SendWindow, timezone: str) -> datetime:
    """The earliest instant at or after ``instant_utc`` at which the client's wall clock in ``timezone``
    shows an allowed weekday and a time in ``[window.start, window.end)``, as an aware UTC datetime.

    An instant already inside is returned unchanged (seconds included), so the function is idempotent
    and monotonic: a later input never gives an earlier slot. DST: see the module docstring."""
    return _next_in_window(_aware(instant_utc, "instant_utc"), window, _zone(timezone))


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


# ---------------------------------------------------------------- holds (dispute, payment in flight)


@dataclass(frozen=True)
class HoldDecision:
    """A schedule with a hold applied.

    ``send``: what goes out, by ``send_at`` (reminders before the hold unchanged, the re-timed missed
    one, the ones after the release); ``skipped``: missed during the hold, never sent; ``suspended``:
    the hold is still open, so these wait for the release (decide again then); ``released``: the missed
    reminder re-timed to the release, also in ``send``."""

    send: tuple[ScheduledReminder, ...]
    skipped: tuple[ScheduledReminder, ...] = ()
    suspended: tuple[ScheduledReminder, ...] = ()
    released: ScheduledReminder | None = None


def reminders_after_hold(
    schedule: Sequence[ScheduledReminder],
    hold_from: datetime,
    hold_until: datetime | None,
    now: datetime,
    *,
    window: SendWindow,
    timezone: str,
) -> HoldDecision:
    """Apply a hold ``[hold_from, hold_until)`` to ``schedule``.

    Released (``hold_until`` given, also when it lies ahead of ``now``): reminders in the hold are
    missed. Only the latest missed one is sent, at ``next_in_window(hold_until)``, and only if no regular
    reminder is due by then anyway (it would supersede it); all others are skipped. Firing every missed
    reminder at release would bury a client who just settled a dispute in a burst of mail.

    Open (``hold_until`` is None): nothing from ``hold_from`` on is sent. Missed reminders up to ``now``
    except the latest are skipped already (no release can bring them back); the latest missed one and
    everything after it are suspended. Skipped stays skipped whatever the release time turns out to be.
    """
    start = _aware(hold_from, "hold_from")
    current = _aware(now, "now")
    until = None if hold_until is None else _aware(hold_until, "hold_until")
    if until is not None and until < start:
        raise DunningError("hold_until: must not be before hold_from")
    if not isinstance(window, SendWindow):
        raise DunningError(f"window: expected a SendWindow, got {type(window).__name__}")
    zone = _zone(timezone)
    ordered = sorted(schedule, key=lambda r: (r.send_at, r.step_index))
    before = tuple(r for r in ordered if r.send_at < start)
    if until is None:
        passed = [r for r in ordered if start <= r.send_at <= current]
        waiting = tuple(r for r in ordered if r.send_at >= start and r.send_at > current)
        return HoldDecision(send=before, skipped=tuple(passed[:-1]), suspended=(*passed[-1:], *waiting))
    missed = [r for r in ordered if start <= r.send_at < until]
    after = tuple(r for r in ordered if r.send_at >= until)
    if not missed:
        return HoldDecision(send=(*before, *after))
    at = _next_in_window(until, window, zone)
    if after and after[0].send_at <= at:
        return HoldDecision(send=(*before, *after), skipped=tuple(missed))
    released = replace(missed[-1], send_at=at, local_date=_reading(at, zone).date())
    return HoldDecision(send=(*before, released, *after), skipped=tuple(missed[:-1]), released=released)


def payment_hold(
    started_at: datetime, resolved_at: datetime | None = None, *, grace: timedelta = PAYMENT_IN_FLIGHT_GRACE
) -> tuple[datetime, datetime]:
    """The hold ``(from, until)`` for a payment in flight (a bank transfer announced, a debit clearing):
    the client believes they have paid, so a reminder then is wrong. It ends when the payment resolves
    (failed or returned; a settled payment ends dunning altogether) or after ``grace`` at the latest,
    so a payment that silently vanishes cannot stop dunning forever. Feed it to ``reminders_after_hold``."""
    start = _aware(started_at, "started_at")
    if not isinstance(grace, timedelta) or grace <= timedelta(0):
        raise DunningError(f"grace: must be a positive timedelta, got {grace!r}")
    expiry = start + grace
    if resolved_at is None:
        return start, expiry
    resolved = _aware(resolved_at, "resolved_at")
    if resolved < start:
        raise DunningError("resolved_at: must not be before started_at")
    return start, min(resolved, expiry)


# ---------------------------------------------------------------- late fees


@dataclass(frozen=True)
class LateFeeCharge:
    """The ``sequence``-th application (1-based) of a late fee, assessed on ``assessed_on``; ``base`` is
    what a percent fee applied to (None for a fixed fee)."""

    sequence: int
    assessed_on: date
    base: Decimal | None
    amount: Decimal
    currency: str


def _percent_of(base: Decimal, percent: Decimal, currency: str) -> Decimal:
    with exact_arithmetic("late_fee"):
        share = base * percent / _HUNDRED
    return quantize(share, currency, field="late_fee")


def late_fees(
    fee: LateFee | None,
    principal: Decimal,
    currency: str,
    due_date: date,
    as_of: date,
    already_applied: int = 0,
    *,
    applied_total: Decimal | None = None,
) -> list[LateFeeCharge]:
    """The late-fee charges due by ``as_of`` that are not charged yet (``already_applied`` of them are).

    The n-th charge is assessed on ``due_date + after_days + (n - 1) * period_days``; a fee that does not
    compound is charged once, ever; one that does, at most ``fee.limit`` times. Fixed: ``value`` in
    ``currency``, never rounded (extra decimals are refused). Percent: of the outstanding ``principal``
    (plus, when compounding, the earlier fees: ``applied_total`` if given, as really charged, else
    recomputed from this principal), rounded half-up to the currency's minor units; a fee that rounds to
    nothing is not charged. No principal outstanding, no fee. Holds are not considered here: pass the
    principal the fee may apply to (e.g. without a disputed amount)."""
    if fee is None:
        return []
    if not isinstance(fee, LateFee):
        raise DunningError(f"late_fee: expected a LateFee, got {type(fee).__name__}")
    try:
        code = normalize_currency(currency)
        outstanding = require_minor_units(principal, code, field="principal")
        earlier = (
            None if applied_total is None else require_minor_units(applied_total, code, field="applied_total")
        )
        fixed = require_minor_units(fee.value, code, field="late_fee.value") if fee.kind == "fixed" else None
    except MoneyError as error:
        raise DunningError(str(error)) from None
    for name, value in (("due_date", due_date), ("as_of", as_of)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise DunningError(f"{name}: expected a date, got {value!r}")
    _whole(already_applied, "already_applied", 0, 10**9)
    if earlier is not None and earlier < 0:
        raise DunningError(f"applied_total: must not be negative, got {earlier}")
    first = due_date + timedelta(days=fee.after_days)
    if outstanding <= 0 or as_of < first:
        return []
    due_count = min(1 + ((as_of - first).days // fee.period_days if fee.compounding else 0), fee.limit)
    if already_applied >= due_count:
        return []

    def amount(base: Decimal) -> Decimal:
        return fixed if fixed is not None else _percent_of(base, fee.value, code)

    charges: list[LateFeeCharge] = []
    with exact_arithmetic("late_fee"):
        total = earlier
        if total is None:  # recompute what the earlier applications charged, from this principal
            total = quantize(Decimal(0), code)
            for _ in range(already_applied):
                total += amount(outstanding + total if fee.compounding else outstanding)
        for sequence in range(already_applied + 1, due_count + 1):
            base = outstanding + total if fee.compounding else outstanding
            charge = amount(base)
            if charge == 0:  # rounds to nothing; the base does not grow, so no later one would either
                break
            charges.append(
                LateFeeCharge(
                    sequence=sequence,
                    assessed_on=first + timedelta(days=(sequence - 1) * fee.period_days),
                    base=None if fixed is not None else base,
                    amount=charge,
                    currency=code,
                )
            )
            total += charge
    return charges
