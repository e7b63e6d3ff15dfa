"""The pages behind signed approval links.

``GET`` only shows (mail scanners and link previewers follow links; they must approve nothing);
``POST`` from the page acts. A link is single-use (its id is claimed before the decision goes to the
workflow), and a used, expired, tampered or superseded link shows a page that says so and changes
nothing. The workflow's Update validator is the last word on "superseded" (step moved on, new revision).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import DbDep, SettingsDep, TemporalDep
from api.pages import HEADERS, page, result
from api.validation import StorableText
from billing.money import format_money
from core.links import ApprovalToken, LinkError, verify_approval
from documents.builders import invoice_document
from documents.rendering import render_invoice_pdf
from persistence import invoices as repo
from persistence.models import ApprovalLinkUse
from services.errors import Unavailable
from services.workflow_calls import invoice_state
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import DecisionInput, InvoiceState

router = APIRouter(prefix="/approvals", tags=["approval pages"], include_in_schema=False)
LINK_PAGES = {
    "tampered": (
        400,
        "This link is not valid",
        "It may have been cut short or changed. Use the link from the email as it is.",
    ),
    "expired": (410, "This link has expired", "Ask for a new approval request; nothing was changed."),
}


def _token(settings: SettingsDep, value: str) -> ApprovalToken | HTMLResponse:
    try:
        return verify_approval(settings.secret_key, value, max_age_s=settings.approval_link_ttl_hours * 3600)
    except LinkError as exc:
        code, heading, message = LINK_PAGES[exc.reason]
        return result(code, heading, message, "bad")


def _summary(session: Session, token: ApprovalToken) -> dict[str, Any] | None:
    try:
        invoice = repo.get_invoice(session, uuid.UUID(token.invoice_id))
    except (repo.InvoiceNotFound, ValueError):
        return None
    used = session.get(ApprovalLinkUse, token.token_id)
    cur = invoice.currency
    return {
        "customer": invoice.customer.name,
        "total": format_money(invoice.total, cur),
        "tax": format_money(invoice.tax_total, cur),
        "due": invoice.due_date.isoformat() if invoice.due_date else "",
        "notes": invoice.notes,
        "workflow_id": invoice.workflow_id,
        "used": used.decision if used else None,
        # The client's own contact sees no internal detail (the chain, its steps, other approvers).
        "client": token.approver in {e.strip().lower() for e in invoice.customer.emails},
        "lines": [
            {
                "description": line.description,
                "quantity": f"{line.quantity.normalize():f}",
                "amount": format_money(line.net, cur),
            }
            for line in invoice.lines
        ],
    }


def _unavailable(**summary: Any) -> HTMLResponse:
    """503, not "nothing to decide": a slow or unreachable engine says nothing about the invoice, and the
    approver should try the same link again rather than think it is spent."""
    response = result(
        503,
        "Please try again in a minute",
        "The invoice could not be checked just now; nothing was changed. Open the same link again shortly.",
        "",
        **summary,
    )
    response.headers["Retry-After"] = "30"
    return response


def _superseded(state: InvoiceState | None, token: ApprovalToken) -> str | None:
    if state is None or state.status != "pending_approval" or state.approval_step is None:
        return "This invoice no longer waits for an approval decision."
    if state.revision != token.revision:
        return "The invoice was changed after this approval was requested; use the newest email."
    if state.approval_step != token.step + 1:
        return "This approval step is already complete."
    if token.approver not in state.awaiting_approvers:
        return "Your decision for this step is already recorded, or no longer needed."
    return None


@router.get("/{value}", response_class=HTMLResponse)
async def show(
    value: str, request: Request, db: DbDep, temporal: TemporalDep, settings: SettingsDep
) -> HTMLResponse:
    token = _token(settings, value)
    if isinstance(token, HTMLResponse):
        return token
    summary = await db.run(lambda s: _summary(s, token))
    if summary is None:
        return result(404, "Invoice not found", "The invoice behind this link does not exist.", "bad")
    if summary["used"]:
        return result(
            409,
            "This link has been used",
            f"It already recorded a decision ({summary['used']}).",
            "",
            **summary,
        )
    try:
        state = await invoice_state(temporal, summary["workflow_id"])
    except Unavailable:
        return _unavailable(**summary)
    reason = _superseded(state, token)
    if reason or state is None:
        return result(409, "Nothing to decide here", reason or "", "", **summary)
    return page(
        "approval.html",
        approver=token.approver,
        step=None if summary["client"] else token.step + 1,
        steps=None if summary["client"] else state.approval_steps,
        action_url=f"/approvals/{value}",
        preview_url=f"/approvals/{value}/preview.pdf",
        **summary,
    )


@router.get("/{value}/preview.pdf")
async def preview(value: str, db: DbDep, temporal: TemporalDep, settings: SettingsDep) -> Response:
    """The draft as a PDF, only while the link can still decide: a used or superseded link shows the
    same page as the link itself, never the document."""
    token = _token(settings, value)
    if isinstance(token, HTMLResponse):
        return token
    summary = await db.run(lambda s: _summary(s, token))
    if summary is None:
        return result(404, "Invoice not found", "The invoice behind this link does not exist.", "bad")
    if summary["used"]:
        return result(409, "This link has been used", f"It already recorded a decision ({summary['used']}).")
    try:
        reason = _superseded(await invoice_state(temporal, summary["workflow_id"]), token)
    except Unavailable:
        return _unavailable()
    if reason:
        return result(409, "Nothing to decide here", reason)

    def load(session: Session):  # type: ignore[no-untyped-def]
        return invoice_document(repo.get_invoice(session, uuid.UUID(token.invoice_id)), settings)

    try:
        document = await db.run(load)
    except repo.InvoiceNotFound:
        return result(404, "Invoice not found", "The invoice behind this link does not exist.", "bad")
    content = await run_in_threadpool(render_invoice_pdf, document, settings.template_dir)
    return Response(
        content,
        media_type="application/pdf",
        headers={**HEADERS, "Content-Disposition": 'inline; filename="draft.pdf"'},
    )


@router.post("/{value}", response_class=HTMLResponse)
async def act(
    value: str,
    request: Request,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    decision: str = Form(...),
    comment: Annotated[StorableText, Form(max_length=2000)] = "",
) -> HTMLResponse:
    token = _token(settings, value)
    if isinstance(token, HTMLResponse):
        return token
    if decision not in ("approve", "reject"):
        return result(422, "Unknown decision", "Choose Approve or Reject on the page.", "bad")
    if decision == "reject" and not comment.strip():
        return result(
            422,
            "A reason is needed",
            "Go back and say why you reject the invoice; nothing was changed.",
            "bad",
        )
    summary = await db.run(lambda s: _summary(s, token))
    if summary is None:
        return result(404, "Invoice not found", "The invoice behind this link does not exist.", "bad")
    if summary["used"]:
        return result(
            409,
            "This link has been used",
            "It already recorded a decision; nothing was changed.",
            "",
            **summary,
        )
    try:
        reason = _superseded(await invoice_state(temporal, summary["workflow_id"]), token)
    except Unavailable:
        return _unavailable(**summary)
    if reason:
        return result(409, "Nothing to decide here", reason, "", **summary)

    def claim(session: Session) -> None:
        session.add(
            ApprovalLinkUse(
                token_id=token.token_id,
                invoice_id=uuid.UUID(token.invoice_id),
                approver=token.approver,
                decision=decision,
            )
        )
        session.flush()

    try:
        await db.run(claim)
    except IntegrityError:
        return result(
            409,
            "This link has been used",
            "It already recorded a decision; nothing was changed.",
            "",
            **summary,
        )
    try:
        await temporal.get_workflow_handle(summary["workflow_id"]).execute_update(
            InvoiceWorkflow.decide,
            DecisionInput(
                approver=token.approver,
                decision=decision,
                comment=comment.strip(),
                step=token.step,
                revision=token.revision,
                via="link",
                ip=request.client.host if request.client else "",
                user_agent=request.headers.get("user-agent", "")[:300],
            ),
        )
    except (WorkflowUpdateFailedError, RPCError) as exc:
        await db.run(
            lambda s: s.execute(delete(ApprovalLinkUse).where(ApprovalLinkUse.token_id == token.token_id))
        )
        if isinstance(exc, RPCError) and exc.status != RPCStatusCode.NOT_FOUND:
            return _unavailable(**summary)  # the link stays unused: the same click can be made again
        reason = (
            getattr(getattr(exc, "cause", None), "message", None)
            or "The invoice no longer waits for this decision."
        )
        return result(
            409, "Nothing to decide here", reason.replace("superseded: ", "").capitalize(), "", **summary
        )
    if decision == "approve":
        return result(200, "Approved", "Thank you. Your approval is recorded.", "good", **summary)
    return result(
        200,
        "Rejected",
        "Your rejection and reason are recorded; the invoice is back in draft.",
        "bad",
        **summary,
    )
