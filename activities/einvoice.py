"""Produce and validate an issued invoice's e-invoice, in the customer's format, before it is emailed.

A sync activity (worker thread pool). The rules and the PDF/A step run in the e-invoice pool's child
process, the Factur-X PDF's render in the render pool. The outcome is written on the invoice row
(``einvoice_status``, ``einvoice_errors``, ``einvoice_key``; an invalid one also sets the status
``einvoice_invalid``) and on the timeline, and returned to the workflow as keys and rule ids, never
as the document. Idempotent: a retry rebuilds the same document under the same key, and a timeline
entry per distinct outcome (dedupe key over the failed rule ids, or the stored document's key).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace

from sqlalchemy.orm import Session
from temporalio import activity

from activities.invoices import non_retryable
from activities.pdf import RenderPool, store_document
from billing.status import InvoiceStatus
from core.settings import Settings
from documents.builders import credit_note_document, invoice_document
from documents.einvoice.build import from_credit_note, from_invoice
from documents.einvoice.model import EInvoiceRefused
from documents.einvoice.pool import EInvoicePool, shared_pool
from documents.einvoice.produce import Produced, produce, refusal, summary
from documents.einvoice.profiles import CUSTOMER_FORMAT, profile_for
from persistence import credit_notes as notes
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import CreditNote, Invoice
from workflows.payloads import RenderedPdf
from workflows.payloads.einvoice import PRODUCE_EINVOICE, EInvoiceRequest, EInvoiceResult


def einvoice_key(invoice: Invoice, fmt: str) -> str:
    number = invoice.number or "draft"
    return (
        f"invoices/{invoice.id}/{number}.facturx.pdf"
        if fmt == "facturx"
        else f"invoices/{invoice.id}/{number}.{fmt}.xml"
    )


def render_for_pdfa(pool: RenderPool, invoice: Invoice, settings: Settings) -> bytes:
    """The invoice PDF as the client sees it, drawn with embedded fonts only (PDF/A)."""
    document = replace(invoice_document(invoice, settings), embed_fonts=True)
    return pool.render(document, settings.template_dir)


def produce_for(
    session: Session,
    invoice: Invoice,
    fmt: str,
    settings: Settings,
    render_pool: RenderPool,
    pool: EInvoicePool,
) -> Produced:
    profile = profile_for(fmt)
    try:
        doc = from_invoice(session, invoice, settings)
    except EInvoiceRefused as exc:
        return Produced(fmt, b"", b"", profile.media_type, "", refusal(exc))
    return produce(doc, profile, pool, render_pdf=lambda: render_for_pdfa(render_pool, invoice, settings))


class EInvoiceActivities:
    def __init__(
        self, settings: Settings, render_pool: RenderPool | None = None, pool: EInvoicePool | None = None
    ) -> None:
        self._settings = settings
        self._url = settings.require_database_url()
        self._render_pool = render_pool if render_pool is not None else RenderPool(0)
        self._pool = pool if pool is not None else shared_pool(settings.einvoice_processes)

    @activity.defn(name=PRODUCE_EINVOICE)
    def produce_einvoice(self, request: EInvoiceRequest) -> EInvoiceResult:
        invoice_id = uuid.UUID(request.invoice_id)
        try:
            with session_scope(self._url) as session:
                invoice = repo.get_invoice(session, invoice_id)
                fmt = CUSTOMER_FORMAT.get(invoice.customer.einvoice_format or "none")
                if fmt is None:
                    return EInvoiceResult(status="none", attach_key=request.pdf_key)
                produced = produce_for(session, invoice, fmt, self._settings, self._render_pool, self._pool)
        except repo.InvoiceNotFound as exc:
            raise non_retryable(exc) from exc
        with session_scope(self._url) as session:
            stored = repo.get_invoice(session, invoice_id, lock=True)
            if not produced.valid:
                return self._invalid(session, stored, produced)
            key = einvoice_key(stored, fmt)
            store_document(session, key, produced.content, produced.media_type)
            stored.einvoice_key, stored.einvoice_status, stored.einvoice_errors = key, "valid", None
            if fmt == "facturx":
                stored.pdf_key = key  # the PDF the client gets, the hosted page and GET .../pdf serve
            repo.add_event(
                session,
                stored.id,
                "einvoice.valid",
                actor="workflow",
                data={"format": fmt, "key": key, "rules": ", ".join(profile_for(fmt).rules)},
                dedupe_key=f"invoice:{stored.id}:einvoice:valid:{key}",  # once, however often retried
            )
            attach = key if fmt == "facturx" else request.pdf_key
            return EInvoiceResult(status="valid", format=fmt, key=key, attach_key=attach)

    def _invalid(self, session: Session, invoice: Invoice, produced: Produced) -> EInvoiceResult:
        errors = produced.errors
        ids = [e["id"] for e in errors]
        invoice.einvoice_status, invoice.einvoice_errors = "invalid", errors
        text = summary(errors)
        fingerprint = hashlib.sha256("|".join(sorted(ids)).encode()).hexdigest()[:16]
        repo.set_status(
            session,
            invoice.id,
            InvoiceStatus.EINVOICE_INVALID,
            actor="workflow",
            event="einvoice.invalid",
            dedupe_key=f"invoice:{invoice.id}:einvoice:invalid:{fingerprint}",
            detail={"format": produced.format, "rules": ", ".join(ids), "errors": text},
        )
        return EInvoiceResult(status="invalid", format=produced.format, errors=ids, summary=text)


def credit_note_einvoice_key(note: CreditNote, fmt: str) -> str:
    return f"credit-notes/{note.id}/{note.number}.{fmt}.xml"


def credit_note_einvoice(
    url: str,
    settings: Settings,
    render_pool: RenderPool,
    pool: EInvoicePool,
    note_id: uuid.UUID,
    pdf_key: str,
) -> RenderedPdf | None:
    """After a credit note's PDF is rendered: its e-invoice in the customer's format, validated. A valid
    Factur-X one replaces the PDF under the same key (the email attaches it); a valid XML one is stored
    beside it (``credit_note_einvoice_key``) and the email carries it too. An invalid one is not
    attached: the credit note goes out as PDF and the invoice's timeline names the failed rules."""
    with session_scope(url) as session:
        note = notes.get_credit_note(session, note_id)
        fmt = CUSTOMER_FORMAT.get(note.invoice.customer.einvoice_format or "none")
        if fmt is None:
            return None
        profile = profile_for(fmt)
        try:
            doc = from_credit_note(session, note, settings)
        except EInvoiceRefused as exc:
            produced = Produced(fmt, b"", b"", profile.media_type, "", refusal(exc))
        else:

            def pdf() -> bytes:
                return render_pool.render(
                    replace(credit_note_document(note, settings), embed_fonts=True), settings.template_dir
                )

            produced = produce(doc, profile, pool, render_pdf=pdf)
    with session_scope(url) as session:
        note = notes.get_credit_note(session, note_id)
        if not produced.valid:
            ids = ", ".join(e["id"] for e in produced.errors)
            repo.add_event(
                session,
                note.invoice_id,
                "einvoice.credit_note_invalid",
                actor="workflow",
                data={
                    "credit_note": note.number,
                    "format": fmt,
                    "rules": ids,
                    "errors": summary(produced.errors),
                },
                dedupe_key=f"credit_note:{note.id}:einvoice:invalid:{ids}"[:200],
            )
            return None
        if fmt == "facturx":
            digest = store_document(session, pdf_key, produced.content, produced.media_type)
            return RenderedPdf(key=pdf_key, sha256=digest, size=len(produced.content))
        store_document(session, credit_note_einvoice_key(note, fmt), produced.content, produced.media_type)
        return None
