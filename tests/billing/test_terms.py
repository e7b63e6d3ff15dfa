"""Payment terms: due dates across month ends and leap years, and codes that round-trip."""

from __future__ import annotations

from datetime import date

import pytest

from billing.errors import MoneyError
from billing.terms import PaymentTerms, TermsError, due_date, parse_terms


@pytest.mark.parametrize(
    ("code", "issued", "due"),
    [
        ("due_on_receipt", date(2026, 5, 5), date(2026, 5, 5)),
        ("net_0", date(2026, 5, 5), date(2026, 5, 5)),
        ("net_14", date(2026, 12, 25), date(2027, 1, 8)),
        ("net_30", date(2026, 1, 31), date(2026, 3, 2)),  # 28-day February
        ("net_30", date(2028, 1, 31), date(2028, 3, 1)),  # leap year: 29 February counts
        ("net_365", date(2027, 3, 1), date(2028, 2, 29)),  # a leap day in between
        ("eom", date(2028, 2, 10), date(2028, 2, 29)),
        ("eom", date(2026, 2, 10), date(2026, 2, 28)),
        ("eom", date(2100, 2, 1), date(2100, 2, 28)),  # century, not a leap year
        ("eom", date(2000, 2, 1), date(2000, 2, 29)),  # divisible by 400: leap year
        ("eom", date(2026, 4, 30), date(2026, 4, 30)),
        ("eom", date(2026, 12, 1), date(2026, 12, 31)),
        ("net_15_eom", date(2026, 12, 3), date(2027, 1, 15)),
        ("net_15_eom", date(2028, 2, 10), date(2028, 3, 15)),
        ("net_30_eom", date(2026, 1, 15), date(2026, 3, 2)),
        ("net_0_eom", date(2026, 6, 1), date(2026, 6, 30)),
    ],
)
def test_due_dates(code: str, issued: date, due: date) -> None:
    terms = parse_terms(code)
    assert due_date(terms, issued) == due
    assert terms.code == code
    assert parse_terms(terms.code) == terms


def test_parse_terms_structure_and_spelling() -> None:
    assert parse_terms("net_30") == PaymentTerms("net", 30)
    assert parse_terms(" NET_15_EOM ") == PaymentTerms("net_eom", 15)
    assert parse_terms("Due_On_Receipt") == PaymentTerms("due_on_receipt")
    assert parse_terms("eom") == PaymentTerms("eom", 0)
    assert PaymentTerms("net_eom", 45).code == "net_45_eom"


@pytest.mark.parametrize(
    "bad",
    [
        "net",
        "net_",
        "net_-1",
        "net_366",
        "net_1000",
        "net_030",
        "net_30_days",
        "net30",
        "eom_5",
        "30 days",
        "",
        "net_٣٠",
        "net_3 0",
        "due on receipt",
        None,
        30,
    ],
)
def test_unknown_terms_list_the_accepted_forms(bad: object) -> None:
    with pytest.raises(TermsError) as error:
        parse_terms(bad)  # type: ignore[arg-type]
    message = str(error.value)
    assert message.startswith("payment_terms: unknown terms ")
    for form in ("'due_on_receipt'", "'net_N'", "'eom'", "'net_N_eom'", "0 to 365"):
        assert form in message
    assert isinstance(error.value, MoneyError)


@pytest.mark.parametrize(
    ("kind", "days", "message"),
    [
        ("weekly", 0, "unknown kind 'weekly'"),
        ("net", 366, "from 0 to 365, got 366"),
        ("net", -1, "got -1"),
        ("eom", 5, "'eom' takes no days"),
        ("due_on_receipt", 1, "takes no days"),
        ("net", True, "got True"),
    ],
)
def test_payment_terms_validate_themselves(kind: str, days: int, message: str) -> None:
    with pytest.raises(TermsError, match=message):
        PaymentTerms(kind, days)  # type: ignore[arg-type]
