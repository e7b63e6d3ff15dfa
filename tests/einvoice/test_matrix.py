"""Every document of the matrix passes the official rules with zero errors: CEN EN 16931 (UBL and
CII), Peppol BIS Billing 3.0 on the UBL, KoSIT XRechnung 3.0 on the XRechnung documents. The invoices
are written and issued by the real persistence code; the rules run in an e-invoice pool child, as in
the worker."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from lxml import etree

from core.settings import Settings
from documents.einvoice.build import from_credit_note, from_invoice
from documents.einvoice.pool import EInvoicePool
from documents.einvoice.produce import produce, summary
from documents.einvoice.profiles import profile_for
from persistence.db import session_scope
from tests.einvoice.cases import PERIOD, SELLER, Case, credit_part, line, make_invoice

S19 = line("Backend engineering, sprint 1", "40", "125.00", "19", unit="HUR")
CASES: dict[str, Case] = {
    "two_vat_rates": Case("de", [S19, line("Technical handbook (printed)", "3", "49.90", "7")]),
    "zero_rated_and_exempt": Case(
        "de",
        [
            S19,
            line(
                "Export documentation",
                "1",
                "300.00",
                "0",
                tax_category="Z",
                tax_exemption_reason="Zero rated",
            ),
            line(
                "Certified training course",
                "2",
                "450.00",
                "0",
                unit="DAY",
                tax_category="E",
                tax_exemption_reason="Exempt: education services, Art. 132(1)(i) VAT Directive",
            ),
        ],
    ),
    "reverse_charge": Case(
        "fr",
        [
            line(
                "Cloud migration consulting",
                "8",
                "1100.00",
                "0",
                unit="DAY",
                tax_category="AE",
                tax_exemption_reason="Reverse charge",
            )
        ],
        references={"purchase_order": "PO-4711", "contract_ref": "MSA-2026-01"},
    ),
    "intra_community": Case(
        "at",
        [
            line(
                "Network appliances (supply of goods)",
                "4",
                "899.00",
                "0",
                tax_category="K",
                tax_exemption_reason="Intra-community supply",
            )
        ],
    ),
    "line_discounts": Case(
        "de",
        [
            line("Managed hosting", "12", "99.99", "19", unit="MON", discount_percent="12.5"),
            line("Onboarding workshop", "1", "1500.00", "19", discount_amount="250.00"),
        ],
    ),
    "milestone_after_deposit": Case(
        "de",
        [
            line(
                "Milestone 2: API delivered (deposit applied)",
                "1",
                "7000.00",
                "19",
                discount_amount="2100.00",
            )
        ],
        references={"project_ref": "Portal rebuild", "contract_ref": "SOW-17"},
        credit_before="1000.00",
    ),
    "recurring_cycle": Case(
        "de", [line("Managed services retainer", "1", "2400.00", "19", unit="MON")], references=PERIOD
    ),
    "jpy": Case(
        "jp",
        [
            line(
                "Consulting (JPY)",
                "3",
                "150000",
                "0",
                tax_category="G",
                tax_exemption_reason="Export outside the EU",
            )
        ],
        currency="JPY",
    ),
    "german_public_buyer": Case("de_public", [S19, line("Licence", "1", "999.00", "19")], references=PERIOD),
    "belgian_buyer": Case("be", [line("Software development", "30", "95.00", "21", unit="HUR")]),
}
FORMATS = {
    "german_public_buyer": ("xrechnung-ubl", "xrechnung-cii", "ubl", "cii"),
    "jpy": ("ubl", "cii"),
}


@pytest.fixture(scope="module")
def pool() -> Iterator[EInvoicePool]:
    pool = EInvoicePool(1)
    yield pool
    pool.shutdown()


@pytest.fixture
def settings(pg_url: str) -> Settings:
    return Settings(database_url=pg_url, **SELLER)  # type: ignore[arg-type]


def _assert_clean(produced, fmt: str) -> None:  # type: ignore[no-untyped-def]
    assert produced.errors == [], f"{fmt}: {summary(produced.errors, limit=20)}"
    assert produced.content == produced.xml and produced.xml.startswith(b"<?xml")


@pytest.mark.parametrize("name", sorted(CASES))
def test_matrix_documents_pass_the_official_rules(name: str, settings: Settings, pool: EInvoicePool) -> None:
    case = CASES[name]
    with session_scope(settings.require_database_url()) as session:
        invoice = make_invoice(session, case, settings)
        doc = from_invoice(session, invoice, settings)
        for fmt in FORMATS.get(name, ("ubl", "cii")):
            produced = produce(doc, profile_for(fmt), pool)
            _assert_clean(produced, fmt)
    # The document says what the case is about (a passing document that lost the point would be no test).
    root = etree.fromstring(produce(doc, profile_for("ubl"), pool).xml)
    ns = {
        "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
        "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    }
    categories = sorted(set(root.xpath("//cac:TaxSubtotal/cac:TaxCategory/cbc:ID/text()", namespaces=ns)))
    expected = {
        "two_vat_rates": ["S"],
        "zero_rated_and_exempt": ["E", "S", "Z"],
        "reverse_charge": ["AE"],
        "intra_community": ["K"],
        "jpy": ["G"],
    }
    if name in expected:
        assert categories == expected[name]
    if name == "two_vat_rates":
        assert sorted(root.xpath("//cac:TaxSubtotal/cac:TaxCategory/cbc:Percent/text()", namespaces=ns)) == [
            "19",
            "7",
        ]
    if name == "milestone_after_deposit":
        assert root.xpath("//cbc:PrepaidAmount/text()", namespaces=ns) == ["1000.00"]
        assert root.xpath("//cac:ProjectReference/cbc:ID/text()", namespaces=ns) == ["Portal rebuild"]
        assert Decimal(root.xpath("//cbc:PayableAmount/text()", namespaces=ns)[0]) == invoice.total - 1000
    if name == "recurring_cycle":
        assert root.xpath("//cac:InvoicePeriod/cbc:StartDate/text()", namespaces=ns) == ["2026-11-01"]
    if name == "jpy":
        assert root.xpath("//cbc:PayableAmount/text()", namespaces=ns) == ["450000"]
    if name == "line_discounts":
        assert root.xpath("//cac:InvoiceLine/cac:AllowanceCharge/cbc:Amount/text()", namespaces=ns) == [
            "149.99",
            "250.00",
        ]


def test_partial_credit_note_passes_the_official_rules(settings: Settings, pool: EInvoicePool) -> None:
    with session_scope(settings.require_database_url()) as session:
        invoice = make_invoice(session, CASES["zero_rated_and_exempt"], settings)
        note = credit_part(
            session,
            invoice,
            [
                {
                    "description": "Sprint 1 hours not delivered",
                    "quantity": "4",
                    "unit_price": "125.00",
                    "tax_rate": "19",
                },
                {
                    "description": "Training day cancelled",
                    "quantity": "1",
                    "unit_price": "450.00",
                    "tax_rate": "0",
                },
            ],
        )
        doc = from_credit_note(session, note, settings)
        assert doc.preceding_number == invoice.number
        for fmt in ("ubl", "cii", "xrechnung-ubl", "xrechnung-cii"):
            produced = produce(doc, profile_for(fmt), pool)
            if fmt.startswith("xrechnung"):  # the buyer reference is required there (BR-DE-15): it is set
                assert doc.buyer_reference
            _assert_clean(produced, fmt)
        root = etree.fromstring(produce(doc, profile_for("ubl"), pool).xml)
        assert etree.QName(root).localname == "CreditNote"
        assert (
            root.findtext(
                "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}CreditNoteTypeCode"
            )
            == "381"
        )
        # The 0 % line is credited in the category of the invoice's 0 % line it credits (Z, the first).
        assert b">Z<" in produced.xml or b">E<" in produced.xml


def test_a_subscription_cycle_carries_its_period(settings: Settings, pool: EInvoicePool) -> None:
    """BT-73/74 of a cycle come from its calendar: from the cycle's date to the day before the next one
    (month-end anchoring: 31 Jan, 28 Feb, 31 Mar ...)."""
    from datetime import date

    from billing.recurrence import Recurrence
    from billing.totals import LineInput
    from persistence import subscriptions
    from tests.einvoice.cases import make_customer

    with session_scope(settings.require_database_url()) as session:
        customer = make_customer(session, "de")
        rec = Recurrence(
            interval="month", interval_count=1, start_date=date(2026, 1, 31), timezone="Europe/Berlin"
        )
        line = LineInput("Managed services", Decimal(1), Decimal("2400.00"), tax_rate=Decimal(19))
        sub = subscriptions.create(
            session,
            subscriptions.NewSubscription(
                customer, "EUR", [line], rec, "net_30", auto_send=True, catch_up="latest"
            ),
        )
        case = Case("de", [S19])
        invoice = make_invoice(session, case, settings)
        invoice.subscription_id, invoice.subscription_cycle = sub.id, 1  # the February cycle
        session.flush()
        doc = from_invoice(session, invoice, settings)
        assert (doc.period_start, doc.period_end) == (date(2026, 2, 28), date(2026, 3, 30))
        for fmt in ("ubl", "cii"):
            _assert_clean(produce(doc, profile_for(fmt), pool), fmt)
