"""A write-off (an invoice marked uncollectible) as the books take one: a bad-debt credit note.

Xero ("Create and apply credit"), QuickBooks Online (a credit memo of a Bad Debt item, applied to the
invoice) and FreshBooks (a credit note applied to the invoice) all document the write-off of an unpaid
invoice as a credit for what is still owed, coded to a bad-debt account and applied to it; none of the
three has a write-off call in its API. So the write-off goes over as a credit note numbered
``WO-<invoice number>`` with one line: what was still due, to ``INVOICEFLOW_ACCOUNTING_BAD_DEBT_ACCOUNT``
(a Xero expense account code, a QBO Bad Debt Item id; unset: the sales account), at the provider's no-tax
code: the amount written off is the gross amount due; whether tax on it can be reclaimed (bad-debt relief)
is the accountant's entry to make. The connector's ``record_credit_note`` creates it once (found by its
number on a retry) and applies all of it to the invoice, so the books show nothing due, as we do.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from zoneinfo import ZoneInfo

from accounting.base import AccountingCreditNote
from accounting.mapping import LineSpec, build_invoice
from accounting.reconcile import NO_TAX, accounting_customer, customer_system, tax_code_map
from core.settings import Settings
from persistence.models import Invoice

NUMBER_PREFIX = "WO-"


def write_off_number(invoice_number: str) -> str:
    return f"{NUMBER_PREFIX}{invoice_number}"


def write_off_for_sync(
    invoice: Invoice, settings: Settings, provider: str, tenant_id: str, invoice_external_id: str
) -> AccountingCreditNote | None:
    """The bad-debt credit note of an uncollectible invoice, or None when nothing was left to write off."""
    amount = invoice.amount_due
    if invoice.number is None or amount <= 0:
        return None
    system = customer_system(provider, tenant_id)
    customer = invoice.customer
    external = next((e.external_id for e in customer.external_ids if e.system == system), None)
    closed = (invoice.closed_at or invoice.updated_at).astimezone(UTC)
    written_on = closed.astimezone(ZoneInfo(customer.timezone)).date()
    account = settings.accounting_bad_debt_account or settings.accounting_sales_account
    document = build_invoice(
        invoice_id=f"write-off:{invoice.id}",
        number=write_off_number(invoice.number),
        customer=accounting_customer(customer, external),
        issue_date=written_on,
        due_date=written_on,
        currency=invoice.currency,
        lines=[
            LineSpec(
                f"Bad debt written off: {invoice.number}",
                Decimal(1),
                amount,
                Decimal(0),
                account,
                tax_code_map(settings).get(Decimal(0), NO_TAX[provider]),
            )
        ],
        reference=invoice.number,
    )
    return AccountingCreditNote(
        credit_note_id=f"write-off:{invoice.id}",
        invoice_external_id=invoice_external_id,
        document=document,
        allocate=amount,
    )
