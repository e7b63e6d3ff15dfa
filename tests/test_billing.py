"""Billing rules: worked examples checked by hand, and hypothesis properties of the arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.currency import MINOR_UNITS, minor_units, normalize_currency
from billing.errors import MoneyError
from billing.money import Money, format_money, from_minor, parse_decimal, quantize, require_minor_units, to_minor
from billing.reminders import parse_offsets, reminder_schedule
from billing.status import InvoiceStatus, settle_status
from billing.terms import due_date, parse_terms
from billing.totals import LineInput, amount_due, compute_totals, credit_from_overpayment

D = Decimal


# ------------------------------------------------------------------ parsing and currencies


@pytest.mark.parametrize("bad", [12.5, float("nan"), True, None, "NaN", "Infinity", "1e3", "", " ", "12,50", "0x10", [1]])
def test_parse_decimal_refuses_what_is_not_plain_money(bad: object) -> None:
    with pytest.raises(MoneyError, match="unit_price"):
        parse_decimal(bad, field="unit_price")


def test_parse_decimal_says_why_floats_are_refused() -> None:
    with pytest.raises(MoneyError, match='floats are not accepted for money, send a string such as "12.50"'):
        parse_decimal(0.1, field="amount")


@pytest.mark.parametrize(("value", "expected"), [("12.50", D("12.50")), (" -3 ", D("-3")), (7, D(7)), (D("0.001"), D("0.001"))])
def test_parse_decimal_accepts_strings_ints_decimals(value: object, expected: Decimal) -> None:
    assert parse_decimal(value) == expected


def test_currency_minor_units() -> None:
    assert (minor_units("JPY"), minor_units("usd"), minor_units("KWD"), minor_units("CLF")) == (0, 2, 3, 4)
    assert normalize_currency(" eur ") == "EUR"
    with pytest.raises(MoneyError, match="unknown ISO 4217 code 'ABC'"):
        normalize_currency("ABC")
    assert "XAU" not in MINOR_UNITS and "XXX" not in MINOR_UNITS


def test_require_minor_units_refuses_extra_decimals() -> None:
    assert str(require_minor_units(D("10"), "USD", field="amount")) == "10.00"
    assert str(require_minor_units(D("1.5"), "KWD", field="amount")) == "1.500"
    with pytest.raises(MoneyError, match="JPY has no minor units, got 10.5"):
        require_minor_units(D("10.5"), "JPY", field="amount")
    with pytest.raises(MoneyError, match="USD allows 2 decimal places"):
        require_minor_units(D("0.001"), "USD", field="amount")


def test_rounding_is_half_up() -> None:
    assert quantize(D("0.005"), "USD") == D("0.01")
    assert quantize(D("-0.005"), "USD") == D("-0.01")
    assert quantize(D("2.5"), "JPY") == D("3")
    assert quantize(D("1.0005"), "KWD") == D("1.001")
    assert quantize(D("0.0049"), "USD") == D("0.00")


def test_format_money() -> None:
    assert format_money(D("1234.5"), "USD") == "1,234.50 USD"
    assert format_money(D("-5"), "usd") == "-5.00 USD"
    assert format_money(D("1234567"), "JPY") == "1,234,567 JPY"
    assert format_money(D("0.5"), "KWD") == "0.500 KWD"


def test_money_refuses_mixed_currencies_and_extra_decimals() -> None:
    assert Money.of("10", "USD") + Money.of("2.5", "USD") == Money(D("12.50"), "USD")
    with pytest.raises(MoneyError, match="cannot add USD and EUR"):
        Money.of("1", "USD") + Money.of("1", "EUR")
    with pytest.raises(MoneyError, match="cannot compare"):
        _ = Money.of("1", "USD") < Money.of("1", "JPY")
    with pytest.raises(MoneyError):
        Money(D("1.001"), "USD")
    assert str(-Money.of("3", "EUR")) == "-3.00 EUR"


# ------------------------------------------------------------------ totals


def line(price: str, qty: str = "1", **kw: str) -> LineInput:
    return LineInput(description="work", quantity=D(qty), unit_price=D(price), **{k: D(v) for k, v in kw.items()})


def test_totals_worked_example_usd() -> None:
    totals = compute_totals(
        [line("33.335", "3", tax_rate="19"), line("99.99", discount_percent="10", tax_rate="19"), line("50.00", tax_rate="7")],
        "USD",
    )
    # 3 × 33.335 = 100.005 → 100.01; 99.99 − 10% (9.999 → 10.00) = 89.99; 50.00
    assert [x.net for x in totals.lines] == [D("100.01"), D("89.99"), D("50.00")]
    assert totals.subtotal == D("240.00")
    # 19% of 190.00 = 36.10; 7% of 50.00 = 3.50
    assert [(g.rate, g.taxable, g.tax) for g in totals.tax_groups] == [(D(7), D("50.00"), D("3.50")), (D(19), D("190.00"), D("36.10"))]
    assert totals.tax_total == D("39.60") and totals.total == D("279.60")
    assert totals.discount_total == D("10.00")


def test_tax_per_group_does_not_drift() -> None:
    # 3 lines of 0.05 at 10%: per-line rounding would give 3 × 0.01 = 0.03; per group 0.15 × 10% = 0.015 → 0.02.
    totals = compute_totals([line("0.05", tax_rate="10")] * 3, "USD")
    assert totals.tax_total == D("0.02")


def test_totals_jpy_and_kwd() -> None:
    jpy = compute_totals([line("333.5", "3", tax_rate="10")], "JPY")
    assert (jpy.subtotal, jpy.tax_total, jpy.total) == (D("1001"), D("100"), D("1101"))  # 1000.5 → 1001; 100.1 → 100
    kwd = compute_totals([line("1.2345", "2", tax_rate="5")], "KWD")
    assert (kwd.subtotal, kwd.tax_total, kwd.total) == (D("2.469"), D("0.123"), D("2.592"))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "at least one line"),
        ([line("10", qty="-1")], r"lines\[0\]\.quantity: must be greater than 0"),
        ([line("10", qty="0")], r"lines\[0\]\.quantity"),
        ([line("-1")], r"lines\[0\]\.unit_price: must not be negative"),
        ([line("10", discount_percent="101")], "discount_percent"),
        ([line("10", discount_amount="11")], "more than the line"),
        ([line("10", discount_amount="1", discount_percent="5")], "not both"),
        ([line("10", tax_rate="120")], "tax_rate"),
        ([line("1"), LineInput(description=" ", quantity=D(1), unit_price=D(1))], r"lines\[1\]\.description"),
        ([line("10", discount_amount="0.001")], "discount_amount"),
    ],
)
def test_invalid_lines_are_refused_with_the_field(lines: list[LineInput], message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        compute_totals(lines, "USD")


def test_amount_due_and_credit() -> None:
    assert amount_due(D("100.00"), D("30.00")) == D("70.00")
    assert amount_due(D("100.00"), D("130.00")) == D("0.00")
    assert credit_from_overpayment(D("100.00"), D("130.00")) == D("30.00")
    assert str(amount_due(D("100"), D("100"))) == "0"


currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD", "CLF"])
quantities = st.decimals(min_value=D("0.0001"), max_value=D("10000"), places=4, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=D("0"), max_value=D("100000"), places=6, allow_nan=False, allow_infinity=False)
rates = st.sampled_from([D(0), D("5.5"), D(7), D(19), D(20), D("8.875")])
percents = st.decimals(min_value=D(0), max_value=D(100), places=2, allow_nan=False, allow_infinity=False)
lines_strategy = st.lists(
    st.builds(lambda q, p, r, pct: LineInput("item", q, p, discount_percent=pct, tax_rate=r), quantities, prices, rates, percents),
    min_size=1,
    max_size=12,
)


def exponent(value: Decimal) -> int:
    result = value.as_tuple().exponent
    assert isinstance(result, int)
    return result


@given(lines=lines_strategy, currency=currencies)
def test_totals_invariants(lines: list[LineInput], currency: str) -> None:
    totals = compute_totals(lines, currency)
    scale = -minor_units(currency)
    for amount in (totals.subtotal, totals.tax_total, totals.total, totals.discount_total, *(x.net for x in totals.lines)):
        assert exponent(amount) == scale
    assert totals.subtotal == sum((x.net for x in totals.lines), D(0))
    assert totals.tax_total == sum((g.tax for g in totals.tax_groups), D(0))
    assert totals.total == totals.subtotal + totals.tax_total
    assert all(x.gross - x.discount == x.net and D(0) <= x.net <= x.gross for x in totals.lines)
    # Tax is never off by more than half a minor unit per rate group.
    half = D(1).scaleb(scale) / 2
    for group in totals.tax_groups:
        assert abs(group.tax - group.taxable * group.rate / 100) <= half


@given(lines=lines_strategy, currency=currencies, data=st.data())
def test_line_order_does_not_change_totals(lines: list[LineInput], currency: str, data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(lines))
    a, b = compute_totals(lines, currency), compute_totals(shuffled, currency)
    assert (a.subtotal, a.tax_total, a.total) == (b.subtotal, b.tax_total, b.total)


@given(units=st.integers(min_value=-(10**15), max_value=10**15), currency=currencies)
def test_minor_units_round_trip(units: int, currency: str) -> None:
    assert to_minor(from_minor(units, currency), currency) == units


@given(
    total=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
    paid=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
)
def test_due_and_credit_partition_the_difference(total: Decimal, paid: Decimal) -> None:
    due, credit = amount_due(total, paid), credit_from_overpayment(total, paid)
    assert due >= 0 and credit >= 0 and (due == 0 or credit == 0)
    assert total - paid == due - credit


# ------------------------------------------------------------------ terms


@pytest.mark.parametrize(
    ("code", "issued", "due"),
    [
        ("net_30", date(2026, 1, 31), date(2026, 3, 2)),
        ("net_0", date(2026, 5, 5), date(2026, 5, 5)),
        ("due_on_receipt", date(2026, 5, 5), date(2026, 5, 5)),
        ("eom", date(2028, 2, 10), date(2028, 2, 29)),
        ("eom", date(2026, 2, 10), date(2026, 2, 28)),
        ("net_15_eom", date(2026, 12, 3), date(2027, 1, 15)),
    ],
)
def test_due_dates(code: str, issued: date, due: date) -> None:
    assert due_date(parse_terms(code), issued) == due
    assert parse_terms(code).code == code


@pytest.mark.parametrize("bad", ["net", "net_-1", "net_366", "eom_5", "30 days", ""])
def test_unknown_terms_list_the_accepted_forms(bad: str) -> None:
    with pytest.raises(MoneyError, match="accepted: 'due_on_receipt'"):
        parse_terms(bad)


# ------------------------------------------------------------------ reminders


def test_default_schedule_in_berlin_across_dst() -> None:
    steps = reminder_schedule(date(2026, 3, 28), (-3, 0, 7), "Europe/Berlin")
    assert [(s.kind, s.offset_days, s.local_date) for s in steps] == [
        ("reminder", -3, date(2026, 3, 25)),
        ("reminder", 0, date(2026, 3, 28)),
        ("reminder", 7, date(2026, 4, 4)),
        ("escalation", 7, date(2026, 4, 4)),
    ]
    # 09:00 CET (UTC+1) before the switch on 29 March, 09:00 CEST (UTC+2) after it.
    assert steps[0].send_at == datetime(2026, 3, 25, 8, tzinfo=UTC)
    assert steps[2].send_at == datetime(2026, 4, 4, 7, tzinfo=UTC)
    assert steps[3].send_at == datetime(2026, 4, 4, 8, tzinfo=UTC)


def test_new_york_and_skipped_local_hour() -> None:
    steps = reminder_schedule(date(2026, 11, 1), (0,), "America/New_York", escalate=False)
    assert [s.send_at for s in steps] == [datetime(2026, 11, 1, 14, tzinfo=UTC)]  # EST after the fall-back
    # 02:00 does not exist in New York on 8 March 2026: it is moved forward, not dropped.
    [spring] = reminder_schedule(date(2026, 3, 8), (0,), "America/New_York", send_hour=2, escalate=False)
    assert spring.send_at == datetime(2026, 3, 8, 7, tzinfo=UTC)  # 03:00 EDT


def test_not_before_drops_past_steps() -> None:
    steps = reminder_schedule(date(2026, 1, 10), (-3, 0, 7), "UTC", not_before=datetime(2026, 1, 10, 9, tzinfo=UTC))
    assert [(s.kind, s.offset_days) for s in steps] == [("reminder", 7), ("escalation", 7)]


def test_schedule_validation() -> None:
    with pytest.raises(MoneyError, match="only once"):
        reminder_schedule(date(2026, 1, 1), (1, 1), "UTC")
    with pytest.raises(MoneyError, match="Mars/Base"):
        reminder_schedule(date(2026, 1, 1), (1,), "Mars/Base")
    with pytest.raises(MoneyError, match="outside"):
        reminder_schedule(date(2026, 1, 1), (400,), "UTC")
    assert parse_offsets(" 14, -3,0 ") == (-3, 0, 14)
    assert parse_offsets("") == ()
    with pytest.raises(MoneyError, match="'x'"):
        parse_offsets("1,x")


@given(offsets=st.lists(st.integers(-60, 60), unique=True, max_size=8), hour=st.integers(0, 23))
def test_schedule_is_sorted_and_complete(offsets: list[int], hour: int) -> None:
    steps = reminder_schedule(date(2026, 6, 15), offsets, "Europe/Berlin", send_hour=hour)
    assert [s.send_at for s in steps] == sorted(s.send_at for s in steps)
    assert sorted(s.offset_days for s in steps if s.kind == "reminder") == sorted(offsets)
    assert [s.kind for s in steps].count("escalation") == (1 if offsets else 0)
    if offsets:
        assert steps[-1].kind == "escalation"


# ------------------------------------------------------------------ status


@pytest.mark.parametrize(
    ("paid", "past_due", "expected"),
    [
        ("0", False, InvoiceStatus.OPEN),
        ("0", True, InvoiceStatus.OVERDUE),
        ("40", False, InvoiceStatus.PARTIALLY_PAID),
        ("40", True, InvoiceStatus.OVERDUE),
        ("100", True, InvoiceStatus.PAID),
        ("120", False, InvoiceStatus.PAID),
    ],
)
def test_status_precedence(paid: str, past_due: bool, expected: InvoiceStatus) -> None:
    assert settle_status(total=D("100"), amount_paid=D(paid), past_due=past_due) == expected
