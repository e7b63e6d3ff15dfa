"""Money as ``Decimal`` at a currency's minor units; never a float.

Rounding is explicit and the same everywhere: ``quantize`` rounds ROUND_HALF_UP to the currency's minor
unit. That is commercial rounding: an exact half goes away from zero (0.005 USD → 0.01, -0.005 USD →
-0.01, 2.5 JPY → 3), not banker's rounding. It is applied only where ``billing.totals`` documents it.
Amounts someone sends us (payments, refunds, discount amounts, expenses) are never rounded:
``require_minor_units`` refuses them if they carry more decimals than the currency has. A unit price is
not an amount: it may carry up to 6 decimals (EN 16931's item net price), and the line amount it makes
is rounded by ``billing.totals``.

Arithmetic runs in ``exact_arithmetic()``: Python's default decimal context silently rounds every
result to 28 significant digits, which would be a second, undocumented rounding. Here a result that
cannot be computed exactly raises ``MoneyError`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

from billing.currency import MINOR_UNITS, normalize_currency
from billing.errors import MoneyError

# ASCII digits only: "1e2", "1_000", "١٢" (Arabic-Indic digits) and "12,50" are all refused.
_PLAIN = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# Significant digits: far beyond any real invoice, small enough that absurd input fails fast.
_PRECISION = 100
_EXACT = Context(
    prec=_PRECISION, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
_ROUNDING = Context(
    prec=_PRECISION, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow]
)
_FLOAT_MESSAGE = 'floats are not accepted for money, send a string such as "12.50"'


@contextmanager
def exact_arithmetic(field: str = "amount") -> Iterator[None]:
    """Decimal arithmetic that raises ``MoneyError`` instead of silently rounding a result."""
    try:
        with localcontext(_EXACT):
            yield
    except DecimalException:
        raise MoneyError(f"{field}: the number is too large to compute exactly") from None


def parse_decimal(value: object, *, field: str = "amount") -> Decimal:
    """A finite Decimal from a plain decimal string ("12.50", "-3"), an int or a Decimal.

    Floats are refused because they have already lost precision (0.1 + 0.2 != 0.3); exponent notation
    and NaN/Infinity are refused because no invoice needs them and they hide mistakes.
    """
    if isinstance(value, bool) or value is None:
        raise MoneyError(f'{field}: expected a decimal number as a string such as "12.50", got {value!r}')
    if isinstance(value, float):
        raise MoneyError(f"{field}: {_FLOAT_MESSAGE}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"{field}: must be a finite number, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise MoneyError(f'{field}: must not be empty, send a number such as "12.50"')
        if not _PLAIN.fullmatch(text):
            raise MoneyError(f'{field}: {value!r} is not a plain decimal number such as "12.50"')
        return Decimal(text)
    raise MoneyError(
        f'{field}: expected a decimal number as a string such as "12.50", got {type(value).__name__}'
    )


def _finite(value: object, field: str) -> Decimal:
    """A finite Decimal (ints are exact, so they are accepted too) or a MoneyError naming the field."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"{field}: must be a finite number, got {value}")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        raise MoneyError(f"{field}: {_FLOAT_MESSAGE}")
    raise MoneyError(f"{field}: expected a Decimal, got {type(value).__name__}")


def _unit(code: str) -> Decimal:
    """The smallest amount of a (normalized) currency: Decimal('0.01') for USD, Decimal('1') for JPY."""
    return Decimal((0, (1,), -MINOR_UNITS[code]))


def decimals_of(amount: Decimal) -> int:
    """Decimal places an amount really uses, ignoring trailing zeros (10.50 → 1, 1E+2 → 0).

    Computed from the digits rather than ``normalize()``, which rounds to the context's 28 digits and
    would let 1.0000000000000000000000000000001 pass as a whole number.
    """
    _, digits, exponent = _finite(amount, "amount").as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    if exponent >= 0 or not any(digits):
        return 0
    trailing_zeros = 0
    for digit in reversed(digits):
        if digit != 0:
            break
        trailing_zeros += 1
    return max(-exponent - trailing_zeros, 0)


