"""Billable items (expenses, time) onto the invoice that bills them: collected in the issuing
transaction, so an item lands on exactly one issued invoice and is never lost."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.totals import LineInput
from persistence.invoice_rows import (  # the row-level helpers, re-exported for callers of this module
    add_event,
    line_input,
    replace_lines,
)
from persistence.models import BillableItem, Invoice
from persistence.time_entries import item_scope


def collect_billable_items(session: Session, invoice: Invoice) -> int:
    """Add the customer's approved, unbilled items as lines and mark them billed, in the caller's (the
    issuing) transaction: an item lands on exactly one issued invoice and is never lost."""
    items = list(
        session.scalars(
            select(BillableItem)
            .where(
                BillableItem.customer_id == invoice.customer_id,
                BillableItem.currency == invoice.currency,
                BillableItem.status == "approved",
                BillableItem.billable.is_(True),
                BillableItem.invoice_id.is_(None),
                *item_scope(session, invoice.project_id),
            )
            .order_by(BillableItem.incurred_on, BillableItem.created_at)
            .with_for_update(of=BillableItem)
        )
    )
    if not items:
        return 0
    lines = [line_input(line) for line in invoice.lines] + [
        LineInput(
            description=f"{item.description} ({item.incurred_on.isoformat()})",
            quantity=item.quantity,
            unit_price=item.unit_price,
            tax_rate=item.tax_rate,
        )
        for item in items
    ]
    totals = replace_lines(session, invoice, lines)
    for item in items:
        item.invoice_id = invoice.id
    add_event(
        session,
        invoice.id,
        "billable_items.added",
        actor="workflow",
        data={"items": ",".join(str(i.id) for i in items), "total": str(totals.total)},
        dedupe_key=f"invoice:{invoice.id}:billable_items",
    )
    return len(items)
