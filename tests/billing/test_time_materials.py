"""The time & materials rules: parsing a rule (a MoneyError naming the field), rates, the threshold and the
cap (entries in date order while they fit, never split; what is over waits)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.errors import MoneyError
from billing.time_materials import (
    Entry,
    entry_amount,
    parse_rule,
    period_start,
    rate_for,
    select_entries,
    threshold_reached,
)


def test_a_rule_needs_a_rate_and_exactly_one_trigger() -> None:
    rule = parse_rule({"rate": "150.00", "threshold_hours": "40", "cap": "9000.00"}, "USD")
    assert rule.threshold_hours == Decimal(40) and rule.cap == Decimal("9000.00")
    assert parse_rule({"rate": "150", "bill_every": "month"}, "USD").bill_every == "month"
    cases = {
        "time_and_materials.rate": {"threshold_hours": "40"},
        "exactly one": {"rate": "1", "bill_every": "week", "threshold_hours": "4"},
        "bill_every": {"rate": "1", "bill_every": "fortnight"},
        "time_and_materials.cap": {"rate": "1", "bill_every": "week", "cap": "-5"},
        "time_and_materials.rate: ": {"rate": "1.005", "bill_every": "week"},  # more decimals than USD has
        "unknown": {"rate": "1", "bill_every": "week", "every": "day"},
    }
    for message, data in cases.items():
        with pytest.raises(MoneyError, match=message.replace(".", r"\.")):
            parse_rule(data, "USD")


def test_rates_come_from_the_entry_then_the_rate_card_then_the_rule() -> None:
    rule = parse_rule({"rate": "150.00", "rate_card": {"senior": "180.00"}, "bill_every": "week"}, "EUR")
    assert rate_for(rule, "senior", None) == Decimal("180.00")
    assert rate_for(rule, "junior", None) == Decimal("150.00")
    assert rate_for(rule, "senior", Decimal("99.00")) == Decimal("99.00")
    assert entry_amount(Decimal("0.333"), Decimal("150.00"), "EUR") == Decimal("49.95")  # 49.95 exactly
    assert entry_amount(Decimal("0.1"), Decimal("0.05"), "EUR") == Decimal("0.01")  # 0.005 half-up
    assert entry_amount(Decimal("1.5"), Decimal("3"), "JPY") == Decimal("5")  # 4.5 yen half-up


def _entries(*specs: tuple[str, int, str]) -> list[Entry]:
    return [Entry(k, date(2026, 12, d), Decimal(h), Decimal(h) * 100) for k, d, h in specs]


def test_the_threshold_counts_hours_or_money() -> None:
    entries = _entries(("a", 1, "8"), ("b", 2, "31.99"))
    assert not threshold_reached(parse_rule({"rate": "100", "threshold_hours": "40"}, "USD"), entries)
    entries += _entries(("c", 3, "0.01"))
    assert threshold_reached(parse_rule({"rate": "100", "threshold_hours": "40"}, "USD"), entries)
    assert threshold_reached(parse_rule({"rate": "100", "threshold_amount": "4000"}, "USD"), entries)
    assert not threshold_reached(parse_rule({"rate": "100", "threshold_amount": "4000.01"}, "USD"), entries)


def test_the_cap_takes_entries_in_date_order_and_the_rest_waits() -> None:
    rule = parse_rule({"rate": "100", "bill_every": "week", "cap": "1000.00"}, "USD")
    entries = _entries(
        ("late", 5, "1"), ("first", 1, "4"), ("second", 2, "5"), ("third", 3, "0.5"), ("tiny", 6, "0.1")
    )
    picked = select_entries(rule, entries, Decimal("0"))
    # 400 + 500 + 50 fit, 100 more would not; the 10.00 after it would, but never overtakes it.
    assert picked.taken == ["first", "second", "third"] and picked.amount == Decimal(950)
    assert picked.waiting_over_cap == ["late", "tiny"]
    assert select_entries(rule, entries, Decimal("1000.00")).taken == []
    assert select_entries(rule, entries, Decimal("50.00")).taken == ["first", "second", "third"]
    uncapped = parse_rule({"rate": "100", "bill_every": "week"}, "USD")
    assert len(select_entries(uncapped, entries, Decimal(10**6)).taken) == 5


def test_period_starts() -> None:
    assert period_start("week", date(2026, 12, 7)) == date(2026, 11, 30)
    assert period_start("month", date(2027, 1, 1)) == date(2026, 12, 1)
