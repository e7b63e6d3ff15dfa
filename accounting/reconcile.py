"""Our invoices as the accounting provider should hold them, and the check that it does.

``accounting_invoice`` is the one mapping from a stored invoice to an ``AccountingInvoice``: the sync
activity sends what it returns and ``reconcile`` compares against what it returns, so a reported
difference is a real change at the provider (someone edited the invoice there, a payment was recorded
by hand) and never an artefact of two mappings disagreeing.

``reconcile`` reads every invoice marked ``synced`` for the configured organisation back from the
provider (``fetch_invoice``) and reports lines, totals (``accounting.base.drift``), the money paid, the
amount still due (credit notes, credit applied, write-offs) and the voided state that differ. It only
reports: what to do about a difference is an accountant's call.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounting.base import (
    AccountingCreditNote,
    AccountingCustomer,
    AccountingInvoice,
    RemoteInvoice,
    RemoteState,
    drift,
)
from accounting.connection import Connection, open_connection
from accounting.errors import AccountingError, AuthExpired, NotFound, ValidationFailed
from accounting.mapping import LineSpec, build_invoice
from accounting.tokens import resolve_tenant, tokens_used
from billing.money import format_money, quantize
from billing.status import InvoiceStatus
from core.settings import Settings
from persistence.db import session_scope
from persistence.invoices import CREDIT_METHOD
from persistence.models import AccountingSync, CreditNote, Customer, Invoice, Payment, Refund

# The provider's "no tax" code, used for 0 % lines unless INVOICEFLOW_ACCOUNTING_TAX_CODES maps 0.
NO_TAX = {"xero": "NONE", "qbo": "NON", "freshbooks": "", "netsuite": ""}


@dataclass(frozen=True)
class Difference:
    """One synced invoice whose copy at the provider is not ours; ``problems`` are human-readable."""

    invoice_id: str
    number: str
    provider: str
    external_id: str
    problems: tuple[str, ...]


def tax_code_map(settings: Settings) -> dict[Decimal, str]:
    """``"19=OUTPUT2,0=NONE"`` → {19: "OUTPUT2", 0: "NONE"} (19, 19.0 and 19.00 are one key)."""
    mapping: dict[Decimal, str] = {}
    for part in settings.accounting_tax_codes.split(","):
        if not part.strip():
            continue
        rate, sep, code = part.partition("=")
        try:
            key = Decimal(rate.strip())
        except InvalidOperation:
            key = None
        if not sep or key is None or not key.is_finite():
            raise ValidationFailed(
                f"INVOICEFLOW_ACCOUNTING_TAX_CODES: {part.strip()!r} is not rate=code (e.g. 19=OUTPUT2)",
                status_code=None,
            )
        mapping[key] = code.strip()
    return mapping


def customer_system(provider: str, tenant_id: str) -> str:
    """The ``CustomerExternalId.system`` of one organisation (a customer's contact id in one Xero
    organisation means nothing in another). The column holds 40 characters; a Xero tenant id is a UUID,
    so long ones are shortened to a stable digest."""
    system = f"{provider}:{tenant_id}"
    if len(system) <= 40:
        return system
    return f"{provider}:" + hashlib.sha256(tenant_id.encode()).hexdigest()[: 39 - len(provider)]


def accounting_customer(customer: Customer, external_id: str | None) -> AccountingCustomer:
    return AccountingCustomer(
        customer_id=str(customer.id),
        name=customer.name,
        email=(customer.emails or [""])[0],
        currency=customer.currency,
        external_id=external_id,
    )


def accounting_invoice(
    invoice: Invoice,
    *,
    provider: str,
    sales_account: str,
    tax_codes: Mapping[Decimal, str],
    customer_external_id: str | None,
) -> AccountingInvoice:
    """Every line of an issued invoice with the organisation's account and tax codes.

    Refused (``ValidationFailed``, so the sync records ``sync_failed`` and waits for a person) when the
    invoice is not issued, a tax rate has no code, or the mapped totals would not equal ours to the cent.
    A discounted line goes over as its net amount (see ``_net_line``): the three providers model line
    discounts differently or not at all, and the net is what the books must hold.
    """
    if invoice.number is None or invoice.issue_date is None or invoice.due_date is None:
        raise ValidationFailed(
            f"invoice {invoice.id} is not issued yet; only issued invoices are synced",
            provider=provider,
            status_code=None,
        )
    specs = _line_specs(invoice.lines, invoice.currency, tax_codes, provider, sales_account, label="line")
    built = build_invoice(
        invoice_id=str(invoice.id),
        number=invoice.number,
        customer=accounting_customer(invoice.customer, customer_external_id),
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        lines=specs,
    )
    ours = (invoice.subtotal, invoice.tax_total, invoice.total)
    if (built.totals.subtotal, built.totals.tax, built.totals.total) != ours:
        raise ValidationFailed(
            f"mapped totals {built.totals} differ from the invoice's {ours}; not synced",
            provider=provider,
            status_code=None,
        )
    return built


def _line_specs(
    lines: Any,
    currency: str,
    tax_codes: Mapping[Decimal, str],
    provider: str,
    sales_account: str,
    *,
    label: str,
) -> list[LineSpec]:
    """Each line at its net amount with the provider's tax code for its rate (0 % falls back to the
    provider's no-tax code); a rate without a code is a validation error naming the line."""
    specs: list[LineSpec] = []
    for index, line in enumerate(lines):
        code = tax_codes.get(line.tax_rate)
        if code is None and line.tax_rate == 0:
            code = NO_TAX[provider]
        if code is None:
            raise ValidationFailed(
                f"no {provider} tax code for {line.tax_rate.normalize():f} % ({label} {index + 1}): add it "
                "to "
                "INVOICEFLOW_ACCOUNTING_TAX_CODES",
                provider=provider,
                status_code=None,
            )
        description, quantity, unit_price = _net_line(line, currency)
        specs.append(LineSpec(description, quantity, unit_price, line.tax_rate, sales_account, code))
    return specs


