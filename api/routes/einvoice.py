"""E-invoice downloads and the retry of an invalid one.

``GET /invoices/{id}/einvoice?format=`` and ``GET /credit-notes/{id}/einvoice?format=`` hand out the
document in any of the formats (``ubl`` Peppol BIS, ``cii`` EN 16931, ``xrechnung-ubl``,
``xrechnung-cii``, ``facturx``), validated with the official rules on the way out: what the rules
refuse is a 422 listing the failed rules, never a file. The invoice's own e-invoice (the one its email
carried) is served as stored. ``POST /invoices/{id}/einvoice/retry`` tells an invoice stopped in
``einvoice_invalid`` that its data was fixed.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy.orm import Session
from temporalio.service import RPCError

from activities.pdf import RenderPool
from api.deps import DbDep, Operator, SettingsDep, TemporalDep
from billing.status import InvoiceStatus
from core.links import invoice_page_id
from core.settings import Settings
from documents.builders import credit_note_document, invoice_document
from documents.einvoice.build import from_credit_note, from_invoice
from documents.einvoice.model import EInvoiceRefused
from documents.einvoice.pool import shared_pool
from documents.einvoice.produce import Produced, produce, refusal
from documents.einvoice.profiles import CUSTOMER_FORMAT, PROFILES, profile_for
from persistence import invoices as repo
from persistence.models import CreditNote, Document, Invoice

router = APIRouter(tags=["e-invoices"])
FORMAT_QUERY = Query(
    default=None,
    description="ubl | cii | xrechnung-ubl | xrechnung-cii | facturx; "
    "default the customer's format (else ubl).",
)
_render = RenderPool(0)  # API downloads render on the request's thread, as the PDF preview does


def _format(requested: str | None, customer_format: str) -> str:
    fmt = requested or CUSTOMER_FORMAT.get(customer_format or "none") or "ubl"
    if fmt not in PROFILES:
        raise HTTPException(
            422,
            detail=[
                {"loc": ["query", "format"], "msg": f"one of {', '.join(PROFILES)}", "type": "value_error"}
            ],
        )
    return fmt


def _answer(produced: Produced) -> Response:
    if not produced.valid:
        raise HTTPException(
            422,
            detail={
                "message": f"the {produced.format} document fails the official rules; "
                "fix the data named below",
                "format": produced.format,
                "errors": produced.errors,
            },
        )
    return Response(
        produced.content,
        media_type=produced.media_type,
        headers={"Content-Disposition": f'attachment; filename="{produced.filename}"'},
    )


def _invoice_document(session: Session, invoice: Invoice, fmt: str, settings: Settings) -> Produced:
    profile = profile_for(fmt)
    try:
        doc = from_invoice(session, invoice, settings)
    except EInvoiceRefused as exc:
        return Produced(fmt, b"", b"", profile.media_type, "", refusal(exc))

    def pdf() -> bytes:
        document = replace(invoice_document(invoice, settings), embed_fonts=True)
        return _render.render(document, settings.template_dir)

    return produce(doc, profile, shared_pool(settings.einvoice_processes), render_pdf=pdf)


@router.get("/invoices/{invoice_id}/einvoice", response_class=Response)
async def get_invoice_einvoice(
    invoice_id: uuid.UUID, db: DbDep, settings: SettingsDep, _: Operator, format: str | None = FORMAT_QUERY
) -> Response:
    def tx(session: Session) -> Produced | Response:
        try:
            invoice = repo.get_invoice(session, invoice_id)
        except repo.InvoiceNotFound:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"invoice {invoice_id} does not exist"
            ) from None
        fmt = _format(format, invoice.customer.einvoice_format)
        if invoice.number is None:
            raise HTTPException(status.HTTP_409_CONFLICT, detail="the invoice is not issued yet")
        sent = CUSTOMER_FORMAT.get(invoice.customer.einvoice_format or "none")
        if fmt == sent and invoice.einvoice_status == "valid" and invoice.einvoice_key:
            stored = session.get(Document, invoice.einvoice_key)
            if stored is not None:
                name = invoice.einvoice_key.rsplit("/", 1)[-1]
                return Response(
                    stored.content,
                    media_type=stored.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'},
                )
        return _invoice_document(session, invoice, fmt, settings)

    found = await db.run(tx)
    return found if isinstance(found, Response) else _answer(found)


@router.get("/credit-notes/{credit_note_id}/einvoice", response_class=Response)
async def get_credit_note_einvoice(
    credit_note_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    _: Operator,
    format: str | None = FORMAT_QUERY,
) -> Response:
    def tx(session: Session) -> Produced:
        note = session.get(CreditNote, credit_note_id)
        if note is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"credit note {credit_note_id} does not exist"
            )
        fmt = _format(format, note.invoice.customer.einvoice_format)
        profile = profile_for(fmt)
        try:
            doc = from_credit_note(session, note, settings)
        except EInvoiceRefused as exc:
            return Produced(fmt, b"", b"", profile.media_type, "", refusal(exc))

        def pdf() -> bytes:
            document = replace(credit_note_document(note, settings), embed_fonts=True)
            return _render.render(document, settings.template_dir)

        return produce(doc, profile, shared_pool(settings.einvoice_processes), render_pdf=pdf)

    return _answer(await db.run(tx))


@router.post("/invoices/{invoice_id}/einvoice/retry", status_code=status.HTTP_202_ACCEPTED)
async def retry_einvoice(
    invoice_id: uuid.UUID, db: DbDep, temporal: TemporalDep, _: Operator
) -> dict[str, str]:
    """After fixing what the rules named (the customer's address, VAT id, buyer reference; the seller
    settings), build and validate the e-invoice again; a valid one goes out at once."""

    def tx(session: Session) -> Invoice | None:
        return session.get(Invoice, invoice_id)

    invoice = await db.run(tx)
    if invoice is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"invoice {invoice_id} does not exist")
    if invoice.status != InvoiceStatus.EINVOICE_INVALID:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the invoice is {invoice.status}, not waiting for an e-invoice fix",
        )
    try:
        await temporal.get_workflow_handle(invoice.workflow_id).signal("retry_einvoice")
    except RPCError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"the invoice's workflow: {exc.message}"
        ) from exc
    return {"status": "retrying"}


@router.get("/i/{token}/einvoice", response_class=Response, include_in_schema=False)
async def hosted_einvoice(token: str, db: DbDep, settings: SettingsDep) -> Response:
    """The hosted invoice page's download: the e-invoice the client was sent (signed link, no login)."""
    invoice_id = invoice_page_id(settings.secret_key, token)
    if invoice_id is None:
        return Response(status_code=400)

    def tx(session: Session) -> tuple[bytes, str, str] | None:
        invoice = session.get(Invoice, invoice_id)
        if invoice is None or invoice.einvoice_status != "valid" or not invoice.einvoice_key:
            return None
        stored = session.get(Document, invoice.einvoice_key)
        if stored is None:
            return None
        return stored.content, stored.content_type, invoice.einvoice_key.rsplit("/", 1)[-1]

    found = await db.run(tx)
    if found is None:
        return Response(status_code=404)
    content, media_type, name = found
    return Response(
        content, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
