"""Invoices for the e-invoice tests, written through the real persistence code (create, issue, credit
notes, customer credit) into the test database; the seller is a German IT company."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from billing.totals import LineInput
from core.settings import Settings
from persistence import credit_notes, customer_credit
from persistence import invoices as repo
from persistence.models import CreditNote, Customer, Invoice
from workflows.payloads import CreditNoteInput, TermsLine

SELLER = {
    "seller_name": "Northwind Software GmbH",
    "seller_street": "Friedrichstraße 123",
    "seller_city": "Berlin",
    "seller_postal_code": "10117",
    "seller_country": "DE",
    "seller_vat_id": "DE123456789",
    "seller_legal_id": "HRB 123456 B",
    "seller_iban": "DE89370400440532013000",
    "seller_bic": "COBADEFFXXX",
    "seller_endpoint": "9930:DE123456789",
    "seller_contact_name": "Accounts receivable",
    "seller_contact_phone": "+49 30 1234567",
    "seller_contact_email": "billing@northwind.example",
}
AS_OF = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

BUYERS: dict[str, dict[str, Any]] = {
    "de": {
        "name": "Globex Deutschland GmbH",
        "address_line1": "Königsallee 1",
        "city": "Düsseldorf",
        "postal_code": "40212",
        "country": "DE",
        "tax_id": "DE987654321",
        "endpoint": "9930:DE987654321",
        "buyer_reference": "GLOBEX-AP",
        "einvoice_format": "facturx",
    },
    "fr": {
        "name": "Société Exemple SAS",
        "address_line1": "10 rue de Rivoli",
        "city": "Paris",
        "postal_code": "75001",
        "country": "FR",
        "tax_id": "FR61954506077",
        "endpoint": "9957:FR61954506077",
        "buyer_reference": "SEX-2026",
        "einvoice_format": "peppol",
    },
    "at": {
        "name": "Beispiel Handels GmbH",
        "address_line1": "Ringstraße 5",
        "city": "Wien",
        "postal_code": "1010",
        "country": "AT",
        "tax_id": "ATU12345678",
        "endpoint": "9914:ATU12345678",
        "buyer_reference": "BH-77",
        "einvoice_format": "peppol",
    },
    "be": {
        "name": "Voorbeeld BV",
        "address_line1": "Wetstraat 16",
        "city": "Brussel",
        "postal_code": "1000",
        "country": "BE",
        "tax_id": "BE0123456749",
        "endpoint": "0208:0123456749",
        "buyer_reference": "PO-BE-1",
        "einvoice_format": "peppol",
    },
    "de_public": {
        "name": "Stadtverwaltung Musterstadt",
        "address_line1": "Rathausplatz 1",
        "city": "Musterstadt",
        "postal_code": "12345",
        "country": "DE",
        "endpoint": "0204:991-01234-56",
        "buyer_reference": "991-01234-56",
        "einvoice_format": "xrechnung",
    },
    "jp": {
        "name": "Example KK",
        "address_line1": "1-1 Marunouchi",
        "city": "Tokyo",
        "postal_code": "100-0005",
        "country": "JP",
        "endpoint": "0088:4012345000009",
        "buyer_reference": "EX-JP",
        "einvoice_format": "peppol",
        "currency": "JPY",
    },
}


def line(description: str, quantity: str, price: str, rate: str, **extras: Any) -> dict[str, Any]:
    return {"description": description, "quantity": quantity, "unit_price": price, "tax_rate": rate, **extras}


@dataclass
class Case:
    buyer: str
    lines: list[dict[str, Any]]
    currency: str = "EUR"
    references: dict[str, Any] = field(default_factory=dict)
    credit_before: str | None = None  # customer credit applied at issue → prepaid amount (BT-113)


def make_customer(session: Session, key: str) -> Customer:
    values = dict(BUYERS[key])
    currency = values.pop("currency", "EUR")
    customer = Customer(
        emails=[f"ap+{uuid.uuid4().hex[:6]}@buyer.example"],
        currency=currency,
        timezone="Europe/Berlin",
        payment_terms="net_30",
        tags=[],
        address="",
        **values,
    )
    session.add(customer)
    session.flush()
    return customer


def make_invoice(session: Session, case: Case, settings: Settings) -> Invoice:
    customer = make_customer(session, case.buyer)
    inputs = [
        LineInput(
            description=item["description"],
            quantity=Decimal(item["quantity"]),
            unit_price=Decimal(item["unit_price"]),
            discount_percent=Decimal(item.get("discount_percent", "0")),
            discount_amount=Decimal(item.get("discount_amount", "0")),
            tax_rate=Decimal(item["tax_rate"]),
        )
        for item in case.lines
    ]
    extras = [
        {k: item[k] for k in ("unit", "tax_category", "tax_exemption_reason") if k in item}
        for item in case.lines
    ]
    invoice = repo.create_invoice(
        session,
        repo.NewInvoice(
            customer=customer,
            currency=case.currency,
            lines=inputs,
            payment_terms="net_30",
            line_extras=extras,
            references=case.references,
        ),
    )
    if case.credit_before:
        customer_credit.record(
            session,
            customer_id=customer.id,
            currency=case.currency,
            amount=Decimal(case.credit_before),
            kind="overpayment",
            dedupe_key=f"test:{uuid.uuid4()}",
        )
    repo.issue(
        session,
        invoice.id,
        as_of=AS_OF,
        number_prefix=f"T{uuid.uuid4().hex[:4].upper()}",
        default_offsets=(0,),
        send_hour=9,
    )
    session.flush()
    session.expire_all()
    return repo.get_invoice(session, invoice.id)


def credit_part(session: Session, invoice: Invoice, lines: list[dict[str, str]]) -> CreditNote:
    invoice.status = "open"
    session.flush()
    outcome = credit_notes.issue_credit_note(
        session,
        invoice.id,
        CreditNoteInput(
            reason="Sprint 2 partly not delivered",
            idempotency_key=f"cn-{uuid.uuid4().hex[:8]}",
            lines=[TermsLine(**item) for item in lines],
        ),
        past_due=False,
        as_of=AS_OF,
        number_prefix=f"C{uuid.uuid4().hex[:4].upper()}",
    )
    session.flush()
    note = session.get(CreditNote, uuid.UUID(outcome.credit_note_id))
    assert note is not None
    return note


PERIOD = {"period_start": date(2026, 11, 1), "period_end": date(2026, 11, 30)}
