"""The creation-time EN 16931 checks (pure): defaults, and each refusal names its term and rule."""

from __future__ import annotations

from decimal import Decimal

from billing.einvoice_rules import (
    BuyerFacts,
    LineFacts,
    currency_problem,
    customer_problems,
    invoice_problems,
    line_category,
)

BUYER = BuyerFacts("facturx", "DE", "DE987654321", "REF", "9930:DE987654321")


def rules(problems) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.rule for p in problems}


def test_category_defaults() -> None:
    assert line_category(Decimal(19), None) == "S"
    assert line_category(Decimal(0), None) == "Z"
    assert line_category(Decimal(0), "AE") == "AE"


def test_currencies_by_decimals() -> None:
    assert currency_problem("EUR") is None and currency_problem("JPY") is None
    assert "3 decimals" in (currency_problem("KWD") or "")


def test_a_complete_invoice_passes_and_each_gap_is_named() -> None:
    ok = [LineFacts(Decimal(19), None, ""), LineFacts(Decimal(0), "E", "Exempt, Art. 132")]
    assert invoice_problems(BUYER, ok, "EUR") == []
    no_vat = BuyerFacts("facturx", "DE", "", "REF", "")
    reverse = [LineFacts(Decimal(0), "AE", "Reverse charge")]
    assert rules(invoice_problems(no_vat, reverse, "EUR")) == {"BR-AE-02"}
    assert rules(invoice_problems(BUYER, [LineFacts(Decimal(0), "E", " ")], "EUR")) == {"BR-E-10"}
    assert rules(invoice_problems(BUYER, [LineFacts(Decimal(7), "Z", "")], "EUR")) == {"BR-Z-05"}
    assert rules(invoice_problems(BUYER, ok, "KWD")) == {"BR-DEC-23"}
    # A PDF-only customer is not held to e-invoice needs, but line categories are data and still checked.
    pdf_only = BuyerFacts("none", "", "", "", "")
    assert invoice_problems(pdf_only, reverse, "KWD") == []
    assert rules(invoice_problems(pdf_only, [LineFacts(Decimal(0), "S", "")], "EUR")) == {"BR-S-05"}


def test_customer_needs_per_format() -> None:
    assert customer_problems(BUYER) == []
    assert rules(customer_problems(BuyerFacts("facturx", "", "", "", ""))) == {"BR-11"}
    assert rules(customer_problems(BuyerFacts("xrechnung", "DE", "", "", ""))) == {"BR-DE-15"}
    assert rules(customer_problems(BuyerFacts("peppol", "BE", "", "R", ""))) == {"PEPPOL-EN16931-R010"}
    assert rules(customer_problems(BuyerFacts("none", "", "", "", "DE987"))) == {"BR-62"}
