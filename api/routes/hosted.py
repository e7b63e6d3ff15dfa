"""The hosted invoice page: `/i/{token}` shows the client their invoice, its PDF, status and amount due,
and a Pay button when a payment link is configured; `/i/{token}/open.gif` is the email's open pixel.

Views and opens are counted per visitor and day (``persistence.link_visits``): the first of each
visitor's day goes to the timeline (with IP and user agent), for at most ten visitors a day, the rest
are only counted, so a public link cannot grow the append-only timeline without bound. Opens are a weak
signal only, since mail clients prefetch images: neither ever changes money state. The link is signed
(`core.links.sign_invoice_page`) and only shows; it acts on nothing.
"""

from __future__ import annotations

import base64
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.deps import DbDep, SettingsDep
from api.pages import page, result
from billing.money import format_money
from core.links import invoice_page_id
from persistence import credit_notes as notes
from persistence import invoices as repo
from persistence.link_visits import record_visit

router = APIRouter(tags=["hosted invoice page"], include_in_schema=False)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
TIMELINE_KINDS = {
    "issued": "Issued",
    "email.invoice.sent": "Sent (accepted by the mail server)",
    "opened": "Opened (email)",
    "viewed": "Viewed",
    "email.reminder.sent": "Reminder sent",
    "status.overdue": "Overdue",
    "payment.recorded": "Payment received",
    "status.partially_paid": "Partially paid",
    "status.paid": "Paid",
    "email.payment_receipt.sent": "Receipt sent",
    "status.void": "Void",
    "status.uncollectible": "Written off",
    "credit_note.issued": "Credit note issued",
    "credit.applied": "Credit applied",
    "status.credited": "Credited",
}
STATUS_LABELS = {
    "open": "Open",
    "overdue": "Overdue",
    "partially_paid": "Partially paid",
    "paid": "Paid",
    "void": "Void",
    "uncollectible": "Written off",
    "credited": "Credited",
}


def _record(session: Session, invoice_id: uuid.UUID, kind: str, request: Request) -> None:
    ip = request.client.host if request.client else ""
    agent = request.headers.get("user-agent", "")[:300]
    record_visit(session, invoice_id, kind, ip=ip, user_agent=agent)


def _invoice_id(settings: SettingsDep, token: str) -> uuid.UUID | None:
    return invoice_page_id(settings.secret_key, token)


@router.get("/i/{token}", response_class=HTMLResponse)
async def hosted_invoice(token: str, request: Request, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    invoice_id = _invoice_id(settings, token)
    if invoice_id is None:
        return result(400, "This link is not valid", "Use the link from the invoice email as it is.", "bad")

    def tx(session: Session) -> dict[str, object] | None:
        try:
            invoice = repo.get_invoice(session, invoice_id)
        except repo.InvoiceNotFound:
            return None
        if invoice.number is None:  # a draft is not the client's to see
            return None
        _record(session, invoice.id, "viewed", request)
        cur = invoice.currency
        events = [e for e in repo.timeline(session, invoice.id) if e.kind in TIMELINE_KINDS]
        pay_url = None
        if settings.payment_link_template and invoice.status in ("open", "overdue", "partially_paid"):
            pay_url = settings.payment_link_template.format(
                invoice_id=invoice.id, number=invoice.number, amount_due=invoice.amount_due, currency=cur
            )
        return {
            "seller": settings.seller_name,
            "number": invoice.number,
            "customer": invoice.customer.name,
            "status": invoice.status,
            "status_label": STATUS_LABELS.get(invoice.status, invoice.status),
            "total": format_money(invoice.total, cur),
            "tax": format_money(invoice.tax_total, cur),
            "amount_due": format_money(invoice.amount_due, cur),
            "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
            "pdf_url": f"/i/{token}/pdf" if invoice.pdf_key else None,
            "einvoice_url": f"/i/{token}/einvoice"
            if invoice.einvoice_status == "valid" and invoice.einvoice_key
            else None,
            "pay_url": pay_url,
            "lines": [
                {
                    "description": l.description,
                    "quantity": f"{l.quantity.normalize():f}",
                    "unit_price": format_money(l.unit_price, cur),
                    "net": format_money(l.net, cur),
                }
                for l in invoice.lines
            ],
            "timeline": [
                {"kind": e.kind, "label": TIMELINE_KINDS[e.kind], "at": e.at.strftime("%Y-%m-%d %H:%M UTC")}
                for e in events
            ],
            "amount_paid": format_money(invoice.amount_paid, cur) if invoice.amount_paid else "",
            "amount_credited": format_money(invoice.amount_credited, cur) if invoice.amount_credited else "",
            "credit_notes": [
                {
                    "number": n.number,
                    "total": format_money(n.total, cur),
                    "reason": n.reason,
                    "issue_date": n.issue_date.isoformat(),
                    "pdf_url": f"/i/{token}/credit-notes/{n.id}/pdf" if n.pdf_key else None,
                }
                for n in notes.for_invoice(session, invoice.id)
            ],
        }

    context = await db.run(tx)
    if context is None:
        return result(404, "Invoice not found", "The invoice behind this link does not exist.", "bad")
    return page("hosted_invoice.html", **context)


@router.get("/i/{token}/pdf")
async def hosted_pdf(token: str, db: DbDep, settings: SettingsDep) -> Response:
    invoice_id = _invoice_id(settings, token)
    if invoice_id is None:
        return Response(status_code=400)

    def tx(session: Session) -> tuple[bytes, str] | None:
        from persistence.models import Document

        try:
            invoice = repo.get_invoice(session, invoice_id)
        except repo.InvoiceNotFound:
            return None
        document = session.get(Document, invoice.pdf_key) if invoice.pdf_key else None
        return (document.content, invoice.number or "invoice") if document is not None else None

    found = await db.run(tx)
    if found is None:
        return Response(status_code=404)
    content, number = found
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
    )


@router.get("/i/{token}/credit-notes/{credit_note_id}/pdf")
async def hosted_credit_note_pdf(
    token: str, credit_note_id: uuid.UUID, db: DbDep, settings: SettingsDep
) -> Response:
    """A credit note of the invoice behind the link (and only of that invoice)."""
    invoice_id = _invoice_id(settings, token)
    if invoice_id is None:
        return Response(status_code=400)

    def tx(session: Session) -> tuple[bytes, str] | None:
        from persistence.models import CreditNote, Document

        note = session.get(CreditNote, credit_note_id)
        if note is None or note.invoice_id != invoice_id or note.pdf_key is None:
            return None
        document = session.get(Document, note.pdf_key)
        return (document.content, note.number) if document is not None else None

    found = await db.run(tx)
    if found is None:
        return Response(status_code=404)
    content, number = found
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
    )


@router.get("/i/{token}/open.gif")
async def open_pixel(token: str, request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """A weak signal: recorded on the timeline, never acted on (prefetching mail clients open everything)."""
    invoice_id = _invoice_id(settings, token)
    if invoice_id is not None:

        def tx(session: Session) -> None:
            try:
                repo.get_invoice(session, invoice_id)
            except repo.InvoiceNotFound:
                return
            _record(session, invoice_id, "opened", request)

        await db.run(tx)
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store, private"})
