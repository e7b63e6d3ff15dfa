"""Invoice totals. These are the product's documented rounding rules:

1. Per line, ``gross = quantity × unit_price`` rounded half-up to the currency's minor unit. A unit price
   may carry up to 6 decimals whatever the currency (EN 16931 allows an item price finer than the
   currency's minor unit: 0.125 EUR per API call); every *amount* (gross, discount, net, tax, total) is
   at the currency's minor units. A line whose product is not zero but rounds to zero (0.0001 × 10.00
   USD) is refused: it would make an invoice for nothing.
2. A line discount is either a fixed ``discount_amount`` (which must already fit the minor units and
   not exceed the gross) or ``gross × discount_percent / 100`` rounded half-up; never both on one line.
3. ``net = gross − discount``; ``subtotal = Σ net``; ``discount_total = Σ discount``.
4. Tax is computed once per tax rate, on the sum of the nets at that rate, rounded half-up. Rounding
   per group instead of per line keeps a long invoice from drifting by up to half a minor unit per line.
5. ``total = subtotal + Σ group tax``.

"Half-up" is ROUND_HALF_UP (commercial rounding: an exact half goes away from zero); see
``billing.money``. Every intermediate product is computed exactly, so these are the only roundings.
Unit prices, line amounts and the total are bounded by ``billing.limits`` (``max_amount``, at most
``AMOUNT_CEILING``).
Tax groups are ordered by rate and the sums are order-independent, so the order of the lines never
changes a total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.currency import normalize_currency
from billing.errors import MoneyError
from billing.limits import amount_limit
from billing.money import decimals_of, exact_arithmetic, parse_decimal, quantize, require_minor_units

MAX_LINES = 500
MAX_DESCRIPTION = 1000
HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass(frozen=True)
class LineInput:
    """One invoice line as entered; ``discount_percent`` and ``tax_rate`` are percents (19 = 19 %)."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal = ZERO
    discount_amount: Decimal = ZERO
    tax_rate: Decimal = ZERO


@dataclass(frozen=True)
class LineTotals:
    """A line's amounts at the currency's minor units; ``tax_rate`` is its tax group's key (19.00 → 19)."""

    gross: Decimal
    discount: Decimal
    net: Decimal
    tax_rate: Decimal


@dataclass(frozen=True)
class TaxGroup:
    """Tax for all lines at one rate: ``tax = taxable × rate / 100``, rounded once."""

    rate: Decimal
    taxable: Decimal
    tax: Decimal


@dataclass(frozen=True)
class InvoiceTotals:
    """Everything an invoice document shows, computed by ``compute_totals``; ``tax_groups`` sorted by rate."""

    currency: str
    lines: tuple[LineTotals, ...]
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    tax_groups: tuple[TaxGroup, ...]
    total: Decimal


