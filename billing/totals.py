"""Invoice totals. These are the product's documented rounding rules:

1. Per line, ``gross = quantity × unit_price`` rounded half-up to the currency's minor unit.
2. A line discount is either a fixed ``discount_amount`` (which must already fit the minor units and
   not exceed the gross) or ``gross × discount_percent / 100`` rounded half-up; never both.
3. ``net = gross − discount``; ``subtotal = Σ net``.
4. Tax is computed once per tax rate on the sum of the nets at that rate, rounded half-up. Rounding per
   group instead of per line keeps a 100-line invoice from drifting by up to 50 cents.
5. ``total = subtotal + Σ group tax``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.currency import normalize_currency
from billing.errors import MoneyError
from billing.money import decimals_of, quantize, require_minor_units

MAX_LINES = 500
HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal = ZERO
    discount_amount: Decimal = ZERO
    tax_rate: Decimal = ZERO  # percent, e.g. Decimal("19")


@dataclass(frozen=True)
class LineTotals:
    gross: Decimal
    discount: Decimal
    net: Decimal
    tax_rate: Decimal


@dataclass(frozen=True)
class TaxGroup:
    rate: Decimal
    taxable: Decimal
    tax: Decimal


@dataclass(frozen=True)
class InvoiceTotals:
    currency: str
    lines: tuple[LineTotals, ...]
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    tax_groups: tuple[TaxGroup, ...]
    total: Decimal


def _finite(value: object, field: str) -> Decimal:
    if not isinstance(value, Decimal) or isinstance(value, bool):
        raise MoneyError(f"{field}: expected a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise MoneyError(f"{field}: must be a finite number, got {value}")
    return value


def _max_decimals(value: Decimal, places: int, field: str) -> None:
    if decimals_of(value) > places:
        raise MoneyError(f"{field}: at most {places} decimal places, got {value}")


def _line(line: LineInput, index: int, currency: str) -> LineTotals:
    path = f"lines[{index}]"
    if not isinstance(line.description, str) or not line.description.strip():
        raise MoneyError(f"{path}.description: must not be empty")
    if len(line.description.strip()) > 1000:
        raise MoneyError(f"{path}.description: at most 1000 characters")
    quantity = _finite(line.quantity, f"{path}.quantity")
    price = _finite(line.unit_price, f"{path}.unit_price")
    percent = _finite(line.discount_percent, f"{path}.discount_percent")
    fixed = _finite(line.discount_amount, f"{path}.discount_amount")
    rate = _finite(line.tax_rate, f"{path}.tax_rate")
    if quantity <= 0:
        raise MoneyError(f"{path}.quantity: must be greater than 0 (credits are credit notes, not negative lines)")
    _max_decimals(quantity, 4, f"{path}.quantity")
    if price < 0:
        raise MoneyError(f"{path}.unit_price: must not be negative")
    _max_decimals(price, 6, f"{path}.unit_price")
    if not ZERO <= percent <= HUNDRED:
        raise MoneyError(f"{path}.discount_percent: must be between 0 and 100")
    if fixed < 0:
        raise MoneyError(f"{path}.discount_amount: must not be negative")
    if percent and fixed:
        raise MoneyError(f"{path}: give discount_percent or discount_amount, not both")
    if not ZERO <= rate <= HUNDRED:
        raise MoneyError(f"{path}.tax_rate: must be between 0 and 100 (a percent)")
    _max_decimals(rate, 4, f"{path}.tax_rate")

    gross = quantize(quantity * price, currency)
    if fixed:
        discount = require_minor_units(fixed, currency, field=f"{path}.discount_amount")
        if discount > gross:
            raise MoneyError(f"{path}.discount_amount: {discount} is more than the line's {gross}")
    else:
        discount = quantize(gross * percent / HUNDRED, currency)
    return LineTotals(gross=gross, discount=discount, net=gross - discount, tax_rate=rate.normalize() + 0)


def compute_totals(lines: Sequence[LineInput], currency: str) -> InvoiceTotals:
    code = normalize_currency(currency)
    if not lines:
        raise MoneyError("lines: an invoice needs at least one line")
    if len(lines) > MAX_LINES:
        raise MoneyError(f"lines: at most {MAX_LINES} lines, got {len(lines)}")
    computed = tuple(_line(line, i, code) for i, line in enumerate(lines))
    zero = quantize(ZERO, code)
    taxable: dict[Decimal, Decimal] = {}
    for line in computed:
        taxable[line.tax_rate] = taxable.get(line.tax_rate, zero) + line.net
    groups = tuple(
        TaxGroup(rate=rate, taxable=base, tax=quantize(base * rate / HUNDRED, code))
        for rate, base in sorted(taxable.items())
    )
    subtotal = sum((line.net for line in computed), zero)
    tax_total = sum((g.tax for g in groups), zero)
    return InvoiceTotals(
        currency=code,
        lines=computed,
        subtotal=subtotal,
        discount_total=sum((line.discount for line in computed), zero),
        tax_total=tax_total,
        tax_groups=groups,
        total=subtotal + tax_total,
    )


def amount_due(total: Decimal, paid: Decimal) -> Decimal:
    """What the client still owes; never negative (an overpayment is a credit, see below)."""
    zero = total - total  # 0 at the total's scale: 0.00 for USD, 0 for JPY
    return max(total - paid, zero)


def credit_from_overpayment(total: Decimal, paid: Decimal) -> Decimal:
    zero = total - total
    return max(paid - total, zero)


def parse_lines(raw: Sequence[object]) -> list[LineInput]:
    """Lines from mappings or objects with string fields (API bodies, stored terms, workflow payloads),
    with field paths in every error: ``lines[1].unit_price: ...``."""
    from billing.money import parse_decimal

    def get(line: object, key: str, default: object) -> object:
        if isinstance(line, dict):
            return line.get(key, default)
        return getattr(line, key, default)

    parsed: list[LineInput] = []
    for i, line in enumerate(raw):
        path = f"lines[{i}]"
        parsed.append(
            LineInput(
                description=str(get(line, "description", "")),
                quantity=parse_decimal(get(line, "quantity", "1"), field=f"{path}.quantity"),
                unit_price=parse_decimal(get(line, "unit_price", None), field=f"{path}.unit_price"),
                discount_percent=parse_decimal(get(line, "discount_percent", "0"), field=f"{path}.discount_percent"),
                discount_amount=parse_decimal(get(line, "discount_amount", "0"), field=f"{path}.discount_amount"),
                tax_rate=parse_decimal(get(line, "tax_rate", "0"), field=f"{path}.tax_rate"),
            )
        )
    return parsed
