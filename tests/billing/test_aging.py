"""Receivables aging: bucket boundaries, per-customer and per-currency totals, never across currencies."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.aging import BUCKETS, AgingLine, AgingRow, AgingTotals, aging_bucket, aging_report, days_overdue
from billing.currency import MINOR_UNITS
from billing.errors import MoneyError

D = Decimal
DUE = date(2026, 1, 1)


def zeros(currency: str) -> dict[str, Decimal]:
    unit = D(1).scaleb(-MINOR_UNITS[currency])
    return {bucket: D(0).quantize(unit) for bucket in BUCKETS}


@pytest.mark.parametrize(
    ("as_of", "bucket"),
    [
        (date(2025, 12, 1), "current"),  # not due yet
        (date(2026, 1, 1), "current"),  # due today: 0 days overdue
        (date(2026, 1, 2), "1-30"),
        (date(2026, 1, 31), "1-30"),  # 30 days
        (date(2026, 2, 1), "31-60"),  # 31
        (date(2026, 3, 2), "31-60"),  # 60
        (date(2026, 3, 3), "61-90"),  # 61
        (date(2026, 4, 1), "61-90"),  # 90
        (date(2026, 4, 2), "90+"),  # 91
        (date(2031, 1, 1), "90+"),
    ],
)
def test_bucket_boundaries(as_of: date, bucket: str) -> None:
    assert aging_bucket(DUE, as_of) == bucket


def test_leap_day_counts_as_a_day() -> None:
    # 2028-02-29 exists: 2028-01-31 + 30 days is 2028-03-01, one day short of 31-60.
    assert days_overdue(date(2028, 1, 31), date(2028, 3, 1)) == 30
    assert aging_bucket(date(2028, 1, 31), date(2028, 3, 1)) == "1-30"
    assert aging_bucket(date(2028, 1, 31), date(2028, 3, 2)) == "31-60"


@given(days=st.integers(-400, 400))
def test_buckets_partition_days_exactly_at_0_30_60_90(days: int) -> None:
    as_of = DUE + timedelta(days=days)
    here, there = aging_bucket(DUE, as_of), aging_bucket(DUE, as_of + timedelta(days=1))
    # The bucket changes between day n and n + 1 exactly when n is a boundary, and only ever forward.
    assert (here != there) == (days in (0, 30, 60, 90))
    assert BUCKETS.index(there) - BUCKETS.index(here) in (0, 1)
    assert days_overdue(DUE, as_of) == days


def test_dates_only() -> None:
    with pytest.raises(MoneyError, match="as_of: expected a date"):
        aging_bucket(DUE, datetime(2026, 2, 1))


def row(customer: str, name: str, currency: str, amount: str, due: date) -> AgingRow:
    return AgingRow(customer, name, currency, D(amount), due)


def test_report_totals_per_customer_per_currency_and_never_across_currencies() -> None:
    as_of = date(2026, 4, 15)
    report = aging_report(
        [
            row("c2", "beta GmbH", "EUR", "100.00", date(2026, 4, 20)),  # current
            row("c1", "Acme", "USD", "10.00", date(2026, 4, 1)),  # 14 days
            row("c1", "Acme", "USD", "5.50", date(2026, 3, 1)),  # 45
            row("c1", "Acme", "EUR", "7.00", date(2025, 12, 1)),  # 135
            row("c1", "Acme", "USD", "2.25", date(2026, 4, 14)),  # 1
            row("c2", "beta GmbH", "JPY", "1500", date(2026, 1, 10)),  # 95
            row("c2", "beta GmbH", "EUR", "0.00", date(2025, 1, 1)),  # paid: left out
            row("c3", "Cato", "usd", "20.00", date(2026, 1, 15)),  # 90 exactly
        ],
        as_of,
    )
    assert report.as_of == as_of
    assert report.lines == (
        AgingLine("c1", "Acme", "EUR", {**zeros("EUR"), "90+": D("7.00")}, D("7.00")),
        AgingLine("c1", "Acme", "USD", {**zeros("USD"), "1-30": D("12.25"), "31-60": D("5.50")}, D("17.75")),
        AgingLine("c2", "beta GmbH", "EUR", {**zeros("EUR"), "current": D("100.00")}, D("100.00")),
        AgingLine("c2", "beta GmbH", "JPY", {**zeros("JPY"), "90+": D(1500)}, D(1500)),
        AgingLine("c3", "Cato", "USD", {**zeros("USD"), "61-90": D("20.00")}, D("20.00")),
    )
    assert report.totals == (
        AgingTotals("EUR", {**zeros("EUR"), "current": D("100.00"), "90+": D("7.00")}, D("107.00")),
        AgingTotals("JPY", {**zeros("JPY"), "90+": D(1500)}, D(1500)),
        AgingTotals(
            "USD", {**zeros("USD"), "1-30": D("12.25"), "31-60": D("5.50"), "61-90": D("20.00")}, D("37.75")
        ),
    )
    assert list(report.lines[0].buckets) == list(BUCKETS)
    assert str(report.totals[2].total) == "37.75" and str(report.totals[1].total) == "1500"


def test_renamed_customer_shows_the_name_of_the_latest_invoice() -> None:
    rows = [
        row("c1", "Old Name Ltd", "USD", "1.00", date(2026, 1, 1)),
        row("c1", "New Name Ltd", "USD", "2.00", date(2026, 2, 1)),
        row("c1", "Zed", "USD", "3.00", date(2025, 6, 1)),
    ]
    for ordering in (rows, rows[::-1]):
        [line] = aging_report(ordering, date(2026, 3, 1)).lines
        assert (line.customer_name, line.total) == ("New Name Ltd", D("6.00"))
    # Same due date: the alphabetically first name, whatever the order.
    tie = [row("c1", "B", "USD", "1.00", DUE), row("c1", "A", "USD", "1.00", DUE)]
    assert (
        aging_report(tie, DUE).lines[0].customer_name
        == aging_report(tie[::-1], DUE).lines[0].customer_name
        == "A"
    )


def test_report_refuses_bad_rows() -> None:
    with pytest.raises(MoneyError, match=r"rows\[1\].amount_due: must not be negative"):
        aging_report([row("c", "C", "USD", "1.00", DUE), row("c", "C", "USD", "-1.00", DUE)], DUE)
    with pytest.raises(MoneyError, match=r"rows\[0\].amount_due: JPY has no minor units"):
        aging_report([row("c", "C", "JPY", "1.5", DUE)], DUE)
    with pytest.raises(MoneyError, match=r"rows\[0\].amount_due: floats are not accepted"):
        aging_report([AgingRow("c", "C", "USD", 1.5, DUE)], DUE)  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="currency: unknown ISO 4217 code 'XYZ'"):
        aging_report([row("c", "C", "XYZ", "1", DUE)], DUE)
    with pytest.raises(MoneyError, match=r"rows\[0\].due_date: expected a date"):
        aging_report([AgingRow("c", "C", "USD", D(1), "2026-01-01")], DUE)  # type: ignore[arg-type]
    assert aging_report([], DUE) == aging_report((), DUE)
    assert aging_report([], DUE).lines == () and aging_report([], DUE).totals == ()


CURRENCIES = ["USD", "EUR", "JPY", "KWD"]


@st.composite
def rows(draw: st.DrawFn) -> list[AgingRow]:
    result = []
    for _ in range(draw(st.integers(0, 25))):
        currency = draw(st.sampled_from(CURRENCIES))
        customer = draw(st.sampled_from(["a", "b", "c", "d"]))
        minor = draw(st.integers(0, 10**9))
        result.append(
            AgingRow(
                customer,
                draw(st.sampled_from([f"Customer {customer}", f"customer {customer}", "Renamed"])),
                currency,
                D(minor).scaleb(-MINOR_UNITS[currency]),
                DUE + timedelta(days=draw(st.integers(-60, 200))),
            )
        )
    return result


@settings(deadline=None)
@given(data=rows(), seed=st.integers(0, 2**32))
def test_report_totals_add_up_per_currency_and_ignore_row_order(data: list[AgingRow], seed: int) -> None:
    as_of = DUE + timedelta(days=30)
    report = aging_report(data, as_of)
    shuffled = list(data)
    random.Random(seed).shuffle(shuffled)
    assert aging_report(shuffled, as_of) == report
    for currency in CURRENCIES:
        mine = [r for r in data if r.currency == currency]
        expected = {
            bucket: sum((r.amount_due for r in mine if aging_bucket(r.due_date, as_of) == bucket), D(0))
            for bucket in BUCKETS
        }
        totals = [t for t in report.totals if t.currency == currency]
        if not any(r.amount_due for r in mine):
            assert totals == []
            continue
        [total] = totals
        assert total.buckets == expected and total.total == sum(expected.values())
        lines = [line for line in report.lines if line.currency == currency]
        assert {bucket: sum((line.buckets[bucket] for line in lines), D(0)) for bucket in BUCKETS} == expected
        for line in lines:
            assert line.total == sum(line.buckets.values())
            assert line.total == sum(r.amount_due for r in mine if r.customer_id == line.customer_id)
            assert all(
                v.as_tuple().exponent == -MINOR_UNITS[currency] for v in (*line.buckets.values(), line.total)
            )
    keys = [(line.customer_id, line.currency) for line in report.lines]
    assert len(keys) == len(set(keys))
