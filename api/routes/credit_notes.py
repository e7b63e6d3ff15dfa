"""Credit notes: ``POST /invoices/{id}/credit-notes`` issues one through the invoice's workflow (Update
``issue_credit_note``), ``GET /credit-notes/{id}`` and ``/pdf`` read it back.

The request is checked here against the invoice as stored (422 for a malformed or too large credit,
409 when the invoice is not in a state that takes credit notes) so the caller gets a precise answer;
the workflow's validator checks again against its own state, which is the one that counts when
requests race. The same ``idempotency_key`` (body field or ``Idempotency-Key`` header) issues one
credit note; reusing it with a different request is a 422.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Header, HTTPException, Response, status
from sqlalchemy.orm import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.deps import DbDep, Operator, SettingsDep, TemporalDep
from api.errors import unprocessable
from api.schemas import CreditNoteCreate, CreditNoteOut, CreditNoteResult
from api.views.credit_notes import credit_note_out
from billing.credits import CreditRefused, check_credit_amount
from billing.errors import MoneyError
from billing.totals import compute_totals, parse_lines
from persistence import credit_notes as notes
from persistence import invoices as repo
from persistence.models import CreditNote, Document
from services.credit_notes import issue_on_closed_invoice
from services.workflow_calls import refusal
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import CreditNoteInput, TermsLine

router = APIRouter(tags=["credit notes"])


def _unprocessable(field: str, message: str) -> HTTPException:
    return unprocessable(["body", field], message)


def _result(session: Session, note: CreditNote, *, duplicate: bool) -> CreditNoteResult:
    invoice = note.invoice
    session.refresh(invoice)
    return CreditNoteResult(
        duplicate=duplicate,
        status=invoice.status,
        amount_paid=str(invoice.amount_paid),
        amount_credited=str(invoice.amount_credited),
        amount_due=str(invoice.amount_due),
        credit=str(invoice.credit_amount),
        credit_note=credit_note_out(session, note),
    )


@router.post(
    "/invoices/{invoice_id}/credit-notes",
    status_code=status.HTTP_201_CREATED,
    response_model=CreditNoteResult,
)
async def issue_credit_note(
    invoice_id: uuid.UUID,
    body: CreditNoteCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    operator: Operator,
    settings: SettingsDep,
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> CreditNoteResult:
    """Credit an issued invoice in full or in part: an open one through its workflow, a paid one through
    a workflow of its own (all of it becomes customer credit; the invoice stays paid). Crediting more than
    is still due (on a partly paid invoice) turns the excess into customer credit for the client's next
    invoice; more than the invoice's total minus earlier credit notes is refused."""
    key = body.idempotency_key or idempotency_key
    if not key:
        raise _unprocessable(
            "idempotency_key", "idempotency_key is required (body field or Idempotency-Key header)"
        )
    raw_lines = [line.model_dump(mode="json") for line in body.lines or []]
    digest = notes.request_hash(reason=body.reason, full=body.full, lines=raw_lines)

    def existing(session: Session) -> CreditNoteResult | None:
        note = notes.find(session, invoice_id, key)
        if note is None:
            return None
        if note.request_hash != digest:
            raise _unprocessable(
                "idempotency_key",
                f"idempotency_key was already used for credit note {note.number} with a different request",
            )
        return _result(session, note, duplicate=True)

    def precheck(session: Session) -> tuple[str, str]:
        try:
            invoice = repo.get_invoice(session, invoice_id)
        except repo.InvoiceNotFound:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"invoice {invoice_id} does not exist"
            ) from None
        creditable = notes.CREDITABLE_STATUSES + notes.CLOSED_CREDITABLE_STATUSES
        if invoice.number is None or invoice.status not in creditable:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"invoice is {invoice.status}; credit notes are issued on open, overdue, partially "
                "paid or paid invoices",
            )
        try:
            amount = (
                invoice.total if body.full else compute_totals(parse_lines(raw_lines), invoice.currency).total
            )
            check_credit_amount(
                amount,
                total=invoice.total,
                credited=invoice.amount_credited,
                currency=invoice.currency,
                number=invoice.number,
                full=body.full,
            )
        except MoneyError as exc:
            raise _unprocessable("lines", str(exc)) from None
        except CreditRefused as exc:
            raise _unprocessable("full" if str(exc).startswith("full") else "lines", str(exc)) from None
        return invoice.workflow_id, invoice.status

    found = await db.run(existing)
    if found is not None:
        response.status_code = status.HTTP_200_OK
        return found
    workflow_id, invoice_status = await db.run(precheck)
    request = CreditNoteInput(
        reason=body.reason,
        idempotency_key=key,
        full=body.full,
        lines=[TermsLine(**{k: str(v) for k, v in line.items()}) for line in raw_lines],
        actor=operator,
        request_hash=digest,
    )
    try:
        if invoice_status in notes.CLOSED_CREDITABLE_STATUSES:  # its workflow has ended: one of its own
            outcome = await issue_on_closed_invoice(temporal, settings, invoice_id, request)
        else:
            outcome = await temporal.get_workflow_handle(workflow_id).execute_update(
                InvoiceWorkflow.issue_credit_note, request
            )
    except (WorkflowUpdateFailedError, RPCError) as exc:
        # A concurrent request with the same key may have won: answer as it did.
        found = await db.run(existing)
        if found is not None:
            response.status_code = status.HTTP_200_OK
            return found
        raise refusal(exc) from exc

    def load(session: Session) -> CreditNoteResult:
        note = notes.get_credit_note(session, uuid.UUID(outcome.credit_note_id))
        return _result(session, note, duplicate=outcome.duplicate)

    result = await db.run(load)
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return result


@router.get("/credit-notes/{credit_note_id}", response_model=CreditNoteOut)
async def get_credit_note(credit_note_id: uuid.UUID, db: DbDep, _: Operator) -> CreditNoteOut:
    def tx(session: Session) -> CreditNoteOut | None:
        note = session.get(CreditNote, credit_note_id)
        return credit_note_out(session, note) if note is not None else None

    found = await db.run(tx)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"credit note {credit_note_id} does not exist")
    return found


@router.get(
    "/credit-notes/{credit_note_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def get_credit_note_pdf(credit_note_id: uuid.UUID, db: DbDep, _: Operator) -> Response:
    def tx(session: Session) -> tuple[bytes, str] | None:
        note = session.get(CreditNote, credit_note_id)
        if note is None or note.pdf_key is None:
            return None
        document = session.get(Document, note.pdf_key)
        return (document.content, note.number) if document else None

    found = await db.run(tx)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail="no PDF: the credit note does not exist or is not rendered yet"
        )
    content, number = found
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
    )
