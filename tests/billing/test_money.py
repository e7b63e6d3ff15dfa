"""Currencies, parsing, rounding and the Money type: examples worked out by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.currency import MINOR_UNITS, minor_units, normalize_currency
from billing.errors import MoneyError
from billing.money import (
    Money,
    format_money,
    from_minor,
    parse_decimal,
    quantize,
    require_minor_units,
    to_minor,
)

D = Decimal


def exponent(value: Decimal) -> int:
    result = value.as_tuple().exponent
    assert isinstance(result, int)
    return result


# ------------------------------------------------------------------ currencies


@pytest.mark.parametrize(
    ("code", "units"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("VND", 0),
        ("CLP", 0),
        ("XOF", 0),
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("HUF", 2),
        ("XCG", 2),
        ("ZWG", 2),
        ("SLE", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("IQD", 3),
        ("LYD", 3),
        ("CLF", 4),
        ("UYW", 4),
    ],
)
def test_minor_units_of_known_currencies(code: str, units: int) -> None:
    assert MINOR_UNITS[code] == units
    assert minor_units(code.lower()) == units


@pytest.mark.parametrize(
    "code",
    # metals, special units, testing codes, fund codes, and codes ISO has withdrawn
    [
        "XAU",
        "XAG",
        "XPT",
        "XPD",
        "XDR",
        "XSU",
        "XUA",
        "XBA",
        "XTS",
        "XXX",
        "BOV",
        "CHE",
        "COU",
        "MXV",
        "USN",
        "UYI",
        "ANG",
        "CUC",
        "HRK",
        "SLL",
        "ZWL",
        "VEF",
        "MRO",
        "STD",
    ],
)
def test_excluded_codes_are_unknown(code: str) -> None:
    assert code not in MINOR_UNITS
    with pytest.raises(MoneyError, match=f"currency: unknown ISO 4217 code '{code}'"):
        normalize_currency(code)


def test_currency_table_shape() -> None:
    assert len(MINOR_UNITS) >= 150
    assert all(len(code) == 3 and code.isascii() and code.isupper() for code in MINOR_UNITS)
    assert set(MINOR_UNITS.values()) == {0, 2, 3, 4}


def test_normalize_currency() -> None:
    assert normalize_currency(" eur ") == "EUR"
    assert normalize_currency("jpy") == "JPY"
    with pytest.raises(MoneyError) as error:
        normalize_currency("ABC")
    assert str(error.value) == "currency: unknown ISO 4217 code 'ABC'"
    with pytest.raises(MoneyError, match="^currency: "):
        normalize_currency(840)  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="^currency: "):
        normalize_currency("")


# ------------------------------------------------------------------ parse_decimal


@pytest.mark.parametrize(
    "bad",
    [
        12.5,
        0.1,
        float("nan"),
        float("inf"),
        True,
        False,
        None,
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "sNaN",
        "1e2",
        "1E2",
        "",
        "   ",
        "12,50",
        "1,234.50",
        "1_000",
        "+5",
        ".5",
        "5.",
        "0x10",
        "١٢",
        "12.5.0",
        "--1",
        D("NaN"),
        D("Infinity"),
        D("-Infinity"),
        D("sNaN"),
        [1],
        b"12",
    ],
)
def test_parse_decimal_refuses_what_is_not_plain_money(bad: object) -> None:
    with pytest.raises(MoneyError, match=r"^lines\[3\]\.unit_price: "):
        parse_decimal(bad, field="lines[3].unit_price")


def test_parse_decimal_explains_floats() -> None:
    with pytest.raises(MoneyError) as error:
        parse_decimal(0.1, field="payment.amount")
    assert (
        str(error.value) == 'payment.amount: floats are not accepted for money, send a string such as "12.50"'
    )


def test_parse_decimal_default_field_is_amount() -> None:
    with pytest.raises(MoneyError, match="^amount: "):
        parse_decimal("abc")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", "12.50"),
        (" -3 ", "-3"),
        ("0", "0"),
        ("-0.001", "-0.001"),
        ("007", "7"),
        (7, "7"),
        (-42, "-42"),
        (10**30, "1" + "0" * 30),
        (D("0.001"), "0.001"),
        (D("1E+2"), "1E+2"),
    ],
)
def test_parse_decimal_accepts_plain_strings_ints_and_decimals(value: object, expected: str) -> None:
    result = parse_decimal(value)
    assert isinstance(result, Decimal)
    assert result == D(expected)
    assert str(result) == expected  # scale is kept: "12.50" stays 12.50


# ------------------------------------------------------------------ rounding


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.005", "USD", "0.01"),  # banker's rounding would give 0.00
        ("0.025", "USD", "0.03"),  # banker's rounding would give 0.02
        ("-0.005", "USD", "-0.01"),  # away from zero
        ("0.0049999", "USD", "0.00"),
        ("100.005", "USD", "100.01"),
        ("10", "USD", "10.00"),
        ("2.5", "JPY", "3"),  # banker's rounding would give 2
        ("-2.5", "JPY", "-3"),
        ("1000.4999", "JPY", "1000"),
        ("1.0005", "KWD", "1.001"),
        ("1.0004", "KWD", "1.000"),
        ("1.23455", "CLF", "1.2346"),
        ("7", "KWD", "7.000"),
    ],
)
def test_quantize_is_half_up_at_the_currency_scale(amount: str, currency: str, expected: str) -> None:
    result = quantize(D(amount), currency)
    assert str(result) == expected
    assert exponent(result) == -minor_units(currency)


def test_quantize_refuses_what_cannot_be_represented() -> None:
    with pytest.raises(MoneyError, match="^amount: "):
        quantize(D("1E+200"), "USD")
    with pytest.raises(MoneyError, match="^amount: must be a finite number"):
        quantize(D("NaN"), "USD")
    with pytest.raises(MoneyError, match="floats are not accepted"):
        quantize(0.5, "USD")  # type: ignore[arg-type]


def test_require_minor_units_pads_but_never_rounds() -> None:
    assert str(require_minor_units(D("10"), "USD", field="amount")) == "10.00"
    assert str(require_minor_units(D("1.5"), "KWD", field="amount")) == "1.500"
    assert (
        str(require_minor_units(D("10.0"), "JPY", field="amount")) == "10"
    )  # a trailing zero is not a decimal
    assert str(require_minor_units(D("1E+3"), "USD", field="amount")) == "1000.00"
    with pytest.raises(MoneyError) as error:
        require_minor_units(D("10.5"), "JPY", field="payment.amount")
    assert str(error.value) == "payment.amount: JPY has no minor units, got 10.5"
    with pytest.raises(MoneyError) as error:
        require_minor_units(D("0.001"), "USD", field="payment.amount")
    assert str(error.value) == "payment.amount: USD allows 2 decimal places, got 0.001"
    with pytest.raises(MoneyError, match="KWD allows 3 decimal places"):
        require_minor_units(D("1.0001"), "KWD", field="amount")
    with pytest.raises(MoneyError, match="^amount: must be a finite number"):
        require_minor_units(D("Infinity"), "USD", field="amount")


def test_require_minor_units_sees_digits_beyond_28() -> None:
    # The default decimal context keeps 28 digits; this must not pass as 1.00.
    with pytest.raises(MoneyError, match="USD allows 2 decimal places"):
        require_minor_units(D("1.0000000000000000000000000000001"), "USD", field="amount")


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [
        ("12.34", "USD", 1234),
        ("-0.01", "USD", -1),
        ("0", "USD", 0),
        ("500", "JPY", 500),
        ("1.5", "KWD", 1500),
        ("0.0001", "CLF", 1),
        ("12345678901234567890123456789.12", "EUR", 1234567890123456789012345678912),
    ],
)
def test_to_and_from_minor(amount: str, currency: str, units: int) -> None:
    assert to_minor(D(amount), currency) == units
    back = from_minor(units, currency)
    assert back == D(amount)
    assert exponent(back) == -minor_units(currency)


def test_from_minor_examples_and_errors() -> None:
    assert str(from_minor(1234, "USD")) == "12.34"
    assert str(from_minor(5, "JPY")) == "5"
    assert str(from_minor(-1, "KWD")) == "-0.001"
    with pytest.raises(MoneyError, match="USD allows 2 decimal places"):
        to_minor(D("0.001"), "USD")
    with pytest.raises(MoneyError, match="^units: "):
        from_minor(True, "USD")
    with pytest.raises(MoneyError, match="^units: "):
        from_minor(1.0, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("1234.5", "USD", "1,234.50 USD"),
        ("-5", "usd", "-5.00 USD"),
        ("0", "EUR", "0.00 EUR"),
        ("999.999", "USD", "1,000.00 USD"),
        ("-0.004", "USD", "0.00 USD"),
        ("1234567", "JPY", "1,234,567 JPY"),
        ("0.5", "KWD", "0.500 KWD"),
        ("-1234567.891", "KWD", "-1,234,567.891 KWD"),
        ("1.23455", "CLF", "1.2346 CLF"),
        ("12345678901234567890123456789.99", "USD", "12,345,678,901,234,567,890,123,456,789.99 USD"),
    ],
)
def test_format_money(amount: str, currency: str, text: str) -> None:
    assert format_money(D(amount), currency) == text


# ------------------------------------------------------------------ Money


def test_money_construction() -> None:
    ten = Money.of("10", " usd ")
    assert ten.currency == "USD"
    assert str(ten.amount) == "10.00"
    assert Money(D("10"), "USD") == ten
    assert Money.of(7, "JPY").amount == D(7)
    assert str(Money.zero("KWD").amount) == "0.000"
    assert Money.zero("EUR").is_zero() and not ten.is_zero()
    assert hash(Money(D("10.0"), "USD")) == hash(ten)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Money(D("1.001"), "USD"), "^amount: USD allows 2 decimal places, got 1.001$"),
        (lambda: Money(D("0.5"), "JPY"), "^amount: JPY has no minor units, got 0.5$"),
        (lambda: Money(D("1"), "ABC"), "^currency: unknown ISO 4217 code 'ABC'$"),
        (lambda: Money(10, "USD"), "^amount: expected a Decimal"),
        (lambda: Money(D("NaN"), "USD"), "^amount: must be a finite number"),
        (lambda: Money.of(12.5, "USD"), "floats are not accepted for money"),
        (lambda: Money.of("1e3", "USD"), "not a plain decimal number"),
        (
            lambda: Money.of("0.123", "EUR", field="payment.amount"),
            "^payment.amount: EUR allows 2 decimal places",
        ),
    ],
)
def test_money_refuses_invalid_values(factory: object, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        factory()  # type: ignore[operator]


def test_money_arithmetic_and_ordering() -> None:
    a, b = Money.of("10", "USD"), Money.of("2.55", "USD")
    assert a + b == Money.of("12.55", "USD")
    assert a - b == Money.of("7.45", "USD")
    assert b - a == Money.of("-7.45", "USD")
    assert -a == Money.of("-10", "USD")
    assert str(-Money.zero("USD")) == "0.00 USD"
    assert b < a and b <= a and a > b and a >= b and a <= Money.of("10.00", "USD")
    assert not a < Money.of("10", "USD")
    assert sorted([a, b, Money.zero("USD")]) == [Money.zero("USD"), b, a]
    assert sum([a, b, b], Money.zero("USD")) == Money.of("15.10", "USD")
    assert str(Money.of("-1234.5", "EUR")) == "-1,234.50 EUR"


def test_money_refuses_mixed_currencies() -> None:
    usd, eur = Money.of("1", "USD"), Money.of("1", "EUR")
    with pytest.raises(MoneyError) as error:
        _ = usd + eur
    assert str(error.value) == "cannot add USD and EUR"
    with pytest.raises(MoneyError, match="^cannot subtract EUR and USD$"):
        _ = eur - usd
    for compare in (lambda: usd < eur, lambda: usd <= eur, lambda: usd > eur, lambda: usd >= eur):
        with pytest.raises(MoneyError, match="^cannot compare USD and EUR$"):
            compare()
    assert usd != eur  # equality is just False, so Money can live in sets


def test_money_with_other_types_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Money.of("1", "USD") + D(1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Money.of("1", "USD") < 1  # type: ignore[operator]


def test_money_is_immutable() -> None:
    money = Money.of("1", "USD")
    with pytest.raises(AttributeError):
        money.amount = D(2)  # type: ignore[misc]
