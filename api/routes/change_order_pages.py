"""The pages behind a change order approver's signed link: ``GET`` only shows (mail scanners follow
links and must decide nothing), the page's ``POST`` decides once (`persistence.change_order_approvals`).
A step completed or the last approval queues the order in the webhook inbox in the decision's own
transaction, so the dispatcher hands it to the project's workflow (which asks the next step or applies
it) even if Temporal is down at that moment; a rejection is recorded on the order, nothing is applied."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.deps import DbDep, SettingsDep
from api.pages import page, result
from api.validation import StorableText
from billing.money import format_money
from core.links import ChangeOrderToken, LinkError, verify_change_order
from persistence import change_order_approvals as approvals
from persistence.models import ChangeOrder, Project

router = APIRouter(prefix="/approvals/change-orders", tags=["approval pages"], include_in_schema=False)
LINK_PAGES = {
    "tampered": (400, "This link is not valid", "Use the link from the email as it is."),
    "expired": (410, "This link has expired", "Ask for a new approval request; nothing was changed."),
}


def _token(settings: SettingsDep, value: str) -> ChangeOrderToken | HTMLResponse:
    try:
        return verify_change_order(
            settings.secret_key, value, max_age_s=settings.approval_link_ttl_hours * 3600
        )
    except LinkError as exc:
        code, heading, message = LINK_PAGES[exc.reason]
        return result(code, heading, message, "bad")


def _summary(session: Session, token: ChangeOrderToken) -> dict[str, Any] | None:
    try:
        order = session.get(ChangeOrder, uuid.UUID(token.change_order_id))
    except ValueError:
        return None
    project = session.get(Project, order.project_id) if order is not None else None
    if order is None or project is None:
        return None
    approval = order.approval or {}
    cur = project.currency
    changes = order.changes
    lines = [f"Add {a['key']}: {a['name']}" for a in changes.get("add", [])]
    lines += [f"Remove {key}" for key in changes.get("remove", [])]
    lines += [f"Change {c['key']}" for c in changes.get("change", [])]
    return {
        "number": order.number,
        "project": project.name,
        "project_id": str(project.id),
        "customer": project.customer.name,
        "reason": order.reason,
        "reference": order.reference,
        "contract_before": format_money(order.contract_before or 0, cur),
        "contract_after": format_money(order.contract_after or 0, cur),
        "changes": lines,
        "used": token.token_id in approval.get("used", []),
        "waiting": order.status == "pending_approval" and approval.get("step") == token.step,
        "awaiting": approvals.awaiting(approval) if approval else [],
        "steps": len(approval.get("steps", [])),
    }


@router.get("/{value}", response_class=HTMLResponse)
async def show(value: str, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    token = _token(settings, value)
    if isinstance(token, HTMLResponse):
        return token
    summary = await db.run(lambda s: _summary(s, token))
    if summary is None:
        return result(
            404, "Change order not found", "The change order behind this link does not exist.", "bad"
        )
    if summary["used"]:
        return result(409, "This link has been used", "It already recorded a decision.")
    if not summary["waiting"] or token.approver not in summary["awaiting"]:
        return result(409, "Nothing to decide here", "This change order no longer waits for your decision.")
    return page(
        "change_order_approval.html",
        approver=token.approver,
        step=token.step + 1,
        action_url=f"/approvals/change-orders/{value}",
        **summary,
    )


@router.post("/{value}", response_class=HTMLResponse)
async def act(
    value: str,
    request: Request,
    db: DbDep,
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
            422, "A reason is needed", "Say why you reject the change order; nothing was changed.", "bad"
        )

    def tx(session: Session) -> approvals.Decided:
        return approvals.decide_and_queue(
            session,
            uuid.UUID(token.change_order_id),
            step=token.step,
            approver=token.approver,
            token_id=token.token_id,
            decision=decision,
            comment=comment.strip(),
            via="link",
        )

    decided = await db.run(tx)
    if decided.outcome == "refused":
        return result(409, "Nothing to decide here", decided.message)
    request.app.state.dispatcher.wake()  # the inbox hands the order to the project's workflow
    return result(
        200,
        "Rejected" if decided.outcome == "rejected" else "Approved",
        decided.message,
        "bad" if decided.outcome == "rejected" else "good",
    )
