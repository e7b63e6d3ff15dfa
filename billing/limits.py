"""Bounds on what an invoice may contain, so nothing is accepted that can never complete.

An input the rest of the system cannot carry (a due date in year 9999 overflows the reminder arithmetic;
10^30 does not fit a search attribute or an accounting provider's number) must be refused where it enters,
with a message naming the field, not found later by an activity that then retries forever.

- **Dates** (issue, due, period, resume, incurred, valid-until, as-of) lie in
  ``EARLIEST_DATE`` .. ``LATEST_DATE``: far beyond any real invoice, and far enough from
  ``date.min``/``date.max`` that adding payment terms, reminder offsets (±365 days) and a time zone to
  them can never overflow.
- **Amounts** (a unit price, a line, an invoice total, a payment) are at most ``AMOUNT_CEILING``: amounts
  travel to the books and into Temporal's ``AmountDue`` as JSON numbers (IEEE doubles, 15 significant
  digits), and 999,999,999,999.999 is the largest amount with three decimals that stays exact there. A
  deployment may set a lower maximum (``INVOICEFLOW_MAX_AMOUNT``); no setting lifts this ceiling.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from billing.errors import MoneyError

EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)
AMOUNT_CEILING = Decimal("999999999999.99")


class DateOutOfRange(MoneyError):
    """A date outside ``EARLIEST_DATE`` .. ``LATEST_DATE``; ``str(error)`` names the field."""


def check_date(value: date, field: str) -> date:
    """The date itself, or ``DateOutOfRange`` naming the field and the window."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise DateOutOfRange(
            f"{field}: {day.isoformat()} is outside the accepted range "
            f"{EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}"
        )
    return value


def amount_limit(maximum: Decimal | None = None) -> Decimal:
    """The effective maximum: a configured one, never above ``AMOUNT_CEILING``."""
    if maximum is None or maximum > AMOUNT_CEILING:
        return AMOUNT_CEILING
    return maximum


def check_amount(amount: Decimal, field: str, maximum: Decimal | None = None, currency: str = "") -> Decimal:
    """The amount itself if its absolute value is at most the limit, else a ``MoneyError`` naming it."""
    limit = amount_limit(maximum)
    if abs(amount) > limit:
        unit = f" {currency}" if currency else ""
        raise MoneyError(f"{field}: {amount}{unit} is more than the maximum amount of {limit}{unit}")
    return amount
