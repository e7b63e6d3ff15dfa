"""The one rule for an amount of money received or returned on an invoice.

The API route, the workflow's Update validators and the persistence layer all check a payment (and a
refund) with these functions, so a client sees the same wording wherever the check catches it.
"""

from __future__ import annotations

from decimal import Decimal

from billing.currency import normalize_currency
from billing.errors import MoneyError
from billing.money import parse_decimal, require_minor_units


def payment_amount(value: object, currency: str, *, field: str = "amount") -> Decimal:
    """A positive amount at the currency's minor units (extra decimals are refused, never rounded)."""
    amount = require_minor_units(parse_decimal(value, field=field), currency, field=field)
    if amount <= 0:
        raise MoneyError(f"{field}: must be greater than 0")
    return amount


def payment_currency(given: str | None, invoice_currency: str) -> None:
    """A payment names no currency or the invoice's own: money is never converted silently."""
    if given is not None and normalize_currency(given) != normalize_currency(invoice_currency):
        raise MoneyError(f"currency: the payment is in {given}, the invoice in {invoice_currency}")
