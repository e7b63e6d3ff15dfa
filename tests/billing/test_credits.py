"""Credit note and customer credit rules (billing.credits): what may be credited, how money splits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.credits import CreditRefused, applicable_credit, check_credit_amount, creditable, split

D = Decimal


def test_creditable_is_what_earlier_credit_notes_left() -> None:
    assert creditable(D("1190.00"), D("0.00")) == D("1190.00")
    assert creditable(D("1190.00"), D("238.00")) == D("952.00")
    assert creditable(D("100.00"), D("100.00")) == D("0.00")


def test_over_credit_is_refused_with_the_numbers() -> None:
    with pytest.raises(
        CreditRefused, match=r"1,309.00 USD is more than the 1,190.00 USD still creditable on INV-1"
    ):
        check_credit_amount(D("1309.00"), total=D("1190.00"), credited=D("0"), currency="USD", number="INV-1")
    with pytest.raises(CreditRefused, match="more than 0"):
        check_credit_amount(D("0.00"), total=D("10.00"), credited=D("0"), currency="USD", number="INV-1")
    with pytest.raises(CreditRefused, match="already has credit notes"):
        check_credit_amount(
            D("10.00"), total=D("10.00"), credited=D("1.00"), currency="USD", number="INV-1", full=True
        )
    check_credit_amount(D("952.00"), total=D("1190.00"), credited=D("238.00"), currency="USD", number="INV-1")


def test_split_into_due_and_customer_credit() -> None:
    assert split(D("1000.00"), D("600.00"), D("500.00")) == (D("0.00"), D("100.00"))
    assert split(D("1190.00"), D("400.00"), D("238.00")) == (D("552.00"), D("0.00"))
    assert split(D("100"), D("0"), D("100")) == (D("0"), D("0"))


def test_applicable_credit_never_exceeds_balance_or_due() -> None:
    assert applicable_credit(D("30.00"), D("20.00")) == D("20.00")
    assert applicable_credit(D("10.00"), D("100.00")) == D("10.00")
    assert applicable_credit(D("0"), D("100.00")) == D("0")


cents = st.integers(min_value=0, max_value=10**9).map(lambda n: D(n).scaleb(-2))


@given(total=cents, paid=cents, credited=cents)
def test_due_and_credit_partition_the_balance(total: Decimal, paid: Decimal, credited: Decimal) -> None:
    due, credit = split(total, paid, credited)
    assert due >= 0 and credit >= 0 and (due == 0 or credit == 0)
    assert total - paid - credited == due - credit
