"""The e-invoice fields of customers and invoices at the API edge: the structured address, the checks
that refuse at creation what the official rules would refuse at issue (422 naming the BT and BR), and
the ``einvoice`` block of an invoice. Kept apart from the route modules so they stay small."""

from __future__ import annotations

from fastapi import HTTPException

from api.schemas import EInvoiceOut, InvoiceCreate, PostalAddress
from billing.einvoice_rules import BuyerFacts, LineFacts, Problem, customer_problems, invoice_problems
from documents.einvoice.profiles import CUSTOMER_FORMAT
from persistence.models import Customer, Invoice

ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "region", "country")
COLUMN = {"line1": "address_line1", "line2": "address_line2"}


def apply_address(customer: Customer, value: str | PostalAddress | dict | None) -> None:  # type: ignore[type-arg]
    """Free text stays what the PDF prints; a structured address fills the columns and the text."""
    if value is None:
        return
    if isinstance(value, dict):
        value = PostalAddress(**value)
    if isinstance(value, str):
        customer.address = value
        return
    for name in ADDRESS_FIELDS:
        text = getattr(value, name)
        setattr(customer, COLUMN.get(name, name), text.upper() if name == "country" else text)
    city_line = " ".join(part for part in (value.postal_code, value.city) if part)
    parts = [value.line1, value.line2, city_line, value.region, value.country.upper()]
    customer.address = "\n".join(part for part in parts if part)


def postal_address_out(customer: Customer) -> PostalAddress | None:
    values = {name: getattr(customer, COLUMN.get(name, name)) or "" for name in ADDRESS_FIELDS}
    return PostalAddress(**values) if any(values.values()) else None


def buyer_facts(customer: Customer) -> BuyerFacts:
    return BuyerFacts(
        einvoice_format=customer.einvoice_format or "none",
        country=customer.country or "",
        tax_id=customer.tax_id or "",
        buyer_reference=customer.buyer_reference or "",
        endpoint=customer.endpoint or "",
    )


def refuse(problems: list[Problem]) -> None:
    if problems:
        raise HTTPException(422, detail=[p.detail() for p in problems])


def check_customer(customer: Customer) -> None:
    refuse(customer_problems(buyer_facts(customer)))


def check_invoice(customer: Customer, body: InvoiceCreate, currency: str) -> None:
    lines = [
        LineFacts(
            tax_rate=line.tax_rate,
            tax_category=line.tax_category,
            tax_exemption_reason=line.tax_exemption_reason,
        )
        for line in body.lines
    ]
    refuse(invoice_problems(buyer_facts(customer), lines, currency, purchase_order=body.purchase_order))


def line_extras(body: InvoiceCreate) -> list[dict[str, str | None]]:
    return [
        {
            "unit": line.unit,
            "tax_category": line.tax_category,
            "tax_exemption_reason": line.tax_exemption_reason,
        }
        for line in body.lines
    ]


def einvoice_out(invoice: Invoice) -> EInvoiceOut | None:
    fmt = CUSTOMER_FORMAT.get(invoice.customer.einvoice_format or "none")
    if fmt is None and not invoice.einvoice_status:
        return None
    status = invoice.einvoice_status or "pending"
    return EInvoiceOut(
        format=fmt or "",
        status=status,
        url=f"/invoices/{invoice.id}/einvoice" + (f"?format={fmt}" if fmt else ""),
        errors=list(invoice.einvoice_errors or []) if status == "invalid" else [],
    )
