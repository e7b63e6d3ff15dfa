"""Dunning policies: when each reminder goes out, which late fees are due, what a hold does.

One module per concern: ``policy`` (the data and its JSON), ``windows`` (send windows on the client's
wall clock), ``schedule`` (the reminder plan), ``holds``, ``fees``.

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

from billing.dunning.fees import (
    LateFeeCharge,
    late_fees,
)
from billing.dunning.holds import (
    HoldDecision,
    payment_hold,
    reminders_after_hold,
)
from billing.dunning.policy import (
    DEFAULT_POLICY,
    DEFAULT_SEND_WINDOW,
    FEE_KINDS,
    INTERNAL_RECIPIENTS,
    MAX_FEE_APPLICATIONS,
    MAX_OFFSET,
    MAX_STEPS,
    PAYMENT_IN_FLIGHT_GRACE,
    POLICY_VERSION,
    RECIPIENTS,
    TONES,
    WEEKDAY_NAMES,
    DunningPolicy,
    DunningStep,
    Escalation,
    LateFee,
    SendWindow,
    policy_from_dict,
    policy_to_dict,
)
from billing.dunning.schedule import (
    ScheduledReminder,
    dunning_schedule,
)
from billing.dunning.windows import (
    next_in_window,
)
from billing.errors import DunningError

__all__ = [
    "DunningError",
    "DEFAULT_POLICY",
    "DEFAULT_SEND_WINDOW",
    "DunningPolicy",
    "DunningStep",
    "Escalation",
    "FEE_KINDS",
    "HoldDecision",
    "INTERNAL_RECIPIENTS",
    "LateFee",
    "LateFeeCharge",
    "MAX_FEE_APPLICATIONS",
    "MAX_OFFSET",
    "MAX_STEPS",
    "PAYMENT_IN_FLIGHT_GRACE",
    "POLICY_VERSION",
    "RECIPIENTS",
    "ScheduledReminder",
    "SendWindow",
    "TONES",
    "WEEKDAY_NAMES",
    "dunning_schedule",
    "late_fees",
    "next_in_window",
    "payment_hold",
    "policy_from_dict",
    "policy_to_dict",
    "reminders_after_hold",
]
