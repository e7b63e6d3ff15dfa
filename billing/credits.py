"""Credit notes and customer credit: the pure rules, shared by the API (422s), the invoice workflow's
Update validator and the activity that persists a credit note, so all three agree to the cent.

An issued invoice's money splits into three non-negative parts::

    amount_due      = max(total − paid − credited, 0)      what the client still owes
    customer_credit = max(paid + credited − total, 0)      what the client is owed back (next invoice)

- A credit note may credit at most what is still *creditable*: ``total − credited`` (an invoice cannot
  be credited twice over). It may exceed the amount still *due*: on a partly paid invoice the part
  beyond the amount due becomes customer credit, applied to the client's next invoice in that currency
  (``persistence.credit_notes.apply_customer_credit``). We chose this over refusing because it is what
  the books do (Xero and QBO keep an unallocated credit note on the contact) and because refusing would
  leave no way to cancel a partly paid invoice in full.
- ``full`` credits the whole invoice with its own lines (same tax groups as the invoice); it is only
  possible while nothing was credited yet. After a partial credit note, credit the rest with lines.
"""

from __future__ import annotations

from decimal import Decimal

from billing.errors import MoneyError
from billing.money import exact_arithmetic, format_money


class CreditRefused(ValueError):
    """A credit note that the invoice cannot take (too much, nothing to credit, full after partial)."""


def creditable(total: Decimal, credited: Decimal) -> Decimal:
    """What credit notes may still take off this invoice: ``total − credited`` (never negative)."""
    with exact_arithmetic("amount_credited"):
        zero = total - total
        return max(total - credited, zero)


def split(total: Decimal, paid: Decimal, credited: Decimal) -> tuple[Decimal, Decimal]:
    """``(amount_due, customer_credit)`` of an invoice; at most one of them is non-zero."""
    with exact_arithmetic("amount"):
        zero = total - total
        balance = total - paid - credited
        return max(balance, zero), max(-balance, zero)


def check_credit_amount(
    amount: Decimal, *, total: Decimal, credited: Decimal, currency: str, number: str, full: bool = False
) -> None:
    """Refuse a credit note of ``amount`` on an invoice with ``total`` and ``credited`` so far.

    Raises ``CreditRefused`` with a message that names the numbers, so an operator can correct it."""
    if full and credited:
        raise CreditRefused(
            f"full: {number} already has credit notes for {format_money(credited, currency)}; "
            "credit the rest with lines"
        )
    if amount <= 0:
        raise CreditRefused("amount: a credit note must credit more than 0 (its lines add up to 0)")
    left = creditable(total, credited)
    if amount > left:
        raise CreditRefused(
            f"amount: {format_money(amount, currency)} is more than the {format_money(left, currency)} still "
            f"creditable on {number} (total {format_money(total, currency)}, credited so far "
            f"{format_money(credited, currency)})"
        )


def applicable_credit(balance: Decimal, amount_due: Decimal) -> Decimal:
    """How much of a customer's credit ``balance`` goes onto an invoice with ``amount_due``: never more
    than either, never below zero."""
    if balance < 0 or amount_due < 0:
        raise MoneyError("credit balance and amount due must not be negative")
    return min(balance, amount_due)
