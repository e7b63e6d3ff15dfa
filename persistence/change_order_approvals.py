"""Change orders through approval rules: a rule matching source ``change_order`` gives the order a chain
of approvers before it may amend the project.

The facts the rules see are the project's (currency, category, the client's tags, whether the client is
new) with the change order's value as the total: by how much it moves the contract (up or down), and
source ``change_order``. The chain is routed once, when the order is posted, and kept on the order
(``approval``: rule, steps, the current step, who approved it, the links used), so a rule changed later
does not reroute an order already waiting.

Approvers get the same kind of signed one-click link as invoice approvers (`core.links`, a salt of its
own); a link decides once (its id is recorded under the order's row lock). ``any`` / ``all`` per step;
the last approval makes the order ``approved`` (or ``pending_signature`` if its envelope is not signed
yet) and hands it to the project's workflow to be applied; a rejection (a reason is required) makes it
``rejected``: never applied, with who and why on the project page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.approval_rules import route
from persistence import approval_rules as rules_repo
from persistence import webhook_inbox as inbox
from persistence.models import ChangeOrder, Project
from persistence.webhook_inbox import InboundEvent, Route
from workflows.payloads import ProjectEmail, TriggerKind

SOURCE = "change_order"


def route_chain(session: Session, project: Project, order: ChangeOrder) -> dict[str, Any] | None:
    """The chain approval rules give this order, or None when no rule asks for one."""
    moved = abs((order.contract_after or Decimal(0)) - (order.contract_before or Decimal(0)))
    facts = rules_repo.facts_for(
        session,
        project.customer,
        moved,
        project.currency,
        project_category=project.category,
        source=SOURCE,
    )
    decision = route([rule for _, rule in rules_repo.load_all(session)], facts)
    if not decision.steps:
        return None
    client = [e.strip().lower() for e in project.customer.emails[:1]]
    steps = [
        {
            "approvers": list(s.approvers) + [e for e in client if s.client_contact and e not in s.approvers],
            "mode": s.mode,
        }
        for s in decision.steps
    ]
    return {
        "rule": decision.rule,
        "reasons": list(decision.reasons),
        "steps": steps,
        "step": 0,
        "approved": [],
        "used": [],
        "decisions": [],
        "signed": False,
    }


def awaiting(approval: dict[str, Any]) -> list[str]:
    if approval["step"] >= len(approval["steps"]):
        return []
    step = approval["steps"][approval["step"]]
    return [a for a in step["approvers"] if a not in approval["approved"]]


def emails_for_step(order: ChangeOrder) -> list[ProjectEmail]:
    """One email per approver of the current step; the key makes each one sent once, ever."""
    approval = order.approval or {}
    if order.status != "pending_approval" or not approval:
        return []
    step = approval["step"]
    return [
        ProjectEmail(
            key=f"change-order:{order.id}:step{step}:{approver}",
            kind="change_order_approval",
            project_id=str(order.project_id),
            to=[approver],
            change_order_id=str(order.id),
            step=step,
            approver=approver,
            of_steps=len(approval["steps"]),
        )
        for approver in awaiting(approval)
    ]


def step_event(order: ChangeOrder) -> str:
    """The project trigger's key for where the order's approval stands (each step is a new event)."""
    approval = order.approval or {}
    if order.status == "approved":
        return f"change-order:{order.id}:approved"
    return f"change-order:{order.id}:step{approval.get('step', 0)}"


@dataclass(frozen=True)
class Decided:
    outcome: str  # recorded | next_step | approved | pending_signature | rejected | refused
    message: str
    order: ChangeOrder | None = None


def decide(
    session: Session,
    order_id: uuid.UUID,
    *,
    step: int,
    approver: str,
    token_id: str,
    decision: str,
    comment: str,
    via: str,
) -> Decided:
    """One approver's decision, under the order's row lock; a link that cannot decide says why."""
    order = session.scalars(
        select(ChangeOrder).where(ChangeOrder.id == order_id).with_for_update()
    ).one_or_none()
    if order is None:
        return Decided("refused", "This change order does not exist.")
    approval = dict(order.approval or {})
    if token_id in approval.get("used", []):
        return Decided("refused", "This link has been used; nothing was changed.", order)
    if order.status != "pending_approval" or not approval:
        return Decided("refused", "This change order no longer waits for an approval decision.", order)
    if approval["step"] != step:
        return Decided("refused", "This approval step is already complete.", order)
    if approver not in awaiting(approval):
        return Decided(
            "refused", "Your decision for this step is already recorded, or no longer needed.", order
        )
    approval["used"] = [*approval["used"], token_id]
    approval["decisions"] = [
        *approval["decisions"],
        {
            "approver": approver,
            "decision": decision,
            "step": step,
            "comment": comment,
            "via": via,
            "at": datetime.now(UTC).isoformat(),
        },
    ]
    if decision == "reject":
        order.status, order.note = "rejected", f"rejected by {approver}: {comment}"
        order.approval = approval
        session.flush()
        return Decided(
            "rejected", "Your rejection and reason are recorded; the change order is not applied.", order
        )
    approval["approved"] = [*approval["approved"], approver]
    current = approval["steps"][step]
    done = current["mode"] == "any" or not [a for a in current["approvers"] if a not in approval["approved"]]
    outcome = "recorded"
    if done:
        approval["step"], approval["approved"] = step + 1, []
        outcome = "next_step"
        if approval["step"] >= len(approval["steps"]):
            waiting_for_signature = order.envelope_id is not None and not approval.get("signed")
            order.status = "pending_signature" if waiting_for_signature else "approved"
            outcome = order.status
    order.approval = approval
    session.flush()
    return Decided(outcome, "Thank you. Your approval is recorded.", order)


def decide_and_queue(session: Session, order_id: uuid.UUID, **decision: Any) -> Decided:
    """`decide`, and in the same transaction queue the order for its project's workflow in the webhook
    inbox when a step completed or the order is approved: the dispatcher hands it over (retrying while
    Temporal is down), so a decision is never recorded without the workflow hearing of it."""
    decided = decide(session, order_id, **decision)
    order = decided.order
    if order is not None and decided.outcome in ("next_step", "approved"):
        event = InboundEvent(
            "invoiceflow", step_event(order), TriggerKind.CHANGE_ORDER, "change_order", str(order.id)
        )
        inbox.routed(
            session, inbox.record(session, event, {"decision": decision["decision"]}), Route(order.project_id)
        )
    return decided


def signed_while_waiting(order: ChangeOrder) -> None:
    """Its envelope was signed before the approvers finished: the last approval applies it at once."""
    order.approval = {**(order.approval or {}), "signed": True}


def approval_out(order: ChangeOrder) -> dict[str, Any] | None:
    approval = order.approval
    if not approval:
        return None
    return {
        "rule": approval["rule"],
        "step": min(approval["step"] + 1, len(approval["steps"])),
        "steps": len(approval["steps"]),
        "awaiting": awaiting(approval) if order.status == "pending_approval" else [],
        "decisions": approval["decisions"],
    }