def _net_line(line: Any, currency: str) -> tuple[str, Decimal, Decimal]:
    """(description, quantity, unit price) that carry the line's net amount exactly.

    An undiscounted line is sent as it is. A discounted one keeps its quantity when the net divides into
    a unit price in the currency's minor units, else becomes 1 × net; either way the description says
    what the discount was, so the books read the same as the invoice."""
    if not line.discount:
        return line.description, line.quantity, line.unit_price
    note = (
        f"{line.description} ({line.quantity.normalize():f} × {format_money(line.unit_price, currency)}, "
        f"less {format_money(line.discount, currency)} discount)"
    )
    unit = line.net / line.quantity
    if unit == quantize(unit, currency):
        return note, line.quantity, quantize(unit, currency)
    return note, Decimal(1), line.net


def credit_note_for_sync(
    note: CreditNote, settings: Settings, provider: str, tenant_id: str, invoice_external_id: str
) -> AccountingCreditNote:
    """A credit note with the organisation's account and tax codes, mapped like an invoice (same rules,
    same refusals: a tax rate without a code, totals that would not match ours to the cent)."""
    invoice = note.invoice
    system = customer_system(provider, tenant_id)
    external = next((e.external_id for e in invoice.customer.external_ids if e.system == system), None)
    tax_codes = tax_code_map(settings)
    specs = _line_specs(
        note.lines,
        note.currency,
        tax_codes,
        provider,
        settings.accounting_sales_account,
        label="credit note line",
    )
    built = build_invoice(
        invoice_id=str(note.id),
        number=note.number,
        customer=accounting_customer(invoice.customer, external),
        issue_date=note.issue_date,
        due_date=note.issue_date,
        currency=note.currency,
        lines=specs,
        reference=invoice.number or "",
    )
    if (built.totals.subtotal, built.totals.tax, built.totals.total) != (
        note.subtotal,
        note.tax_total,
        note.total,
    ):
        raise ValidationFailed(
            f"mapped credit note totals {built.totals} differ from ours; not synced",
            provider=provider,
            status_code=None,
        )
    return AccountingCreditNote(
        credit_note_id=str(note.id),
        invoice_external_id=invoice_external_id,
        document=built,
        allocate=note.total - note.to_customer_credit,
    )


def invoice_for_sync(
    invoice: Invoice, settings: Settings, provider: str, tenant_id: str
) -> AccountingInvoice:
    """``accounting_invoice`` with the settings' codes and the customer's stored external id."""
    system = customer_system(provider, tenant_id)
    external = next((e.external_id for e in invoice.customer.external_ids if e.system == system), None)
    return accounting_invoice(
        invoice,
        provider=provider,
        sales_account=settings.accounting_sales_account,
        tax_codes=tax_code_map(settings),
        customer_external_id=external,
    )


def compare(
    ours: AccountingInvoice,
    theirs: RemoteInvoice,
    *,
    status: str,
    amount_paid: Decimal,
    amount_due: Decimal | None = None,
) -> list[str]:
    """What differs: a voided invoice only needs to be voided there (QBO zeroes a voided invoice's
    amounts); any other needs our lines and totals (``drift``), our money paid (``amount_paid``: money
    received less refunds that reopened it; credit applied is not money), and not to be void. With
    ``amount_due`` also what is still owed there: credit notes, credit applied and a write-off (an
    uncollectible invoice owes nothing in the books once its bad debt is credited) all lower it."""
    voided_there = theirs.state == RemoteState.VOIDED
    if status == InvoiceStatus.VOID:
        return [] if voided_there else [f"status: ours void, theirs {theirs.remote_status or theirs.state}"]
    problems = drift(ours, theirs)
    if voided_there:
        problems.append(f"status: ours {status}, theirs {theirs.remote_status or theirs.state}")
    paid = min(amount_paid, ours.totals.total)  # an overpayment is our credit, not theirs
    if theirs.amount_paid != paid:
        problems.append(f"amount paid: ours {paid}, theirs {theirs.amount_paid}")
    if amount_due is not None:
        due = Decimal(0) if status == InvoiceStatus.UNCOLLECTIBLE else amount_due
        if theirs.amount_due != due:
            what = "written off" if status == InvoiceStatus.UNCOLLECTIBLE else "amount due"
            problems.append(f"{what}: ours due {due}, theirs {theirs.amount_due}")
    return problems


