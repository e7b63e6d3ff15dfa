"""Invoice totals: the documented rounding rules on examples worked out by hand, and validation paths."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.errors import MoneyError
from billing.totals import (
    InvoiceTotals,
    LineInput,
    LineTotals,
    TaxGroup,
    amount_due,
    compute_totals,
    credit_from_overpayment,
    parse_lines,
)

D = Decimal


def line(price: str, qty: str = "1", description: str = "Consulting", **kw: str) -> LineInput:
    return LineInput(
        description=description, quantity=D(qty), unit_price=D(price), **{k: D(v) for k, v in kw.items()}
    )


def test_usd_worked_example() -> None:
    totals = compute_totals(
        [
            line("33.335", "3", tax_rate="19"),  # 100.005 → 100.01 (half-up; banker's would give 100.00)
            line("99.99", discount_percent="10", tax_rate="19"),  # discount 9.999 → 10.00, net 89.99
            line("50.00", tax_rate="7"),
        ],
        " usd ",
    )
    assert totals == InvoiceTotals(
        currency="USD",
        lines=(
            LineTotals(gross=D("100.01"), discount=D("0.00"), net=D("100.01"), tax_rate=D("19")),
            LineTotals(gross=D("99.99"), discount=D("10.00"), net=D("89.99"), tax_rate=D("19")),
            LineTotals(gross=D("50.00"), discount=D("0.00"), net=D("50.00"), tax_rate=D("7")),
        ),
        subtotal=D("240.00"),
        discount_total=D("10.00"),
        tax_total=D("39.60"),  # 19 % of 190.00 = 36.10; 7 % of 50.00 = 3.50
        tax_groups=(TaxGroup(D("7"), D("50.00"), D("3.50")), TaxGroup(D("19"), D("190.00"), D("36.10"))),
        total=D("279.60"),
    )
    # Exact scale, not just equal values: 240.00, not 240.
    assert [str(x) for x in (totals.subtotal, totals.tax_total, totals.total, totals.lines[0].discount)] == [
        "240.00",
        "39.60",
        "279.60",
        "0.00",
    ]


def test_tax_is_rounded_once_per_rate_group() -> None:
    # Three lines of 0.05 at 10 %: per line 0.005 → 0.01 each (0.03); per group 0.15 × 10 % = 0.015 → 0.02.
    totals = compute_totals([line("0.05", tax_rate="10")] * 3, "USD")
    assert totals.tax_groups == (TaxGroup(D("10"), D("0.15"), D("0.02")),)
    assert (totals.tax_total, totals.total) == (D("0.02"), D("0.17"))


def test_equal_rates_written_differently_are_one_group() -> None:
    totals = compute_totals(
        [line("10", tax_rate="19"), line("10", tax_rate="19.00"), line("5", tax_rate="19.0")], "EUR"
    )
    assert totals.tax_groups == (TaxGroup(D("19"), D("25.00"), D("4.75")),)
    assert str(totals.tax_groups[0].rate) == "19"


def test_fractional_rates_and_zero_rate_group() -> None:
    totals = compute_totals(
        [line("10.00", tax_rate="8.875"), line("3.00"), line("0.10", tax_rate="5.5")], "USD"
    )
    # 8.875 % of 10.00 = 0.8875 → 0.89; 5.5 % of 0.10 = 0.0055 → 0.01; 0 % of 3.00 = 0.00
    assert totals.tax_groups == (
        TaxGroup(D("0"), D("3.00"), D("0.00")),
        TaxGroup(D("5.5"), D("0.10"), D("0.01")),
        TaxGroup(D("8.875"), D("10.00"), D("0.89")),
    )
    assert (totals.subtotal, totals.tax_total, totals.total) == (D("13.10"), D("0.90"), D("14.00"))


def test_jpy_has_no_minor_units() -> None:
    totals = compute_totals([line("333.5", "3", tax_rate="10")], "JPY")
    # 3 × 333.5 = 1000.5 → 1001 (banker's would give 1000); 10 % of 1001 = 100.1 → 100
    assert [str(x) for x in (totals.subtotal, totals.tax_total, totals.total)] == ["1001", "100", "1101"]
    half = compute_totals([line("0.5", tax_rate="10")], "JPY")
    assert (half.lines[0].gross, half.tax_total, half.total) == (D("1"), D("0"), D("1"))  # 0.1 → 0
    discounted = compute_totals([line("1000", discount_percent="12.5", tax_rate="8")], "JPY")
    # discount 125; net 875; tax 70
    assert (discounted.discount_total, discounted.subtotal, discounted.tax_total, discounted.total) == (
        D("125"),
        D("875"),
        D("70"),
        D("945"),
    )
    with pytest.raises(MoneyError, match=r"^lines\[0\]\.discount_amount: JPY has no minor units, got 0.5$"):
        compute_totals([line("1000", discount_amount="0.5")], "JPY")


def test_kwd_has_three_decimals() -> None:
    totals = compute_totals([line("1.2345", "2", tax_rate="5"), line("0.0005")], "KWD")
    # 2 × 1.2345 = 2.469 exactly; 0.0005 → 0.001 (half-up); 5 % of 2.469 = 0.12345 → 0.123
    assert [x.net for x in totals.lines] == [D("2.469"), D("0.001")]
    assert [str(x) for x in (totals.subtotal, totals.tax_total, totals.total)] == ["2.470", "0.123", "2.593"]


def test_fixed_discount_amount() -> None:
    totals = compute_totals([line("40", "2.5", discount_amount="15.5", tax_rate="20")], "GBP")
    # gross 100.00, discount 15.50, net 84.50, tax 16.90
    assert totals.lines == (LineTotals(D("100.00"), D("15.50"), D("84.50"), D("20")),)
    assert str(totals.lines[0].discount) == "15.50"
    assert (totals.tax_total, totals.total) == (D("16.90"), D("101.40"))
    whole = compute_totals([line("9.99", discount_amount="9.99")], "USD")
    assert whole.total == D("0.00")


def test_full_percent_discount_and_free_lines() -> None:
    totals = compute_totals([line("123.45", discount_percent="100", tax_rate="19"), line("0")], "EUR")
    assert (totals.discount_total, totals.subtotal, totals.tax_total, totals.total) == (
        D("123.45"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )


def test_products_beyond_28_digits_are_exact() -> None:
    # 1234.1234 × 123456789.123457 = 152360912346.1237725938 (22 digits, exact)
    totals = compute_totals([line("123456789.123457", "1234.1234")], "USD")
    assert totals.total == D("152360912346.12")
    big = compute_totals([line("99999999.999999", "9999.9999")], "USD")
    assert big.total == D("999999989999.99")  # 999999989999.9900000001 → .99, just under the ceiling


def test_amounts_above_the_maximum_are_refused() -> None:
    with pytest.raises(MoneyError, match=r"^lines\[0\]\.unit_price: 1E\+30 is more than the maximum amount"):
        compute_totals([line("1E+30", "0.0001")], "USD")
    with pytest.raises(
        MoneyError, match=r"^lines\[0\]\.unit_price: the line amount 1000000000000.00 is more"
    ):
        compute_totals([line("1000000000", "1000")], "USD")
    with pytest.raises(MoneyError, match=r"^lines: the total 1000000000000.00 is more than the maximum"):
        compute_totals([line("500000000000")] * 2, "USD")
    # A configured maximum is lower; it never lifts the ceiling.
    with pytest.raises(MoneyError, match=r"more than the maximum amount of 1000 EUR"):
        compute_totals([line("600"), line("400.01")], "EUR", max_amount=D("1000"))
    assert compute_totals([line("600"), line("400")], "EUR", max_amount=D("1000")).total == D("1000.00")
    with pytest.raises(MoneyError, match=r"maximum amount of 999999999999.99 USD"):
        compute_totals([line("1000000000000")], "USD", max_amount=D("1E+20"))


def test_a_line_that_rounds_to_nothing_is_refused() -> None:
    with pytest.raises(
        MoneyError, match=r"^lines\[0\]\.quantity: 0.0001 × 10.00 = 0.001000 rounds to 0.00 USD"
    ):
        compute_totals([line("10.00", "0.0001")], "USD")
    with pytest.raises(MoneyError, match=r"rounds to 0 JPY"):
        compute_totals([line("0.4")], "JPY")
    # Free lines (a price of 0) and full discounts stay allowed: they are meant, not rounded away.
    assert compute_totals([line("0"), line("0.005")], "USD").total == D("0.01")


def test_unit_prices_may_be_finer_than_the_currency_amounts_may_not() -> None:
    # EN 16931: an item price may carry more decimals than the currency; the line amount is rounded.
    eur = compute_totals([line("12.345", "3")], "EUR")
    assert (eur.lines[0].gross, eur.total) == (D("37.04"), D("37.04"))  # 37.035 → 37.04 half-up
    jpy = compute_totals([line("10.5", "1")], "JPY")
    assert jpy.total == D("11")
    with pytest.raises(MoneyError, match=r"^lines\[0\]\.unit_price: at most 6 decimal places"):
        compute_totals([line("12.3456789")], "EUR")
    with pytest.raises(MoneyError, match=r"^lines\[0\]\.discount_amount: EUR allows 2 decimal places"):
        compute_totals([line("12.345", "3", discount_amount="1.005")], "EUR")


def test_line_limits_are_inclusive() -> None:
    assert len(compute_totals([line("1")] * 500, "USD").lines) == 500
    assert compute_totals([line("1", description="x" * 1000)], "USD").total == D("1.00")
    assert compute_totals([line("0.000001", "10000", tax_rate="99.9999")], "USD").total == D("0.02")
    assert compute_totals([line("1", "1.00010")], "USD").total == D(
        "1.00"
    )  # trailing zero is not a 5th decimal


def test_line_errors_name_the_line() -> None:
    with pytest.raises(MoneyError) as error:
        compute_totals([line("1"), line("1"), line("1", qty="0")], "USD")
    assert str(error.value).startswith("lines[2].quantity: must be greater than 0")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], r"^lines: an invoice needs at least one line$"),
        ([line("1")] * 501, r"^lines: at most 500 lines, got 501$"),
        ([line("10", qty="-1")], r"^lines\[0\]\.quantity: must be greater than 0"),
        ([line("10", qty="0")], r"^lines\[0\]\.quantity: must be greater than 0"),
        ([line("10", qty="1.00001")], r"^lines\[0\]\.quantity: at most 4 decimal places, got 1.00001$"),
        ([line("-0.01")], r"^lines\[0\]\.unit_price: must not be negative$"),
        ([line("0.0000001")], r"^lines\[0\]\.unit_price: at most 6 decimal places, got 1E-7$"),
        (
            [line("10", discount_percent="100.01")],
            r"^lines\[0\]\.discount_percent: must be between 0 and 100",
        ),
        ([line("10", discount_percent="-1")], r"^lines\[0\]\.discount_percent: must be between 0 and 100"),
        ([line("10", discount_amount="-1")], r"^lines\[0\]\.discount_amount: must not be negative$"),
        (
            [line("10", discount_amount="10.01")],
            r"^lines\[0\]\.discount_amount: 10.01 is more than the line's gross",
        ),
        ([line("10", discount_amount="0.001")], r"^lines\[0\]\.discount_amount: USD allows 2 decimal places"),
        (
            [line("10", discount_amount="1", discount_percent="5")],
            r"^lines\[0\]\.discount_amount: .*not both$",
        ),
        ([line("10", tax_rate="100.5")], r"^lines\[0\]\.tax_rate: must be between 0 and 100"),
        ([line("10", tax_rate="-7")], r"^lines\[0\]\.tax_rate: must be between 0 and 100"),
        ([line("10", tax_rate="7.12345")], r"^lines\[0\]\.tax_rate: at most 4 decimal places"),
        ([line("1"), line("1", description="  ")], r"^lines\[1\]\.description: must not be empty$"),
        ([line("1", description="x" * 1001)], r"^lines\[0\]\.description: at most 1000 characters"),
        ([LineInput("a", 1, D("1"))], r"^lines\[0\]\.quantity: expected a Decimal, got int$"),  # type: ignore[arg-type]
        ([LineInput("a", D(1), 1.5)], r"^lines\[0\]\.unit_price: expected a Decimal, got float$"),  # type: ignore[arg-type]
        ([LineInput("a", D("NaN"), D(1))], r"^lines\[0\]\.quantity: must be a finite number"),
        ([LineInput("a", D(1), D("Infinity"))], r"^lines\[0\]\.unit_price: must be a finite number"),
        ([LineInput("a", D(1), D(1), tax_rate=D("sNaN"))], r"^lines\[0\]\.tax_rate: must be a finite number"),
        ([{"description": "a"}], r"^lines\[0\]: expected a LineInput, got dict$"),
    ],
)
def test_invalid_lines_are_refused_with_the_field(lines: list[LineInput], message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        compute_totals(lines, "USD")


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(MoneyError, match="^currency: unknown ISO 4217 code 'EURO'$"):
        compute_totals([line("1")], "euro")


def test_parse_lines_names_fields_and_refuses_floats() -> None:
    [parsed] = parse_lines(
        [{"description": "Support", "quantity": "2", "unit_price": "12.50", "tax_rate": "19"}]
    )
    assert parsed == LineInput("Support", D(2), D("12.50"), tax_rate=D(19))
    with pytest.raises(MoneyError, match=r"^lines\[1\]\.unit_price: floats are not accepted"):
        parse_lines([{"description": "a", "unit_price": "1"}, {"description": "b", "unit_price": 1.5}])
    with pytest.raises(MoneyError, match=r"^lines\[0\]\.description: must not be empty$"):
        compute_totals(parse_lines([{"description": None, "unit_price": "1"}]), "USD")


@pytest.mark.parametrize(
    ("total", "paid", "due", "credit"),
    [
        ("100.00", "30.00", "70.00", "0.00"),
        ("100.00", "100.00", "0.00", "0.00"),
        ("100.00", "130.00", "0.00", "30.00"),
        ("100.00", "0.00", "100.00", "0.00"),
        ("1001", "1500", "0", "499"),
    ],
)
def test_amount_due_and_credit(total: str, paid: str, due: str, credit: str) -> None:
    assert str(amount_due(D(total), D(paid))) == due
    assert str(credit_from_overpayment(D(total), D(paid))) == credit
