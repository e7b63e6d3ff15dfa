"""The bounds of billing.limits: dates in a sane window, amounts under the ceiling."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.errors import MoneyError
from billing.limits import AMOUNT_CEILING, DateOutOfRange, amount_limit, check_amount, check_date


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1999, 12, 31), date(2100, 1, 1), date(9999, 12, 31)])
def test_dates_outside_the_window_are_refused_naming_the_field(day: date) -> None:
    with pytest.raises(DateOutOfRange, match=rf"^due_date: {day.isoformat()} is outside the accepted range"):
        check_date(day, "due_date")


def test_dates_inside_the_window_pass_unchanged() -> None:
    assert check_date(date(2000, 1, 1), "d") == date(2000, 1, 1)
    assert check_date(date(2099, 12, 31), "d") == date(2099, 12, 31)
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert check_date(at, "received_at") is at
    with pytest.raises(DateOutOfRange, match="received_at"):
        check_date(datetime(9999, 1, 1, tzinfo=UTC), "received_at")


def test_amount_limit_never_lifts_the_ceiling() -> None:
    assert amount_limit(None) == AMOUNT_CEILING
    assert amount_limit(Decimal("1E+30")) == AMOUNT_CEILING
    assert amount_limit(Decimal("5000")) == Decimal("5000")
    assert check_amount(Decimal("5000.00"), "amount", Decimal("5000")) == Decimal("5000.00")
    with pytest.raises(
        MoneyError, match=r"^amount: 5000.01 USD is more than the maximum amount of 5000 USD$"
    ):
        check_amount(Decimal("5000.01"), "amount", Decimal("5000"), "USD")
    with pytest.raises(MoneyError, match=r"^amount: 1E\+18 is more than the maximum"):
        check_amount(Decimal("1E+18"), "amount")


def test_project_amounts_are_bounded() -> None:
    from billing.projects import _amount

    assert _amount("1000.00", "USD", "contract_amount") == Decimal("1000.00")
    with pytest.raises(MoneyError, match=r"^milestones\[0\]\.amount: 10+\.00 USD is more than the maximum"):
        _amount("1" + "0" * 30, "USD", "milestones[0].amount")
