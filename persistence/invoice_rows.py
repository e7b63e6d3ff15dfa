"""Invoice rows at the lowest level: load one, append to its timeline, replace a draft's lines. Both
``persistence.invoices`` and ``persistence.dunning`` build on these, so neither imports the other's
operations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, defaultload, lazyload

from billing.credits import split
from billing.totals import InvoiceTotals, LineInput, compute_totals
from persistence.models import Customer, Invoice, InvoiceEvent, InvoiceLine


class InvoiceNotFound(LookupError):
    pass


class InvalidInvoiceOperation(ValueError):
    pass


def add_event(
    session: Session,
    invoice_id: uuid.UUID,
    kind: str,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append to the audit timeline; a repeated ``dedupe_key`` is a no-op (retried activities)."""
    values: dict[str, Any] = {
        "invoice_id": invoice_id,
        "kind": kind,
        "actor": actor,
        "data": data or {},
        "dedupe_key": dedupe_key,
    }
    if at is not None:
        values["at"] = at
    stmt = insert(InvoiceEvent).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    session.execute(stmt)


def get_invoice(
    session: Session, invoice_id: uuid.UUID, *, lock: bool = False, children: bool = True
) -> Invoice:
    """The invoice with its customer, lines and payments. ``children=False`` for a step that reads the
    row and its customer only (a status write, an email): lines and payments then load only if touched,
    instead of two more queries and their objects every time. The customer's ids in other systems load
    only when a step reads them (the books syncs do): py-spy put that query, which every step paid for,
    at 8 % of a busy worker's CPU."""
    stmt = (
        select(Invoice)
        .where(Invoice.id == invoice_id)
        .options(defaultload(Invoice.customer).lazyload(Customer.external_ids))
    )
    if not children:
        stmt = stmt.options(lazyload(Invoice.lines), lazyload(Invoice.payments))
    if lock:
        stmt = stmt.with_for_update(of=Invoice)
    invoice = session.scalars(stmt).unique().one_or_none()
    if invoice is None:
        raise InvoiceNotFound(f"invoice {invoice_id} does not exist")
    return invoice


def timeline(session: Session, invoice_id: uuid.UUID) -> list[InvoiceEvent]:
    return list(
        session.scalars(
            select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice_id).order_by(InvoiceEvent.id)
        )
    )


def line_rows(lines: list[LineInput], totals: InvoiceTotals) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            position=position,
            description=line.description.strip(),
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount_percent=line.discount_percent,
            discount_amount=line.discount_amount,
            tax_rate=line.tax_rate,
            gross=computed.gross,
            discount=computed.discount,
            net=computed.net,
        )
        for position, (line, computed) in enumerate(zip(lines, totals.lines, strict=True))
    ]


def replace_lines(session: Session, invoice: Invoice, lines: list[LineInput]) -> InvoiceTotals:
    """New lines for a not-yet-issued invoice, with its totals recomputed from them."""
    totals = compute_totals(lines, invoice.currency)
    invoice.lines.clear()
    session.flush()  # the old rows go first: (invoice_id, position) is unique
    invoice.lines.extend(line_rows(lines, totals))
    invoice.subtotal, invoice.discount_total = totals.subtotal, totals.discount_total
    invoice.tax_total, invoice.total = totals.tax_total, totals.total
    invoice.amount_due, _ = split(
        totals.total, invoice.amount_paid, invoice.amount_credited
    )  # a late fee after a credit note
    return totals


def line_input(line: InvoiceLine) -> LineInput:
    return LineInput(
        description=line.description,
        quantity=line.quantity,
        unit_price=line.unit_price,
        discount_percent=line.discount_percent,
        discount_amount=line.discount_amount,
        tax_rate=line.tax_rate,
    )
