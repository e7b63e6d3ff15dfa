"""Invoice and credit-note rows (plus the seller settings) → the neutral ``EInvoice``.

Reads only what the rows and settings hold, inside the caller's session; no XML here. Derived terms:
the project reference (BT-11) from the invoice's project, the invoicing period (BT-73/74) of a
subscription cycle from its calendar (the cycle's date to the day before the next cycle), the prepaid
amount (BT-113) from customer credit applied at issue, the VAT category of a credit-note line from the
credited invoice's line at the same rate.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from billing.einvoice_rules import ENDPOINT, NEEDS_REASON, currency_problem, line_category
from billing.money import quantize
from billing.recurrence import cycle_date
from core.settings import Settings
from documents.builders import CREDIT_METHOD, terms_label
from documents.einvoice.model import (
    Address,
    EInvoice,
    EInvoiceRefused,
    Line,
    Party,
    check_totals,
    tax_groups,
)
from persistence.models import (
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceLine,
    Project,
    Subscription,
)
from persistence.subscriptions import recurrence_of

NAME_LIMIT = 100


def _endpoint(value: str) -> tuple[str, str]:
    match = ENDPOINT.match(value.strip())
    return (match.group(1), match.group(2)) if match else ("", "")


def seller_party(settings: Settings) -> Party:
    scheme, ident = _endpoint(settings.seller_endpoint)
    return Party(
        name=settings.seller_name,
        address=Address(
            line1=settings.seller_street,
            line2=settings.seller_street2,
            city=settings.seller_city,
            postal_code=settings.seller_postal_code,
            region=settings.seller_region,
            country=settings.seller_country.upper(),
        ),
        vat_id=settings.seller_vat_id or settings.seller_tax_id,
        legal_id=settings.seller_legal_id,
        legal_form=settings.seller_legal_form,
        endpoint_scheme=scheme,
        endpoint_id=ident,
        contact_name=settings.seller_contact_name,
        contact_phone=settings.seller_contact_phone,
        contact_email=settings.seller_contact_email,
    )


def buyer_party(customer: Customer) -> Party:
    scheme, ident = _endpoint(customer.endpoint or "")
    line1 = customer.address_line1
    if not line1 and customer.address and not customer.city:
        line1 = customer.address.splitlines()[0].strip()  # free text only: its first line
    return Party(
        name=customer.name,
        address=Address(
            line1=line1,
            line2=customer.address_line2,
            city=customer.city,
            postal_code=customer.postal_code,
            region=customer.region,
            country=(customer.country or "").upper(),
        ),
        vat_id=customer.tax_id,
        endpoint_scheme=scheme,
        endpoint_id=ident,
        contact_email=customer.emails[0] if customer.emails else "",
    )


def _name_and_description(text: str) -> tuple[str, str]:
    """BT-153 (item name) is short; a longer text keeps its whole wording in BT-154."""
    first = text.strip().splitlines()[0] if text.strip() else "Item"
    if len(first) <= NAME_LIMIT and first == text.strip():
        return first, ""
    return first[:NAME_LIMIT], text.strip()


def _line(row: InvoiceLine | CreditNoteLine, index: int, category: str, unit: str, reason: str = "") -> Line:
    """``reason``: the exemption reason; on a zero-rated line it becomes the line note (BR-Z-10)."""
    name, description = _name_and_description(row.description)
    return Line(
        id=str(index + 1),
        name=name,
        description=description,
        quantity=row.quantity,
        unit=unit,
        unit_price=row.unit_price,
        gross=row.gross,
        discount=row.discount,
        discount_percent=row.discount_percent,
        net=row.net,
        category=category,
        rate=row.tax_rate.normalize() if row.tax_rate else Decimal(0),
        note=reason.strip() if category == "Z" else "",
    )


def _reasons(rows: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for category, reason in rows:
        # Only these categories carry a reason in the VAT breakdown (BR-E-10 ...; BR-S-10, BR-Z-10 forbid it).
        if reason.strip() and category in NEEDS_REASON and category not in out:
            out[category] = reason.strip()
    return out


def _period(session: Session, invoice: Invoice) -> tuple:  # type: ignore[type-arg]
    if invoice.period_start or invoice.period_end:
        return invoice.period_start, invoice.period_end
    if invoice.subscription_id is None or invoice.subscription_cycle is None:
        return None, None
    sub = session.get(Subscription, invoice.subscription_id)
    if sub is None:
        return None, None
    rec = recurrence_of(sub)
    start = cycle_date(rec, invoice.subscription_cycle)
    return start, cycle_date(rec, invoice.subscription_cycle + 1) - timedelta(days=1)


def _refuse_currency(currency: str) -> None:
    problem = currency_problem(currency)
    if problem:
        raise EInvoiceRefused(problem)


def _payment(settings: Settings, currency: str) -> dict[str, str]:
    iban = settings.seller_iban.replace(" ", "").upper()
    if not iban:
        return {"iban": "", "bic": "", "payment_means": "1"}
    return {
        "iban": iban,
        "bic": settings.seller_bic.replace(" ", "").upper(),
        "payment_means": "58" if currency == "EUR" else "30",
    }


def from_invoice(session: Session, invoice: Invoice, settings: Settings) -> EInvoice:
    if invoice.number is None or invoice.issue_date is None:
        raise EInvoiceRefused("the invoice is not issued yet: an e-invoice needs its number and date")
    cur = invoice.currency
    _refuse_currency(cur)
    lines = tuple(
        _line(
            row, i, line_category(row.tax_rate, row.tax_category), row.unit or "C62", row.tax_exemption_reason
        )
        for i, row in enumerate(invoice.lines)
    )
    reasons = _reasons(
        [(line_category(r.tax_rate, r.tax_category), r.tax_exemption_reason) for r in invoice.lines]
    )
    project_ref = invoice.project_ref
    if not project_ref and invoice.project_id is not None:
        project = session.get(Project, invoice.project_id)
        project_ref = project.name[:200] if project is not None else ""
    start, end = _period(session, invoice)
    prepaid = sum((p.amount for p in invoice.payments if p.method == CREDIT_METHOD), Decimal(0))
    customer = invoice.customer
    doc = EInvoice(
        kind="invoice",
        number=invoice.number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=cur,
        seller=seller_party(settings),
        buyer=buyer_party(customer),
        lines=lines,
        tax_groups=tax_groups(lines, reasons, cur),
        line_total=invoice.subtotal,
        tax_total=invoice.tax_total,
        total=invoice.total,
        prepaid=quantize(prepaid, cur),
        payment_terms=terms_label(invoice.payment_terms),
        note=invoice.notes.strip(),
        buyer_reference=customer.buyer_reference,
        purchase_order=invoice.purchase_order,
        contract_ref=invoice.contract_ref,
        project_ref=project_ref,
        period_start=start,
        period_end=end,
        delivery_date=None if start else invoice.issue_date,
        payment_reference=invoice.number,
        **_payment(settings, cur),
    )
    check_totals(doc)
    return doc


def from_credit_note(session: Session, note: CreditNote, settings: Settings) -> EInvoice:
    invoice = note.invoice
    cur = note.currency
    _refuse_currency(cur)
    by_rate: dict[Decimal, InvoiceLine] = {}
    for row in invoice.lines:
        by_rate.setdefault(row.tax_rate.normalize() if row.tax_rate else Decimal(0), row)
    lines = []
    reasons: list[tuple[str, str]] = []
    for i, row in enumerate(note.lines):
        rate = row.tax_rate.normalize() if row.tax_rate else Decimal(0)
        source = by_rate.get(rate)
        category = line_category(rate, source.tax_category if source is not None else None)
        reason = source.tax_exemption_reason if source is not None else ""
        lines.append(_line(row, i, category, source.unit if source is not None else "C62", reason))
        reasons.append((category, reason))
    customer = invoice.customer
    doc = EInvoice(
        kind="credit_note",
        number=note.number,
        issue_date=note.issue_date,
        currency=cur,
        seller=seller_party(settings),
        buyer=buyer_party(customer),
        lines=tuple(lines),
        tax_groups=tax_groups(lines, _reasons(reasons), cur),
        line_total=note.subtotal,
        tax_total=note.tax_total,
        total=note.total,
        prepaid=quantize(Decimal(0), cur),
        note=note.reason,
        buyer_reference=customer.buyer_reference,
        purchase_order=invoice.purchase_order,
        contract_ref=invoice.contract_ref,
        preceding_number=invoice.number or "",
        preceding_date=invoice.issue_date,
        delivery_date=note.issue_date,
        payment_reference=note.number,
        **_payment(settings, cur),
    )
    check_totals(doc)
    return doc
