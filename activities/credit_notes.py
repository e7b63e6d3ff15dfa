"""Credit note and refund activities: persist and number a credit note (a single transaction, idempotent
per key), render its PDF (stored under its own key, like invoice PDFs; the workflow passes the key on),
and record a refund of an open invoice's payment (idempotent per key)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session
from temporalio import activity

from activities.einvoice import credit_note_einvoice
from activities.invoices import non_retryable
from activities.pdf import RenderPool, render_and_store
from billing.errors import MoneyError
from core.settings import Settings
from documents.builders import credit_note_document
from documents.einvoice.pool import EInvoicePool, shared_pool
from documents.rendering import InvoiceDocument
from persistence import credit_notes as notes
from persistence import invoices as repo
from persistence import refunds
from persistence.db import session_scope
from persistence.models import CreditNote
from workflows.payloads import (
    ActivityName,
    CreditNoteOutcome,
    CreditNoteRenderRequest,
    CreditNoteRequest,
    RefundOutcome,
    RefundRequest,
    RenderedPdf,
)


def credit_note_pdf_key(note: CreditNote) -> str:
    return f"credit-notes/{note.id}/{note.number}.pdf"


class CreditNoteActivities:
    def __init__(
        self,
        settings: Settings,
        render_pool: RenderPool | None = None,
        einvoice_pool: EInvoicePool | None = None,
    ) -> None:
        self._settings = settings
        self._url = settings.require_database_url()
        self._pool = render_pool if render_pool is not None else RenderPool(0)
        self._einvoice_pool = einvoice_pool

    @activity.defn(name=ActivityName.ISSUE_CREDIT_NOTE)
    def issue_credit_note(self, request: CreditNoteRequest) -> CreditNoteOutcome:
        try:
            with session_scope(self._url) as session:
                return notes.issue_credit_note(
                    session,
                    uuid.UUID(request.invoice_id),
                    request.credit_note,
                    past_due=request.past_due,
                    as_of=request.as_of,
                    number_prefix=self._settings.credit_note_number_prefix,
                    closed=request.closed,
                )
        except (repo.InvoiceNotFound, repo.InvalidInvoiceOperation, MoneyError) as exc:
            raise non_retryable(exc) from exc

    @activity.defn(name=ActivityName.RENDER_CREDIT_NOTE_PDF)
    def render_credit_note_pdf(self, request: CreditNoteRenderRequest) -> RenderedPdf:
        note_id = uuid.UUID(request.credit_note_id)

        def load(session: Session) -> tuple[InvoiceDocument, str]:
            note = notes.get_credit_note(session, note_id)
            return credit_note_document(note, self._settings), credit_note_pdf_key(note)

        def record(session: Session, key: str) -> None:
            stored = session.get(CreditNote, note_id)
            assert stored is not None
            stored.pdf_key = key

        rendered = render_and_store(self._url, self._pool, self._settings, load, record)
        # The customer's e-invoice format: validated, then the Factur-X PDF or the XML beside it.
        pool = self._einvoice_pool or shared_pool(self._settings.einvoice_processes)
        hybrid = credit_note_einvoice(self._url, self._settings, self._pool, pool, note_id, rendered.key)
        return hybrid or rendered

    @activity.defn(name=ActivityName.APPLY_REFUND)
    def apply_refund(self, request: RefundRequest) -> RefundOutcome:
        try:
            with session_scope(self._url) as session:
                return refunds.apply_refund(
                    session, uuid.UUID(request.invoice_id), request.refund, past_due=request.past_due
                )
        except (repo.InvoiceNotFound, repo.InvalidInvoiceOperation, MoneyError) as exc:
            raise non_retryable(exc) from exc
