"""Credit notes on the database: number, persist and apply one to its invoice, once per idempotency key.

Called by the ``issue_credit_note`` activity inside one transaction that locks the invoice: the credit
note's number (its own gapless series, ``CN-2026-000001``), its lines, the invoice's new amounts and
status, the customer credit from any excess and the timeline events commit together or not at all, so a
retry finds either nothing or everything (and then answers ``duplicate``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.credits import CreditRefused, check_credit_amount, split
from billing.money import quantize
from billing.status import FINAL_STATUSES, InvoiceStatus, settle_status
from billing.totals import LineInput, compute_totals, parse_lines
from persistence import customer_credit, numbering
from persistence.invoices import InvalidInvoiceOperation, InvoiceNotFound, add_event, get_invoice
from persistence.models import CreditNote, CreditNoteLine, Invoice
from workflows.payloads import CreditNoteInput, CreditNoteOutcome

#: Statuses in which an invoice takes credit notes: issued and still receivable.
CREDITABLE_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.OVERDUE, InvoiceStatus.PARTIALLY_PAID)
#: ... and, through their own short-lived workflow (the invoice's has ended), paid ones.
CLOSED_CREDITABLE_STATUSES = (InvoiceStatus.PAID,)


def request_hash(*, reason: str, full: bool, lines: Sequence[dict[str, Any]]) -> str:
    """Digest of what a credit-note request asks for, to tell a repeat from a reuse of its key."""
    body = {"reason": reason.strip(), "full": full, "lines": list(lines)}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def requested_lines(invoice: Invoice, request: CreditNoteInput) -> list[LineInput]:
    """The lines a request credits: the invoice's own for ``full`` (same tax groups), else the given ones."""
    if request.full:
        return [
            LineInput(
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount_percent=line.discount_percent,
                discount_amount=line.discount_amount,
                tax_rate=line.tax_rate,
            )
            for line in invoice.lines
        ]
    return parse_lines(request.lines)


def _outcome(invoice: Invoice, note: CreditNote, *, duplicate: bool) -> CreditNoteOutcome:
    return CreditNoteOutcome(
        credit_note_id=str(note.id),
        number=note.number,
        duplicate=duplicate,
        total=str(note.total),
        to_customer_credit=str(note.to_customer_credit),
        status=invoice.status,
        amount_paid=str(invoice.amount_paid),
        amount_credited=str(invoice.amount_credited),
        amount_due=str(invoice.amount_due),
        credit=str(invoice.credit_amount),
    )


def find(session: Session, invoice_id: uuid.UUID, idempotency_key: str) -> CreditNote | None:
    return session.scalars(
        select(CreditNote).where(
            CreditNote.invoice_id == invoice_id, CreditNote.idempotency_key == idempotency_key
        )
    ).one_or_none()


def for_invoice(session: Session, invoice_id: uuid.UUID) -> list[CreditNote]:
    return list(
        session.scalars(
            select(CreditNote)
            .where(CreditNote.invoice_id == invoice_id)
            .order_by(CreditNote.created_at, CreditNote.number)
        )
    )


def issue_credit_note(
    session: Session,
    invoice_id: uuid.UUID,
    request: CreditNoteInput,
    *,
    past_due: bool,
    as_of: datetime,
    number_prefix: str,
    closed: bool = False,
) -> CreditNoteOutcome:
    """Number and persist a credit note and reduce its invoice's amount due; idempotent per key.
    ``closed`` (from ``ClosedInvoiceCreditNoteWorkflow``): a paid invoice takes one too, all of it
    becoming the customer's credit."""
    invoice = get_invoice(session, invoice_id, lock=True)
    existing = find(session, invoice.id, request.idempotency_key)
    if existing is not None:
        if request.request_hash and existing.request_hash != request.request_hash:
            raise InvalidInvoiceOperation(
                f"idempotency_key {request.idempotency_key!r} already issued credit note {existing.number} "
                "with a different request"
            )
        return _outcome(invoice, existing, duplicate=True)
    allowed = CREDITABLE_STATUSES + CLOSED_CREDITABLE_STATUSES if closed else CREDITABLE_STATUSES
    if invoice.number is None or invoice.status not in allowed:
        raise InvalidInvoiceOperation(
            f"invoice is {invoice.status}; credit notes are issued on open, overdue, partially paid or paid "
            "invoices"
        )
    if not request.reason.strip():
        raise InvalidInvoiceOperation("reason: say why the invoice is credited")
    lines = requested_lines(invoice, request)
    totals = compute_totals(lines, invoice.currency)
    try:
        check_credit_amount(
            totals.total,
            total=invoice.total,
            credited=invoice.amount_credited,
            currency=invoice.currency,
            number=invoice.number,
            full=request.full,
        )
    except CreditRefused as exc:
        raise InvalidInvoiceOperation(str(exc)) from None

    customer = invoice.customer
    issue_date = as_of.astimezone(ZoneInfo(customer.timezone)).date()
    series = numbering.series_for(number_prefix, issue_date)
    number = numbering.format_number(series, numbering.allocate(session, series))

    cur = invoice.currency
    credited = quantize(invoice.amount_credited + totals.total, cur)
    due, credit = split(invoice.total, invoice.amount_paid, credited)
    excess = max(credit - invoice.credit_amount, quantize(Decimal(0), cur))
    note = CreditNote(
        invoice_id=invoice.id,
        customer_id=customer.id,
        series=series,
        number=number,
        currency=cur,
        reason=request.reason.strip(),
        full=request.full,
        subtotal=totals.subtotal,
        tax_total=totals.tax_total,
        total=totals.total,
        to_customer_credit=excess,
        issue_date=issue_date,
        idempotency_key=request.idempotency_key,
        request_hash=request.request_hash,
        actor=request.actor,
    )
    note.lines = [
        CreditNoteLine(
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
    session.add(note)
    session.flush()

    invoice.amount_credited, invoice.amount_due, invoice.credit_amount = credited, due, credit
    add_event(
        session,
        invoice.id,
        "credit_note.issued",
        actor=request.actor,
        data={
            "credit_note_id": str(note.id),
            "number": number,
            "amount": str(totals.total),
            "reason": note.reason,
            "amount_due": str(due),
            "to_customer_credit": str(excess),
        },
        dedupe_key=f"credit_note:{note.id}:issued",
    )
    if excess > 0:
        customer_credit.record(
            session,
            customer_id=customer.id,
            currency=cur,
            amount=excess,
            kind="credit_note",
            dedupe_key=f"credit_note:{note.id}:credit",
            invoice_id=invoice.id,
            credit_note_id=note.id,
        )
        add_event(
            session,
            invoice.id,
            "credit.created",
            actor=request.actor,
            data={"amount": str(excess), "reason": f"credit note {number} beyond the amount due"},
            dedupe_key=f"credit_note:{note.id}:credit",
        )
    status = settle_status(
        total=invoice.total, amount_paid=invoice.amount_paid, past_due=past_due, amount_credited=credited
    )
    if status != invoice.status:
        invoice.status = str(status)
        if status in FINAL_STATUSES:
            invoice.closed_at = as_of
        add_event(
            session,
            invoice.id,
            f"status.{status}",
            actor=request.actor,
            data={"reason": f"credit note {number}"},
            dedupe_key=f"credit_note:{note.id}:status",
        )
    return _outcome(invoice, note, duplicate=False)


def get_credit_note(session: Session, credit_note_id: uuid.UUID) -> CreditNote:
    note = session.get(CreditNote, credit_note_id)
    if note is None:
        raise InvoiceNotFound(f"credit note {credit_note_id} does not exist")
    return note
