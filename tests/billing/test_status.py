"""Invoice status precedence: paid > overdue > partially paid > open."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.status import FINAL_STATUSES, InvoiceStatus, settle_status

D = Decimal


@pytest.mark.parametrize(
    ("total", "paid", "past_due", "expected"),
    [
        ("100.00", "0.00", False, InvoiceStatus.OPEN),
        ("100.00", "0.00", True, InvoiceStatus.OVERDUE),
        ("100.00", "40.00", False, InvoiceStatus.PARTIALLY_PAID),
        ("100.00", "99.99", False, InvoiceStatus.PARTIALLY_PAID),
        ("100.00", "40.00", True, InvoiceStatus.OVERDUE),  # overdue beats partially paid
        ("100.00", "0.01", True, InvoiceStatus.OVERDUE),
        ("100.00", "100.00", True, InvoiceStatus.PAID),  # paid beats overdue
        ("100.00", "100.00", False, InvoiceStatus.PAID),
        ("100.00", "120.00", False, InvoiceStatus.PAID),
        ("0.00", "0.00", True, InvoiceStatus.PAID),  # nothing to pay
        ("1001", "1000", False, InvoiceStatus.PARTIALLY_PAID),
    ],
)
def test_status_precedence(total: str, paid: str, past_due: bool, expected: InvoiceStatus) -> None:
    assert settle_status(total=D(total), amount_paid=D(paid), past_due=past_due) is expected


def test_status_values_are_the_api_strings() -> None:
    assert [status.value for status in InvoiceStatus] == [
        "draft",
        "pending_approval",
        "open",
        "overdue",
        "partially_paid",
        "paid",
        "void",
        "uncollectible",
        "credited",
        "einvoice_invalid",
    ]
    assert InvoiceStatus("partially_paid") is InvoiceStatus.PARTIALLY_PAID
    assert f"{InvoiceStatus.OVERDUE}" == "overdue" and InvoiceStatus.PAID == "paid"


def test_final_statuses() -> None:
    assert FINAL_STATUSES == frozenset(
        {InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.CREDITED}
    )


@pytest.mark.parametrize(
    ("total", "paid", "credited", "past_due", "expected"),
    [
        ("100.00", "0.00", "30.00", False, InvoiceStatus.OPEN),  # a partial credit note alone pays nothing
        ("100.00", "0.00", "30.00", True, InvoiceStatus.OVERDUE),
        ("100.00", "20.00", "30.00", False, InvoiceStatus.PARTIALLY_PAID),
        ("100.00", "70.00", "30.00", True, InvoiceStatus.PAID),  # the rest after the credit note is paid
        ("100.00", "0.00", "100.00", True, InvoiceStatus.CREDITED),
        (
            "100.00",
            "40.00",
            "100.00",
            False,
            InvoiceStatus.CREDITED,
        ),  # credited in full; the 40 become credit
        ("100.00", "60.00", "50.00", False, InvoiceStatus.PAID),  # 10 beyond the total become credit
    ],
)
def test_status_with_credit_notes(
    total: str, paid: str, credited: str, past_due: bool, expected: InvoiceStatus
) -> None:
    assert (
        settle_status(total=D(total), amount_paid=D(paid), past_due=past_due, amount_credited=D(credited))
        is expected
    )
    assert isinstance(FINAL_STATUSES, frozenset)