def money_paid(session: Session, invoice: Invoice) -> Decimal:
    """What the books should show as paid on the invoice itself: money received (not customer credit
    applied at issue) less refunds that reopened it (a refund of a closed invoice's credit comes out of
    the customer's credit, not out of this invoice's payments)."""
    received = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.invoice_id == invoice.id, Payment.method != CREDIT_METHOD
        )
    )
    returned = session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.invoice_id == invoice.id, Refund.kind == "reopened"
        )
    )
    return Decimal(received or 0) - Decimal(returned or 0)


@dataclass(frozen=True)
class _Synced:
    invoice_id: str
    number: str
    external_id: str
    status: str
    amount_paid: Decimal
    ours: AccountingInvoice | None
    problem: str = ""
    amount_due: Decimal | None = None


def _synced_invoices(settings: Settings, provider: str, tenant_id: str) -> list[_Synced]:
    with session_scope(settings.require_database_url()) as session:
        rows = (
            session.execute(
                select(AccountingSync, Invoice)
                .join(Invoice, Invoice.id == AccountingSync.invoice_id)
                .where(
                    AccountingSync.provider == provider,
                    AccountingSync.tenant_id == tenant_id,
                    AccountingSync.kind == "invoice",
                    AccountingSync.status == "synced",
                    AccountingSync.external_id.is_not(None),
                )
                .order_by(Invoice.number)
            )
            .unique()
            .all()
        )
        found: list[_Synced] = []
        for sync, invoice in rows:
            try:
                ours: AccountingInvoice | None = invoice_for_sync(invoice, settings, provider, tenant_id)
                problem = ""
            except AccountingError as exc:
                ours, problem = None, f"cannot be compared: {exc.message}"
            found.append(
                _Synced(
                    str(invoice.id),
                    invoice.number or "",
                    str(sync.external_id),
                    invoice.status,
                    money_paid(session, invoice),
                    ours,
                    problem,
                    invoice.amount_due,
                )
            )
        return found


async def _fetch(connection: Connection, external_id: str) -> RemoteInvoice:
    """One read, retried once after a token refresh if the provider says the token expired."""
    with tokens_used() as used:
        try:
            return await connection.connector.fetch_invoice(external_id)
        except AuthExpired:
            await connection.store.refresh_after_rejection(used[-1] if used else None)
    return await connection.connector.fetch_invoice(external_id)


async def _check(connection: Connection, item: _Synced) -> Difference | None:
    problems: list[str]
    if item.ours is None:
        problems = [item.problem]
    else:
        try:
            theirs = await _fetch(connection, item.external_id)
        except NotFound:
            problems = [f"missing at {connection.provider} (deleted there?)"]
        except AccountingError as exc:
            problems = [f"could not be read: {exc.message}"]
        else:
            problems = compare(
                item.ours,
                theirs,
                status=item.status,
                amount_paid=item.amount_paid,
                amount_due=item.amount_due,
            )
    if not problems:
        return None
    return Difference(item.invoice_id, item.number, connection.provider, item.external_id, tuple(problems))


async def reconcile(
    settings: Settings, progress: Callable[[int, int], None] | None = None
) -> list[Difference]:
    """Differences between every synced invoice and the provider's copy; empty when all agree (or no
    provider is configured). Reads go through the organisation's rate limiter, so a large run paces
    itself instead of drawing 429s. ``progress(done, total)`` is called as each invoice is checked."""
    provider = settings.accounting_provider
    if provider == "none":
        return []
    tenant_id = await asyncio.to_thread(resolve_tenant, settings, provider)
    synced = await asyncio.to_thread(_synced_invoices, settings, provider, tenant_id)
    if not synced:
        return []
    connection = open_connection(settings, tenant_id)
    try:
        done = 0

        async def check(item: _Synced) -> Difference | None:
            nonlocal done
            result = await _check(connection, item)
            done += 1
            if progress is not None:
                progress(done, len(synced))
            return result

        results = await asyncio.gather(*(check(item) for item in synced))
    finally:
        await connection.aclose()
    return [difference for difference in results if difference is not None]
