"""Hypothesis properties of the billing arithmetic: invariants that must hold for every input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from itertools import combinations
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from billing.currency import MINOR_UNITS
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
from billing.reminders import reminder_schedule
from billing.status import InvoiceStatus, settle_status
from billing.totals import LineInput, amount_due, compute_totals, credit_from_overpayment

D = Decimal
CURRENCIES = ["USD", "EUR", "JPY", "KRW", "KWD", "BHD", "CLF"]
currencies = st.sampled_from(CURRENCIES)
# Equal rates written differently on purpose: they must land in one group.
rates = st.sampled_from([D(0), D("5.5"), D(7), D("7.00"), D(19), D("19.0"), D("8.875"), D("0.0001"), D(100)])
quantities = st.decimals(min_value=D("0.0001"), max_value=D("10000"), places=4)
prices = st.decimals(min_value=D(0), max_value=D("100000"), places=6)
percents = st.decimals(min_value=D(0), max_value=D(100), places=2)


def exponent(value: Decimal) -> int:
    result = value.as_tuple().exponent
    assert isinstance(result, int)
    return result


def unit(currency: str) -> Decimal:
    return D(1).scaleb(-MINOR_UNITS[currency])


def amounts(currency: str, limit: int = 10**9) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=-limit, max_value=limit, places=MINOR_UNITS[currency])


@st.composite
def invoices(draw: st.DrawFn) -> tuple[str, list[LineInput]]:
    """A currency and 1-12 valid lines, each without discount, with a percent or with a fixed amount."""
    currency = draw(currencies)
    lines: list[LineInput] = []
    for _ in range(draw(st.integers(1, 12))):
        quantity, price, rate = draw(quantities), draw(prices), draw(rates)
        # A line worth less than half a minor unit is refused (its own test): keep the valid ones.
        assume(price == 0 or quantity * price >= unit(currency) / 2)
        kind = draw(st.sampled_from(["none", "percent", "amount"]))
        if kind == "percent":
            lines.append(LineInput("item", quantity, price, discount_percent=draw(percents), tax_rate=rate))
        elif kind == "amount":
            # At most the gross, computed independently of the code under test (exact: ≤ 20 digits).
            ceiling = (quantity * price).quantize(unit(currency), rounding=ROUND_DOWN)
            fixed = draw(st.decimals(min_value=0, max_value=ceiling, places=MINOR_UNITS[currency]))
            lines.append(LineInput("item", quantity, price, discount_amount=fixed, tax_rate=rate))
        else:
            lines.append(LineInput("item", quantity, price, tax_rate=rate))
    return currency, lines


@given(invoice=invoices())
def test_totals_invariants(invoice: tuple[str, list[LineInput]]) -> None:
    currency, lines = invoice
    totals = compute_totals(lines, currency)
    scale = -MINOR_UNITS[currency]
    half = unit(currency) / 2
    money = [totals.subtotal, totals.discount_total, totals.tax_total, totals.total]
    money += [x for line in totals.lines for x in (line.gross, line.discount, line.net)]
    money += [x for group in totals.tax_groups for x in (group.taxable, group.tax)]
    assert all(exponent(amount) == scale for amount in money)

    assert totals.subtotal == sum(line.net for line in totals.lines)
    assert totals.discount_total == sum(line.discount for line in totals.lines)
    assert totals.tax_total == sum(group.tax for group in totals.tax_groups)
    assert totals.total == totals.subtotal + totals.tax_total
    for given_line, line in zip(lines, totals.lines, strict=True):
        assert line.gross - line.discount == line.net
        assert D(0) <= line.discount <= line.gross
        assert abs(line.gross - given_line.quantity * given_line.unit_price) <= half
        assert line.tax_rate == given_line.tax_rate
    # One group per distinct rate, sorted, each taxing exactly the nets at its rate, rounded once.
    assert [g.rate for g in totals.tax_groups] == sorted({line.tax_rate for line in lines})
    for group in totals.tax_groups:
        assert group.taxable == sum(line.net for line in totals.lines if line.tax_rate == group.rate)
        exact = group.taxable * group.rate / 100
        assert abs(group.tax - exact) <= half
        if abs(group.tax - exact) == half:
            assert group.tax > exact  # half-up: a tie goes away from zero
    exact_tax = sum(line.net * line.tax_rate / 100 for line in totals.lines)
    assert abs(totals.tax_total - exact_tax) <= half * len(totals.tax_groups)


@given(invoice=invoices(), data=st.data())
def test_line_order_does_not_change_totals(invoice: tuple[str, list[LineInput]], data: st.DataObject) -> None:
    currency, lines = invoice
    shuffled = data.draw(st.permutations(lines))
    a, b = compute_totals(lines, currency), compute_totals(shuffled, currency)
    assert (a.subtotal, a.discount_total, a.tax_total, a.total, a.tax_groups) == (
        b.subtotal,
        b.discount_total,
        b.tax_total,
        b.total,
        b.tax_groups,
    )
    assert sorted(a.lines, key=repr) == sorted(b.lines, key=repr)


@given(amount=st.decimals(min_value=-(10**12), max_value=10**12, places=7), currency=currencies)
def test_quantize_is_half_up_to_the_minor_unit(amount: Decimal, currency: str) -> None:
    result = quantize(amount, currency)
    assert exponent(result) == -MINOR_UNITS[currency]
    difference = abs(result - amount)
    assert difference <= unit(currency) / 2
    if difference == unit(currency) / 2:
        assert abs(result) > abs(amount)  # ties go away from zero
    assert quantize(result, currency) == result  # idempotent


@given(data=st.data(), currency=currencies)
def test_require_minor_units_accepts_exactly_what_fits(data: st.DataObject, currency: str) -> None:
    fits = data.draw(amounts(currency))
    padded = require_minor_units(fits, currency, field="amount")
    assert padded == fits and exponent(padded) == -MINOR_UNITS[currency]
    extra = fits + unit(currency) / 10
    with pytest.raises(MoneyError, match=f"^amount: {currency} "):
        require_minor_units(extra, currency, field="amount")


@given(units=st.integers(min_value=-(10**20), max_value=10**20), currency=currencies)
def test_minor_units_round_trip_from_int(units: int, currency: str) -> None:
    amount = from_minor(units, currency)
    assert exponent(amount) == -MINOR_UNITS[currency]
    assert to_minor(amount, currency) == units
    assert amount == D(units) / 10 ** MINOR_UNITS[currency]


@given(data=st.data(), currency=currencies)
def test_minor_units_round_trip_from_amount(data: st.DataObject, currency: str) -> None:
    amount = data.draw(amounts(currency, 10**15))
    assert from_minor(to_minor(amount, currency), currency) == amount


@given(data=st.data(), currency=currencies)
def test_format_money_reads_back(data: st.DataObject, currency: str) -> None:
    amount = data.draw(amounts(currency, 10**15))
    text = format_money(amount, currency)
    number, code = text.split(" ")
    assert code == currency
    assert parse_decimal(number.replace(",", "")) == amount
    assert exponent(parse_decimal(number.replace(",", ""))) == -MINOR_UNITS[currency]


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_parse_decimal_rejects_every_float(value: float) -> None:
    with pytest.raises(MoneyError, match="floats are not accepted for money"):
        parse_decimal(value, field="amount")


@given(
    value=st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20, places=6)
)
def test_parse_decimal_reads_plain_notation(value: Decimal) -> None:
    text = f"{value:f}"  # plain notation, never exponent
    assert parse_decimal(text) == value
    assert parse_decimal(f"  {text}\n") == value


@given(
    total=st.decimals(min_value=0, max_value=10**9, places=2),
    paid=st.decimals(min_value=0, max_value=10**9, places=2),
    past_due=st.booleans(),
)
def test_due_and_credit_partition_the_difference(total: Decimal, paid: Decimal, past_due: bool) -> None:
    due, credit = amount_due(total, paid), credit_from_overpayment(total, paid)
    assert due >= 0 and credit >= 0
    assert due == 0 or credit == 0
    assert total - paid == due - credit
    assert paid + due - credit == total
    status = settle_status(total=total, amount_paid=paid, past_due=past_due)
    assert (status is InvoiceStatus.PAID) == (due == 0)


@given(data=st.data(), currency=currencies)
def test_money_arithmetic_laws(data: st.DataObject, currency: str) -> None:
    a, b, c = (Money(data.draw(amounts(currency)), currency) for _ in range(3))
    zero = Money.zero(currency)
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)
    assert a + b - b == a
    negated = -a
    assert a + negated == zero and -negated == a
    assert (a < b) == (a.amount < b.amount) and (a <= b) == (a.amount <= b.amount)
    assert exponent((a + b).amount) == -MINOR_UNITS[currency]


@given(pair=st.sampled_from(list(combinations(CURRENCIES, 2))), data=st.data())
def test_money_never_mixes_currencies(pair: tuple[str, str], data: st.DataObject) -> None:
    first, second = pair
    a, b = Money(data.draw(amounts(first)), first), Money(data.draw(amounts(second)), second)
    with pytest.raises(MoneyError, match=f"^cannot add {first} and {second}$"):
        _ = a + b
    with pytest.raises(MoneyError, match=f"^cannot subtract {second} and {first}$"):
        _ = b - a
    with pytest.raises(MoneyError, match="^cannot compare"):
        _ = a < b
    assert a != b


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",
]


@settings(deadline=None)  # the first ZoneInfo load of a zone reads tzdata
@given(
    due=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    offsets=st.lists(st.integers(-365, 365), unique=True, max_size=8),
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    escalate=st.booleans(),
)
def test_schedule_properties(due: date, offsets: list[int], zone: str, hour: int, escalate: bool) -> None:
    steps = reminder_schedule(due, offsets, zone, send_hour=hour, escalate=escalate)
    reminders = [s for s in steps if s.kind == "reminder"]
    assert [s.send_at for s in steps] == sorted(s.send_at for s in steps)
    assert [s.offset_days for s in reminders] == sorted(offsets)
    assert all(s.send_at.tzinfo is UTC for s in steps)
    for step in reminders:
        assert step.local_date == due + timedelta(days=step.offset_days)
        local = step.send_at.astimezone(ZoneInfo(zone))
        assert local.date() == step.local_date
        # The send hour, or later on the same day when a DST change skipped it (never earlier).
        assert local.hour >= hour and local - local.replace(hour=hour, minute=0) <= timedelta(hours=1)
    if escalate and offsets:
        assert steps[-1].kind == "escalation"
        assert steps[-1].send_at == reminders[-1].send_at + timedelta(hours=1)
        assert (steps[-1].offset_days, steps[-1].local_date) == (
            reminders[-1].offset_days,
            reminders[-1].local_date,
        )
    else:
        assert all(s.kind == "reminder" for s in steps)


@settings(deadline=None)
@given(
    offsets=st.lists(st.integers(-60, 60), unique=True, max_size=6),
    minutes=st.integers(-90 * 24 * 60, 90 * 24 * 60),
    zone=st.sampled_from(ZONES),
)
def test_not_before_only_drops_steps_at_or_before_it(offsets: list[int], minutes: int, zone: str) -> None:
    due = date(2026, 3, 28)
    cutoff = datetime(2026, 3, 28, 12, tzinfo=UTC) + timedelta(minutes=minutes)
    full = reminder_schedule(due, offsets, zone)
    assert reminder_schedule(due, offsets, zone, not_before=cutoff) == tuple(
        s for s in full if s.send_at > cutoff
    )
