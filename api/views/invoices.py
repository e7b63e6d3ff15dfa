"""Invoices as the API shows them (lists and ``GET /invoices/{id}``)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.einvoice_fields import einvoice_out
from api.schemas import AccountingOut, EventOut, HoldOut, InvoiceOut, LineOut, PaymentOut
from api.views.credit_notes import credit_notes_out, refunds_out
from persistence import dunning, link_visits
from persistence import invoices as repo
from persistence.models import AccountingSync, Invoice
from services.db import Db
from services.errors import NotFound


def _s(value: Any) -> str:
    return str(value)


def invoice_out(invoice: Invoice, *, detail: bool) -> InvoiceOut:
    out = InvoiceOut(
        id=invoice.id,
        workflow_id=invoice.workflow_id,
        customer_id=invoice.customer_id,
        status=invoice.status,
        number=invoice.number,
        currency=invoice.currency,
        payment_terms=invoice.payment_terms,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        subtotal=_s(invoice.subtotal),
        discount_total=_s(invoice.discount_total),
        tax_total=_s(invoice.tax_total),
        total=_s(invoice.total),
        amount_paid=_s(invoice.amount_paid),
        amount_due=_s(invoice.amount_due),
        credit=_s(invoice.credit_amount),
        amount_credited=_s(invoice.amount_credited),
        notes=invoice.notes,
        pdf_url=f"/invoices/{invoice.id}/pdf" if invoice.pdf_key else None,
        created_at=invoice.created_at,
        dunning_policy=(invoice.dunning_snapshot or {}).get("name")
        if invoice.issued_at
        else dunning.requested_policy(invoice),
        purchase_order=invoice.purchase_order or "",
        contract_ref=invoice.contract_ref or "",
        project_ref=invoice.project_ref or "",
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        einvoice=einvoice_out(invoice),
    )
    if detail:
        out.lines = [
            LineOut(
                description=line.description,
                quantity=_s(line.quantity),
                unit_price=_s(line.unit_price),
                discount_percent=_s(line.discount_percent),
                discount_amount=_s(line.discount_amount),
                tax_rate=_s(line.tax_rate),
                gross=_s(line.gross),
                discount=_s(line.discount),
                net=_s(line.net),
                unit=line.unit or "C62",
                tax_category=line.tax_category or "",
                tax_exemption_reason=line.tax_exemption_reason or "",
            )
            for line in invoice.lines
        ]
        out.payments = [
            PaymentOut(
                id=p.id,
                amount=_s(p.amount),
                currency=p.currency,
                method=p.method,
                reference=p.reference,
                received_at=p.received_at,
            )
            for p in invoice.payments
        ]
    return out


async def load_invoice(db: Db, invoice_id: uuid.UUID) -> InvoiceOut:
    """One invoice with its lines, payments, timeline, credit notes, refunds, holds and books state."""

    def tx(session: Session) -> InvoiceOut:
        invoice = repo.get_invoice(session, invoice_id)
        out = invoice_out(invoice, detail=True)
        out.timeline = [
            EventOut(at=e.at, actor=e.actor, kind=e.kind, data=e.data)
            for e in repo.timeline(session, invoice_id)
        ]
        out.credit_notes = credit_notes_out(session, invoice_id)
        out.refunds = refunds_out(session, invoice_id)
        out.holds = [HoldOut(**hold) for hold in dunning.holds_out(session, invoice)]
        out.link_activity = link_visits.totals(session, invoice_id)
        sync = session.scalars(
            select(AccountingSync)
            .where(AccountingSync.kind == "invoice", AccountingSync.invoice_id == invoice_id)
            .order_by(AccountingSync.updated_at.desc())
        ).first()
        if sync is not None:
            out.accounting = AccountingOut(
                provider=sync.provider,
                status=sync.status,
                external_id=sync.external_id,
                error=sync.last_error,
                synced_at=sync.synced_at,
            )
        return out

    try:
        return await db.run(tx)
    except repo.InvoiceNotFound:
        raise NotFound(f"invoice {invoice_id} does not exist") from None
