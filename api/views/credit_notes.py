"""Credit notes and refunds as the API shows them (on their own and inside ``GET /invoices/{id}``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas import AccountingOut, CreditNoteOut, LineOut, RefundOut
from persistence import credit_notes as notes
from persistence import refunds
from persistence.models import AccountingSync, CreditNote


def credit_note_out(session: Session, note: CreditNote) -> CreditNoteOut:
    sync = session.scalars(
        select(AccountingSync)
        .where(AccountingSync.kind == "credit_note", AccountingSync.object_id == note.id)
        .order_by(AccountingSync.updated_at.desc())
    ).first()
    return CreditNoteOut(
        id=note.id,
        invoice_id=note.invoice_id,
        number=note.number,
        currency=note.currency,
        reason=note.reason,
        full=note.full,
        subtotal=str(note.subtotal),
        tax_total=str(note.tax_total),
        total=str(note.total),
        to_customer_credit=str(note.to_customer_credit),
        issue_date=note.issue_date,
        created_at=note.created_at,
        pdf_url=f"/credit-notes/{note.id}/pdf" if note.pdf_key else None,
        lines=[
            LineOut(
                description=line.description,
                quantity=str(line.quantity),
                unit_price=str(line.unit_price),
                discount_percent=str(line.discount_percent),
                discount_amount=str(line.discount_amount),
                tax_rate=str(line.tax_rate),
                gross=str(line.gross),
                discount=str(line.discount),
                net=str(line.net),
            )
            for line in note.lines
        ],
        accounting=AccountingOut(
            provider=sync.provider,
            status=sync.status,
            external_id=sync.external_id,
            error=sync.last_error,
            synced_at=sync.synced_at,
        )
        if sync is not None
        else None,
    )


def credit_notes_out(session: Session, invoice_id: uuid.UUID) -> list[CreditNoteOut]:
    return [credit_note_out(session, note) for note in notes.for_invoice(session, invoice_id)]


def refunds_out(session: Session, invoice_id: uuid.UUID) -> list[RefundOut]:
    return [
        RefundOut(
            id=r.id,
            payment_id=r.payment_id,
            amount=str(r.amount),
            currency=r.currency,
            kind=r.kind,
            reason=r.reason,
            reference=r.reference,
            created_at=r.created_at,
        )
        for r in refunds.for_invoice(session, invoice_id)
    ]
