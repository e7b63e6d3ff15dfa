"""Holds (a dispute, a payment in flight): which held-back reminders are sent at release, and the
payment-in-flight hold itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from billing.dunning.policy import PAYMENT_IN_FLIGHT_GRACE, SendWindow
from billing.dunning.schedule import ScheduledReminder
from billing.dunning.windows import _aware, _next_in_window, _reading, _zone
from billing.errors import DunningError

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
