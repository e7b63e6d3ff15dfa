"""Dunning policy data (steps, send window, late fee, escalation) and its JSON form on customers and
invoices; every constructor validates, so a stored policy is always a valid one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal
from typing import Any

from billing.errors import DunningError, MoneyError
from billing.money import parse_decimal

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