def quantize(amount: Decimal, currency: str, *, field: str = "amount") -> Decimal:
    """Round half-up (away from zero on .5) to exactly the currency's minor units: 0.005 USD → 0.01,
    2.5 JPY → 3, 1.0005 KWD → 1.001; the result always has the currency's exponent (10 USD → 10.00)."""
    code = normalize_currency(currency)
    value = _finite(amount, field)
    try:
        return value.quantize(_unit(code), rounding=ROUND_HALF_UP, context=_ROUNDING)
    except DecimalException:
        raise MoneyError(f"{field}: the number is too large to represent in {code}") from None


def require_minor_units(amount: Decimal, currency: str, *, field: str) -> Decimal:
    """The amount exactly, at the currency's scale (10 USD → 10.00).

    Extra decimals are refused, not rounded: rounding money someone else sent us would change it.
    """
    code = normalize_currency(currency)
    value = _finite(amount, field)
    units = MINOR_UNITS[code]
    if decimals_of(value) > units:
        if units == 0:
            raise MoneyError(f"{field}: {code} has no minor units, got {value}")
        raise MoneyError(f"{field}: {code} allows {units} decimal places, got {value}")
    return quantize(value, code, field=field)


def to_minor(amount: Decimal, currency: str, *, field: str = "amount") -> int:
    """Integer minor units (12.34 USD → 1234, 500 JPY → 500); the amount must already fit them."""
    exact = require_minor_units(amount, currency, field=field)
    sign, digits, _ = exact.as_tuple()  # the exponent is exactly -minor_units after quantizing
    units = int("".join(str(digit) for digit in digits))
    return -units if sign else units


def from_minor(units: int, currency: str) -> Decimal:
    """The amount for integer minor units (1234 USD → Decimal('12.34')), exact at the currency's scale."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise MoneyError(f"units: expected a whole number of minor units, got {units!r}")
    code = normalize_currency(currency)
    return Decimal(f"{units}E-{MINOR_UNITS[code]}")  # string construction is exact, whatever the context


def format_money(amount: Decimal, currency: str) -> str:
    """'1,234.50 USD': thousands separators, exactly the minor units, a leading minus for negatives.

    Meant for documents and e-mails, so it is locale-independent; an amount with more decimals than the
    currency has is rounded half-up for display.
    """
    code = normalize_currency(currency)
    value = quantize(amount, code)
    sign = "-" if value < 0 else ""  # -0.004 rounds to -0.00, which prints as 0.00
    return f"{sign}{value.copy_abs():,.{MINOR_UNITS[code]}f} {code}"


@dataclass(frozen=True)
class Money:
    """An amount in one currency, exactly at its minor units.

    Arithmetic and ordering refuse to mix currencies (adding USD to EUR without a rate is always a
    bug); ``==`` between currencies is simply False so Money can live in sets and dicts.
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        code = normalize_currency(self.currency)
        if not isinstance(self.amount, Decimal):
            kind = type(self.amount).__name__
            raise MoneyError(f"amount: expected a Decimal (use Money.of for strings and ints), got {kind}")
        object.__setattr__(self, "currency", code)
        object.__setattr__(self, "amount", require_minor_units(self.amount, code, field="amount"))

    @classmethod
    def of(cls, value: object, currency: str, *, field: str = "amount") -> Money:
        """Money from user input ("12.50", 12, Decimal): parsed strictly, never rounded."""
        code = normalize_currency(currency)
        return cls(require_minor_units(parse_decimal(value, field=field), code, field=field), code)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def is_zero(self) -> bool:
        return self.amount == 0

    def _same_currency(self, other: Money, verb: str) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot {verb} {self.currency} and {other.currency}")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        with exact_arithmetic():
            return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        with exact_arithmetic():
            return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        with exact_arithmetic():
            return Money(-self.amount, self.currency)  # unary minus under a context keeps 0 unsigned

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "compare")
        return self.amount >= other.amount

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)
