"""Money as ``Decimal`` in a currency's minor units; never a float.

Rounding is explicit and everywhere the same: ROUND_HALF_UP to the currency's minor unit (commercial
rounding: .5 goes away from zero), applied only where ``billing.totals`` documents it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from billing.currency import minor_units, normalize_currency
from billing.errors import MoneyError

_PLAIN = re.compile(r"^-?\d+(\.\d+)?$")


def parse_decimal(value: object, *, field: str = "amount") -> Decimal:
    """A finite Decimal from a string like "12.50", an int or a Decimal; floats are refused because
    they have already lost precision (0.1 + 0.2 != 0.3)."""
    if isinstance(value, bool) or value is None:
        raise MoneyError(f"{field}: expected a decimal number as a string such as \"12.50\", got {value!r}")
    if isinstance(value, float):
        raise MoneyError(f"{field}: floats are not accepted for money, send a string such as \"12.50\"")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"{field}: must be a finite number, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _PLAIN.match(text):
            raise MoneyError(f"{field}: {value!r} is not a plain decimal number such as \"12.50\"")
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the regex already rules this out
            raise MoneyError(f"{field}: {value!r} is not a number") from None
    raise MoneyError(f"{field}: expected a decimal number as a string, got {type(value).__name__}")


def _exponent(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor units: 0.005 USD → 0.01, 2.5 JPY → 3."""
    return amount.quantize(_exponent(currency), rounding=ROUND_HALF_UP)


def decimals_of(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0)


def require_minor_units(amount: Decimal, currency: str, *, field: str) -> Decimal:
    """The amount exactly, at the currency's scale (10 USD → 10.00); refuses extra decimals rather than
    rounding money someone else sent us."""
    units = minor_units(currency)
    if decimals_of(amount) > units:
        if units == 0:
            raise MoneyError(f"{field}: {normalize_currency(currency)} has no minor units, got {amount}")
        raise MoneyError(
            f"{field}: {normalize_currency(currency)} allows {units} decimal places, got {amount}"
        )
    return amount.quantize(_exponent(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """Integer minor units (cents); the amount must already fit them."""
    exact = require_minor_units(amount, currency, field="amount")
    return int(exact.scaleb(minor_units(currency)))


def from_minor(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-minor_units(currency)).quantize(_exponent(currency))


def format_money(amount: Decimal, currency: str) -> str:
    """'1,234.50 USD' at exactly the currency's minor units (rounded half-up if it has more)."""
    code = normalize_currency(currency)
    value = quantize(amount, code)
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value):,.{minor_units(code)}f} {code}"


@dataclass(frozen=True, order=False)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        code = normalize_currency(self.currency)
        if not isinstance(self.amount, Decimal):
            raise MoneyError(f"amount: expected Decimal, got {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise MoneyError(f"amount: must be finite, got {self.amount}")
        object.__setattr__(self, "currency", code)
        object.__setattr__(self, "amount", require_minor_units(self.amount, code, field="amount"))

    @classmethod
    def of(cls, value: object, currency: str) -> Money:
        return cls(parse_decimal(value), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def is_zero(self) -> bool:
        return self.amount == 0

    def _same(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise MoneyError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot {op} {self.currency} and {other.currency}")
        return other

    def __add__(self, other: object) -> Money:
        return Money(self.amount + self._same(other, "add").amount, self.currency)

    def __sub__(self, other: object) -> Money:
        return Money(self.amount - self._same(other, "subtract").amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: object) -> bool:
        return self.amount < self._same(other, "compare").amount

    def __le__(self, other: object) -> bool:
        return self.amount <= self._same(other, "compare").amount

    def __gt__(self, other: object) -> bool:
        return self.amount > self._same(other, "compare").amount

    def __ge__(self, other: object) -> bool:
        return self.amount >= self._same(other, "compare").amount

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)
