"""Invoices, customers and connectors for the accounting tests (real stand-ins on loopback)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from accounting.base import AccountingCustomer, AccountingInvoice
from accounting.mapping import LineSpec, build_invoice

D = Decimal


def customer(tag: str = "1", *, currency: str = "USD", external_id: str | None = None) -> AccountingCustomer:
    return AccountingCustomer(
        customer_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"invoiceflow-test-customer-{tag}")),  # like ours
        name=f"Globex {tag}",
        email=f"ap-{tag}@globex.example",
        currency=currency,
        external_id=external_id,
    )


def invoice(
    number: str = "INV-1042",
    *,
    who: AccountingCustomer | None = None,
    lines: list[LineSpec] | None = None,
) -> AccountingInvoice:
    """Three lines at three tax rates, with a fractional quantity and a 4-decimal unit price, so every
    rounding rule is exercised: 1,875.00 + 99.99 + 1.00 net, 390.00 tax, 2,365.99 total."""
    return build_invoice(
        invoice_id=f"inv_{number}",
        number=number,
        customer=who or customer(),
        issue_date=date(2024, 6, 10),
        due_date=date(2024, 7, 10),
        currency="USD",
        lines=lines
        or [
            LineSpec("Consulting, June", D("12.5"), D("150.00"), D("20"), "200", "OUTPUT2"),
            LineSpec("Hosting", D("1"), D("99.99"), D("15"), "200", "OUTPUT"),
            LineSpec("Printing", D("3"), D("0.3333"), D("0"), "200", "NONE"),
        ],
    )
