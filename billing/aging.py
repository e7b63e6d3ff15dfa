"""Receivables aging: how long open amounts have been overdue, per customer and currency.

Buckets count whole days past the due date in the calendar the caller passes (``as_of`` is a date, so
the caller decides whose "today" it is): not yet overdue or due today is ``current``; 1-30, 31-60 and
61-90 days overdue; more than 90 is ``90+``. Amounts are never summed across currencies (there is no
rate here to do it honestly), so every total is per currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from billing.currency import normalize_currency
from billing.errors import MoneyError
from billing.money import exact_arithmetic, quantize, require_minor_units

BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "90+")


def _date(value: object, name: str) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise MoneyError(f"{name}: expected a date, got {value!r}")
    return value


def _zero(currency: str) -> Decimal:
    return quantize(Decimal(0), currency)


def days_overdue(due_date: date, as_of: date) -> int:
    """Whole days past the due date on ``as_of`` (0 or negative: not overdue)."""
    return (_date(as_of, "as_of") - _date(due_date, "due_date")).days


def aging_bucket(due_date: date, as_of: date) -> str:
    """The bucket of an amount due on ``due_date``, seen on ``as_of``. Boundaries belong to the lower
    bucket: 0 days → current, 30 → 1-30, 60 → 31-60, 90 → 61-90, 91 → 90+."""
    days = days_overdue(due_date, as_of)
    if days <= 0:
        return "current"
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    return "90+"


@dataclass(frozen=True)
class AgingRow:
    """One open amount (usually an invoice's amount due) as the report reads it."""

    customer_id: str
    customer_name: str
    currency: str
    amount_due: Decimal
    due_date: date


@dataclass(frozen=True)
class AgingLine:
    """One customer in one currency: the amount in every bucket (zeros included) and the total."""

    customer_id: str
    customer_name: str
    currency: str
    buckets: dict[str, Decimal]
    total: Decimal


@dataclass(frozen=True)
class AgingTotals:
    """All customers in one currency."""

    currency: str
    buckets: dict[str, Decimal]
    total: Decimal


@dataclass(frozen=True)
class AgingReport:
    """Lines sorted by customer name (case-insensitive), id, currency; totals sorted by currency."""

    as_of: date
    lines: tuple[AgingLine, ...]
    totals: tuple[AgingTotals, ...]


def aging_report(rows: Iterable[AgingRow], as_of: date) -> AgingReport:
    """Bucket every row and total them per customer per currency, and per currency overall.

    Rows with nothing due are left out; a negative amount (a credit) is refused, since a credit is not
    a receivable and netting it silently would hide an overdue invoice. A customer whose name differs
    between rows (renamed after some invoices) is shown under the name of their row with the latest due
    date (ties: the alphabetically first), so the report does not depend on row order.
    """
    _date(as_of, "as_of")
    sums: dict[tuple[str, str], dict[str, Decimal]] = {}
    names: dict[str, tuple[date, str]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, AgingRow):
            raise MoneyError(f"rows[{i}]: expected an AgingRow, got {type(row).__name__}")
        if not isinstance(row.customer_id, str) or not row.customer_id:
            raise MoneyError(f"rows[{i}].customer_id: expected a non-empty string, got {row.customer_id!r}")
        if not isinstance(row.customer_name, str):
            raise MoneyError(f"rows[{i}].customer_name: expected a string, got {row.customer_name!r}")
        code = normalize_currency(row.currency)
        amount = require_minor_units(row.amount_due, code, field=f"rows[{i}].amount_due")
        if amount < 0:
            raise MoneyError(
                f"rows[{i}].amount_due: must not be negative (credits are not aged), got {amount}"
            )
        bucket = aging_bucket(_date(row.due_date, f"rows[{i}].due_date"), as_of)
        seen = names.get(row.customer_id)
        if (
            seen is None
            or row.due_date > seen[0]
            or (row.due_date == seen[0] and row.customer_name < seen[1])
        ):
            names[row.customer_id] = (row.due_date, row.customer_name)
        if amount == 0:
            continue
        buckets = sums.setdefault((row.customer_id, code), {b: _zero(code) for b in BUCKETS})
        with exact_arithmetic(f"rows[{i}].amount_due"):
            buckets[bucket] += amount
    lines: list[AgingLine] = []
    totals: dict[str, dict[str, Decimal]] = {}
    with exact_arithmetic("total"):
        for (customer_id, code), buckets in sums.items():
            lines.append(
                AgingLine(
                    customer_id,
                    names[customer_id][1],
                    code,
                    dict(buckets),
                    sum(buckets.values(), _zero(code)),
                )
            )
            grand = totals.setdefault(code, {b: _zero(code) for b in BUCKETS})
            for bucket, amount in buckets.items():
                grand[bucket] += amount
        currency_totals = tuple(
            AgingTotals(code, grand, sum(grand.values(), _zero(code)))
            for code, grand in sorted(totals.items())
        )
    lines.sort(
        key=lambda line: (line.customer_name.casefold(), line.customer_name, line.customer_id, line.currency)
    )
    return AgingReport(as_of=as_of, lines=tuple(lines), totals=currency_totals)
