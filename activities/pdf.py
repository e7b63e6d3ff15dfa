"""Render an invoice PDF and store it; the workflow gets a key, never the bytes (2 MB payload limit).

Sync and CPU-bound: runs on the worker's thread pool, never on the event loop. Re-rendering on retry
overwrites the same key, so the activity is idempotent.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy.dialects.postgresql import insert
from temporalio import activity

from activities.documents import invoice_document
from activities.invoices import non_retryable
from activities.rendering import render_invoice_pdf
from invoiceflow.settings import Settings
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import Document, Invoice
from workflows.contracts import ActivityName, RenderedPdf, RenderRequest


def pdf_key(invoice: Invoice) -> str:
    return f"invoices/{invoice.id}/{invoice.number or 'draft'}.pdf"


def store_document(session, key: str, content: bytes, content_type: str) -> str:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256(content).hexdigest()
    stmt = insert(Document).values(key=key, content=content, content_type=content_type, sha256=digest)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"content": content, "sha256": digest, "content_type": content_type}
        )
    )
    return digest


class PdfActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url = settings.require_database_url()

    @activity.defn(name=ActivityName.RENDER_INVOICE_PDF)
    def render_invoice_pdf(self, request: RenderRequest) -> RenderedPdf:
        try:
            with session_scope(self._url) as session:
                invoice = repo.get_invoice(session, uuid.UUID(request.invoice_id))
                document = invoice_document(invoice, self._settings)
                key = pdf_key(invoice)
        except repo.InvoiceNotFound as exc:
            raise non_retryable(exc) from exc
        # Render outside the transaction: it is the slow part and needs no lock.
        content = render_invoice_pdf(document, self._settings.template_dir)
        with session_scope(self._url) as session:
            digest = store_document(session, key, content, "application/pdf")
            stored = session.get(Invoice, uuid.UUID(request.invoice_id))
            assert stored is not None
            stored.pdf_key = key
        return RenderedPdf(key=key, sha256=digest, size=len(content))
