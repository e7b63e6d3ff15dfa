"""Turns invoice rows into what templates show: formatted money, dates, parties. No arithmetic here:
every amount was computed by ``billing.totals`` when the invoice was created."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from billing.currency import minor_units
from billing.money import format_money
from billing.status import InvoiceStatus
from core.links import sign_invoice_page
from core.settings import Settings
from documents.rendering import DocumentLine, DocumentTotal, InvoiceDocument, Party
from persistence.models import CreditNote, CreditNoteLine, Estimate, Invoice, InvoiceLine

CREDIT_METHOD = "customer_credit"  # persistence.invoices.CREDIT_METHOD: credit applied at issue


def _rate(rate: Decimal) -> str:
    return f"{rate.normalize():f}%" if rate else ""


def _qty(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _unit_price(value: Decimal, currency: str) -> str:
    """Unit prices may carry more decimals than the currency (e.g. 0.0125 per API call): show them."""
    exact = value.normalize()
    if -exact.as_tuple().exponent > minor_units(currency):  # type: ignore[operator]
        return f"{exact:f} {currency}"
    return format_money(value, currency)


def terms_label(code: str) -> str:
    if code == "due_on_receipt":
        return "Due on receipt"
    if code == "eom":
        return "End of month"
    parts = code.split("_")
    if parts[0] == "net" and len(parts) == 2:
        return f"Net {parts[1]}"
    if parts[0] == "net" and len(parts) == 3 and parts[2] == "eom":
        return f"Net {parts[1]} EOM"
    return code


def _document_lines(lines: Iterable[InvoiceLine | CreditNoteLine], cur: str) -> tuple[DocumentLine, ...]:
    return tuple(
        DocumentLine(
            description=line.description,
            quantity=_qty(line.quantity),
            unit_price=_unit_price(line.unit_price, cur),
            discount=("-" + format_money(line.discount, cur)) if line.discount else "",
            tax_rate=_rate(line.tax_rate),
            amount=format_money(line.net, cur),
        )
        for line in lines
    )


def _subtotal_and_tax(
    lines: Iterable[InvoiceLine | CreditNoteLine], subtotal: Decimal, tax_total: Decimal, cur: str
) -> list[DocumentTotal]:
    """Subtotal, then one tax row naming every rate used (an invoice and its credit note alike)."""
    totals = [DocumentTotal("Subtotal", format_money(subtotal, cur))]
    rates = sorted({line.tax_rate for line in lines if line.tax_rate})
    if tax_total or rates:
        label = "Tax " + ", ".join(_rate(r) for r in rates) if rates else "Tax"
        totals.append(DocumentTotal(label, format_money(tax_total, cur)))
    return totals


def invoice_document(invoice: Invoice, settings: Settings, *, pay_url: str = "") -> InvoiceDocument:
    cur = invoice.currency
    customer = invoice.customer
    lines = _document_lines(invoice.lines, cur)
    totals = _subtotal_and_tax(invoice.lines, invoice.subtotal, invoice.tax_total, cur)
    credited = invoice.amount_credited or Decimal(0)
    reduced = bool(invoice.amount_paid) or bool(credited)
    totals.append(DocumentTotal("Total", format_money(invoice.total, cur), emphasis=not reduced))
    if reduced:
        applied = sum((p.amount for p in invoice.payments if p.method == CREDIT_METHOD), Decimal(0))
        received = invoice.amount_paid - applied
        if applied:
            totals.append(DocumentTotal("Credit applied", "-" + format_money(applied, cur)))
        if received:
            totals.append(DocumentTotal("Paid", "-" + format_money(received, cur)))
        if credited:
            totals.append(DocumentTotal("Credited", "-" + format_money(credited, cur)))
        totals.append(DocumentTotal("Amount due", format_money(invoice.amount_due, cur), emphasis=True))
    stamp = ""
    if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.CREDITED):
        stamp = str(invoice.status).upper()
    return InvoiceDocument(
        title="Invoice",
        number=invoice.number or "DRAFT",
        issue_date=invoice.issue_date.isoformat() if invoice.issue_date else "",
        due_date=invoice.due_date.isoformat() if invoice.due_date else "",
        currency=cur,
        seller=Party(
            name=settings.seller_name, address=settings.seller_address, tax_id=settings.seller_tax_id
        ),
        customer=Party(
            name=customer.name,
            address=customer.address,
            email=", ".join(customer.emails),
            tax_id=customer.tax_id,
        ),
        lines=lines,
        totals=tuple(totals),
        notes=invoice.notes,
        terms=terms_label(invoice.payment_terms),
        status_stamp=stamp,
        pay_url=pay_url,
    )


def credit_note_document(note: CreditNote, settings: Settings) -> InvoiceDocument:
    """A credit note laid out by the invoice template: its own title and number, the invoice it credits,
    its lines and totals, and the reason as its note."""
    invoice = note.invoice
    cur = note.currency
    customer = invoice.customer
    lines = _document_lines(note.lines, cur)
    totals = _subtotal_and_tax(note.lines, note.subtotal, note.tax_total, cur)
    totals.append(DocumentTotal("Total credited", format_money(note.total, cur), emphasis=True))
    if note.to_customer_credit:
        totals.append(
            DocumentTotal("Of which credit for your next invoice", format_money(note.to_customer_credit, cur))
        )
    return InvoiceDocument(
        title="Credit note",
        number=note.number,
        issue_date=note.issue_date.isoformat(),
        due_date="",
        currency=cur,
        seller=Party(
            name=settings.seller_name, address=settings.seller_address, tax_id=settings.seller_tax_id
        ),
        customer=Party(
            name=customer.name,
            address=customer.address,
            email=", ".join(customer.emails),
            tax_id=customer.tax_id,
        ),
        lines=lines,
        totals=tuple(totals),
        notes=f"Reason: {note.reason}",
        number_label="Credit note number",
        reference_label="Credits invoice",
        reference=invoice.number or "",
    )


def credit_note_context(note: CreditNote) -> dict[str, object]:
    """What the ``credit_note`` email adds to the invoice's context."""
    return {
        "credit_note_number": note.number,
        "credit_note_total": format_money(note.total, note.currency),
        "reason": note.reason,
    }


def hosted_invoice_url(invoice: Invoice, settings: Settings) -> str:
    """The client's hosted invoice page (an issued invoice only: a draft is not theirs to see)."""
    if invoice.number is None:
        return ""
    return f"{settings.public_url.rstrip('/')}/i/{sign_invoice_page(settings.secret_key, str(invoice.id))}"


def email_context(invoice: Invoice, settings: Settings, *, offset_days: int = 0) -> dict[str, object]:
    cur = invoice.currency
    return {
        "customer_name": invoice.customer.name,
        "seller_name": settings.seller_name,
        "number": invoice.number or "",
        "total": format_money(invoice.total, cur),
        "amount_due": format_money(invoice.amount_due, cur),
        "amount_paid": format_money(invoice.amount_paid, cur),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
        "currency": cur,
        "pay_url": hosted_invoice_url(invoice, settings),
        "offset_days": offset_days,
        "owner_name": invoice.customer.owner_email or "",
    }


def estimate_context(estimate: Estimate, settings: Settings, estimate_url: str) -> dict[str, object]:
    cur = estimate.currency
    return {
        "customer_name": estimate.customer.name,
        "seller_name": settings.seller_name,
        "number": estimate.number,
        "total": format_money(estimate.total, cur),
        "currency": cur,
        "valid_until": estimate.valid_until.isoformat(),
        "estimate_url": estimate_url,
    }