def _decimal(value: object, field: str) -> Decimal:
    """Line values must be finite Decimals: parsing (and refusing floats) is the caller's job."""
    if not isinstance(value, Decimal):
        raise MoneyError(f"{field}: expected a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise MoneyError(f"{field}: must be a finite number, got {value}")
    return value


def _max_decimals(value: Decimal, places: int, field: str) -> None:
    if decimals_of(value) > places:
        raise MoneyError(f"{field}: at most {places} decimal places, got {value}")


def _percent(value: Decimal, field: str) -> None:
    if not ZERO <= value <= HUNDRED:
        raise MoneyError(f"{field}: must be between 0 and 100 (a percent), got {value}")


def _rate_key(rate: Decimal) -> Decimal:
    """19, 19.0 and 19.00 are one tax group; shown as "19", never "1.9E+1"."""
    normalized = rate.normalize()
    return normalized + 0 if normalized else ZERO


def _line(line: object, index: int, currency: str, limit: Decimal) -> LineTotals:
    path = f"lines[{index}]"
    if not isinstance(line, LineInput):
        raise MoneyError(f"{path}: expected a LineInput, got {type(line).__name__}")
    if not isinstance(line.description, str) or not line.description.strip():
        raise MoneyError(f"{path}.description: must not be empty")
    if len(line.description.strip()) > MAX_DESCRIPTION:
        raise MoneyError(
            f"{path}.description: at most {MAX_DESCRIPTION} characters, got {len(line.description.strip())}"
        )

    quantity = _decimal(line.quantity, f"{path}.quantity")
    if quantity <= 0:
        raise MoneyError(
            f"{path}.quantity: must be greater than 0 (credits are credit notes, not negative lines)"
        )
    _max_decimals(quantity, 4, f"{path}.quantity")

    price = _decimal(line.unit_price, f"{path}.unit_price")
    if price < 0:
        raise MoneyError(f"{path}.unit_price: must not be negative")
    _max_decimals(price, 6, f"{path}.unit_price")
    if price > limit:
        raise MoneyError(f"{path}.unit_price: {price} is more than the maximum amount of {limit} {currency}")

    percent = _decimal(line.discount_percent, f"{path}.discount_percent")
    _percent(percent, f"{path}.discount_percent")

    fixed = _decimal(line.discount_amount, f"{path}.discount_amount")
    if fixed < 0:
        raise MoneyError(f"{path}.discount_amount: must not be negative")
    if percent and fixed:
        raise MoneyError(f"{path}.discount_amount: give discount_percent or discount_amount, not both")

    rate = _decimal(line.tax_rate, f"{path}.tax_rate")
    _percent(rate, f"{path}.tax_rate")
    _max_decimals(rate, 4, f"{path}.tax_rate")

    with exact_arithmetic(f"{path}.unit_price"):
        exact = quantity * price
        gross = quantize(exact, currency, field=f"{path}.unit_price")
        if exact and not gross:
            raise MoneyError(
                f"{path}.quantity: {quantity} × {price} = {exact} rounds to {gross} {currency}; "
                "a line must be worth at least one minor unit (raise the quantity or the unit price)"
            )
        if gross > limit:
            raise MoneyError(
                f"{path}.unit_price: the line amount {gross} is more than the maximum amount of "
                f"{limit} {currency}"
            )
        if fixed:
            discount = require_minor_units(fixed, currency, field=f"{path}.discount_amount")
            if discount > gross:
                raise MoneyError(
                    f"{path}.discount_amount: {discount} is more than the line's gross amount {gross}"
                )
        else:
            discount = quantize(gross * percent / HUNDRED, currency, field=f"{path}.discount_percent")
        return LineTotals(gross=gross, discount=discount, net=gross - discount, tax_rate=_rate_key(rate))


def compute_totals(
    lines: Sequence[LineInput], currency: str, *, max_amount: Decimal | None = None
) -> InvoiceTotals:
    """Validate the lines and compute an invoice's totals by the rounding rules in the module docstring.

    ``max_amount`` bounds every unit price, line amount and the total (``billing.limits.amount_limit``:
    a configured maximum, never above the ceiling)."""
    code = normalize_currency(currency)
    limit = amount_limit(max_amount)
    if isinstance(lines, (str, bytes)) or not isinstance(lines, Sequence):
        raise MoneyError(f"lines: expected a list of lines, got {type(lines).__name__}")
    if not lines:
        raise MoneyError("lines: an invoice needs at least one line")
    if len(lines) > MAX_LINES:
        raise MoneyError(f"lines: at most {MAX_LINES} lines, got {len(lines)}")
    computed = tuple(_line(line, i, code, limit) for i, line in enumerate(lines))

    with exact_arithmetic("lines"):
        zero = quantize(ZERO, code)
        taxable: dict[Decimal, Decimal] = {}
        for line in computed:
            taxable[line.tax_rate] = taxable.get(line.tax_rate, zero) + line.net
        groups = tuple(
            TaxGroup(rate=rate, taxable=base, tax=quantize(base * rate / HUNDRED, code, field="lines"))
            for rate, base in sorted(taxable.items())
        )
        subtotal = sum((line.net for line in computed), zero)
        tax_total = sum((group.tax for group in groups), zero)
        if subtotal + tax_total > limit:
            raise MoneyError(
                f"lines: the total {subtotal + tax_total} is more than the maximum amount of {limit} {code}"
            )
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
    """What the client still owes: ``max(total − paid, 0)``, never negative (an overpayment is a credit)."""
    with exact_arithmetic("amount_paid"):
        zero = total - total  # 0 at the total's scale: 0.00 for USD, 0 for JPY
        return max(total - paid, zero)


def credit_from_overpayment(total: Decimal, paid: Decimal) -> Decimal:
    """What was paid beyond the total: ``max(paid − total, 0)``; with ``amount_due`` it splits
    ``total − paid`` into exactly one non-negative part."""
    with exact_arithmetic("amount_paid"):
        zero = total - total
        return max(paid - total, zero)


def parse_lines(raw: Sequence[object]) -> list[LineInput]:
    """Lines from mappings or objects with string fields (API bodies, stored terms, workflow payloads),
    with field paths in every error: ``lines[1].unit_price: ...``. Only parses; ``compute_totals``
    validates ranges."""

    def get(line: object, key: str, default: object) -> object:
        if isinstance(line, dict):
            return line.get(key, default)
        return getattr(line, key, default)

    parsed: list[LineInput] = []
    for i, line in enumerate(raw):
        path = f"lines[{i}]"
        description = get(line, "description", "")
        parsed.append(
            LineInput(
                description="" if description is None else str(description),
                quantity=parse_decimal(get(line, "quantity", "1"), field=f"{path}.quantity"),
                unit_price=parse_decimal(get(line, "unit_price", None), field=f"{path}.unit_price"),
                discount_percent=parse_decimal(
                    get(line, "discount_percent", "0"), field=f"{path}.discount_percent"
                ),
                discount_amount=parse_decimal(
                    get(line, "discount_amount", "0"), field=f"{path}.discount_amount"
                ),
                tax_rate=parse_decimal(get(line, "tax_rate", "0"), field=f"{path}.tax_rate"),
            )
        )
    return parsed
