"""The official rules do refuse: a document missing what a rule family needs fails with that rule's id,
in each syntax and CIUS. Without these, a validator that silently checked nothing would pass the matrix.
Also: a 3-decimal currency is refused before any XML, and a crash of the rules' process costs only
that process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from documents.einvoice.model import Address, EInvoice, EInvoiceRefused, Line, Party, amount, tax_groups
from documents.einvoice.pool import EInvoicePool
from documents.einvoice.produce import produce
from documents.einvoice.profiles import profile_for

SELLER = Party(
    name="Northwind Software GmbH",
    address=Address("Friedrichstraße 123", "", "Berlin", "10117", "", "DE"),
    vat_id="DE123456789",
    endpoint_scheme="9930",
    endpoint_id="DE123456789",
    contact_name="AR",
    contact_phone="+49 30 1234567",
    contact_email="billing@northwind.example",
)
BUYER = Party(
    name="Voorbeeld BV",
    address=Address("Wetstraat 16", "", "Brussel", "1000", "", "BE"),
    vat_id="BE0123456749",
    endpoint_scheme="0208",
    endpoint_id="0123456749",
)


def _line(category: str = "S", rate: str = "21") -> Line:
    return Line(
        "1",
        "Development",
        "",
        Decimal(10),
        "HUR",
        Decimal(100),
        Decimal("1000.00"),
        Decimal(0),
        Decimal(0),
        Decimal("1000.00"),
        category,
        Decimal(rate),
    )


def invoice(**overrides: object) -> EInvoice:
    lines = overrides.pop("lines", None) or (_line(),)  # type: ignore[assignment]
    reasons = overrides.pop("reasons", {})  # type: ignore[assignment]
    groups = tax_groups(lines, reasons, "EUR")  # type: ignore[arg-type]
    tax = sum((g.tax for g in groups), Decimal(0))
    doc = EInvoice(
        kind="invoice",
        number="INV-1",
        issue_date=date(2026, 12, 1),
        due_date=date(2026, 12, 31),
        currency="EUR",
        seller=SELLER,
        buyer=BUYER,
        lines=lines,  # type: ignore[arg-type]
        tax_groups=groups,
        line_total=Decimal("1000.00"),
        tax_total=tax,
        total=Decimal("1000.00") + tax,
        prepaid=Decimal("0.00"),
        payment_terms="Net 30",
        buyer_reference="PO-1",
        delivery_date=date(2026, 12, 1),
        iban="DE89370400440532013000",
        payment_means="58",
        payment_reference="INV-1",
    )
    return replace(doc, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pool() -> Iterator[EInvoicePool]:
    pool = EInvoicePool(1)
    yield pool
    pool.shutdown()


def failed(doc: EInvoice, fmt: str, pool: EInvoicePool) -> set[str]:
    return {e["id"] for e in produce(doc, profile_for(fmt), pool).errors}


def test_the_baseline_passes_everywhere(pool: EInvoicePool) -> None:
    for fmt in ("ubl", "cii", "xrechnung-ubl", "xrechnung-cii"):
        assert failed(invoice(), fmt, pool) == set(), fmt


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_cen_totals_and_buyer_country(fmt: str, pool: EInvoicePool) -> None:
    assert {"BR-CO-14", "BR-CO-15"} <= failed(invoice(tax_total=Decimal("1.00")), fmt, pool)
    no_country = replace(BUYER, address=replace(BUYER.address, country=""))
    assert "BR-11" in failed(invoice(buyer=no_country), fmt, pool) or "BR-CL-14" in failed(
        invoice(buyer=no_country), fmt, pool
    )


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_cen_vat_categories(fmt: str, pool: EInvoicePool) -> None:
    exempt = (_line("E", "0"),)
    assert "BR-E-10" in failed(invoice(lines=exempt), fmt, pool)  # exempt without a reason
    reverse = (_line("AE", "0"),)
    no_vat = replace(BUYER, vat_id="")
    assert "BR-AE-02" in failed(
        invoice(lines=reverse, buyer=no_vat, reasons={"AE": "Reverse charge"}), fmt, pool
    )
    intra = (_line("K", "0"),)
    assert "BR-IC-02" in failed(
        invoice(lines=intra, buyer=no_vat, reasons={"K": "Intra-community"}), fmt, pool
    )


def test_peppol_rules(pool: EInvoicePool) -> None:
    no_endpoint = replace(BUYER, endpoint_id="", endpoint_scheme="")
    assert "PEPPOL-EN16931-R010" in failed(invoice(buyer=no_endpoint), "ubl", pool)
    assert "PEPPOL-EN16931-R003" in failed(invoice(buyer_reference=""), "ubl", pool)
    # The CEN rules alone do not ask for either: it is the Peppol set that fired.
    assert failed(invoice(buyer=no_endpoint, buyer_reference=""), "cii", pool) == set()


@pytest.mark.parametrize("fmt", ["xrechnung-ubl", "xrechnung-cii"])
def test_xrechnung_rules(fmt: str, pool: EInvoicePool) -> None:
    assert "BR-DE-15" in failed(invoice(buyer_reference=""), fmt, pool)
    no_city = replace(BUYER, address=replace(BUYER.address, city=""))
    assert "BR-DE-8" in failed(invoice(buyer=no_city), fmt, pool)
    no_contact = replace(SELLER, contact_name="", contact_phone="", contact_email="")
    assert "BR-DE-2" in failed(invoice(seller=no_contact), fmt, pool)


def test_a_currency_with_three_decimals_is_refused_not_rounded(pool: EInvoicePool) -> None:
    with pytest.raises(EInvoiceRefused, match="KWD has 3 decimals"):
        amount(Decimal("1.234"), "KWD")
    produced = produce(invoice(currency="KWD"), profile_for("ubl"), pool)
    assert not produced.valid and produced.errors[0]["id"] == "BR-DEC"
    assert "KWD has 3 decimals" in produced.errors[0]["text"]


def _crash() -> None:
    os._exit(7)  # what a segfault in native code looks like to the pool


def test_a_crash_in_the_rules_process_costs_only_that_process() -> None:
    pool = EInvoicePool(1)
    try:
        [before] = [pool.call(os.getpid)] and pool.pids()
        with pytest.raises(BrokenProcessPool):
            pool.call(_crash)
        assert os.getpid() not in pool.pids()
        assert failed(invoice(), "cii", pool) == set()  # a new child validates the next document
        assert before not in pool.pids()
    finally:
        pool.shutdown()
