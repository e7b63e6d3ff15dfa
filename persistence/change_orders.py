"""Change orders: amend a project's milestones and contract, signed or not, without touching what is billed.

A change order adds, removes or changes pending milestones and sets the contract amount (by default the
old contract moved by what the milestones moved), optionally with a deposit of its own. It is checked
when it is posted and again when it is applied (a milestone may have been billed meanwhile): billed
milestones never change, the milestones never exceed the contract, and the deposit still outstanding
must be recoupable from what stays unbilled. Applying it changes nothing already billed: the recoupment
rule (`billing.projects.recoupment`) spreads what is outstanding over exactly the milestones left, so
deposit plus every invoice still adds up to the amended milestones.

One that approval rules route (source ``change_order``) waits ``pending_approval`` first
(`persistence.change_order_approvals`); a rejected one is never applied.

One that needs a signature waits ``pending_signature`` with its envelope routed to the project like the
contract's (`project_refs`); the e-sign webhook for that envelope applies it. One that needs none is
applied by the project's workflow (a ``change_order`` trigger), under the project's row lock like every
billing decision.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.errors import MoneyError
from billing.money import parse_decimal, quantize, require_minor_units
from billing.totals import LineInput
from persistence import change_order_approvals
from persistence.models import ChangeOrder, Invoice, Project, ProjectMilestone, ProjectRef
from persistence.time_entries import InvoiceMaker
from workflows.payloads import BillOutcome, ProjectTrigger

HUNDRED = Decimal(100)
SIGNATURE_SYSTEMS = ("docusign", "dropbox_sign", "pandadoc", "generic")


@dataclass(frozen=True)
class Amended:
    """The plan after a change order: milestones (key → amount, name) and the money around them."""

    contract: Decimal
    milestones: dict[str, tuple[str, Decimal]]
    added: list[dict[str, Any]]
    deposit_extra: Decimal


def _amount(value: object, currency: str, path: str) -> Decimal:
    amount = require_minor_units(parse_decimal(value, field=path), currency, field=path)
    if amount <= 0:
        raise MoneyError(f"{path}: must be greater than 0")
    return amount


def amend(project: Project, changes: dict[str, Any]) -> Amended:
    """The amended plan, or a MoneyError naming the field of the change order that cannot be applied."""
    cur = project.currency
    by_key = {m.key: m for m in project.milestones}
    plan: dict[str, tuple[str, Decimal]] = {m.key: (m.name, m.amount) for m in project.milestones}
    for i, key in enumerate(changes.get("remove", [])):
        if key not in by_key:
            raise MoneyError(f"remove[{i}]: the project has no milestone {key!r}")
        if by_key[key].status == "billed":
            raise MoneyError(f"remove[{i}]: milestone {key!r} is billed; billed milestones never change")
        del plan[key]
    for i, change in enumerate(changes.get("change", [])):
        key = change["key"]
        if key not in plan:
            raise MoneyError(f"change[{i}].key: the project has no milestone {key!r} (or it is removed)")
        if by_key[key].status == "billed":
            raise MoneyError(f"change[{i}].key: milestone {key!r} is billed; billed milestones never change")
        name, amount = plan[key]
        if change.get("amount") is not None:
            amount = _amount(change["amount"], cur, f"change[{i}].amount")
        plan[key] = (change.get("name") or name, amount)
    old_total = sum((m.amount for m in project.milestones), Decimal(0))
    contract_given = changes.get("contract_amount")
    for i, add in enumerate(changes.get("add", [])):
        if add["key"] in plan:
            raise MoneyError(f"add[{i}].key: the project has a milestone {add['key']!r} already")
        if add.get("percent") is not None and contract_given is None:
            raise MoneyError(f"add[{i}].percent: a percent milestone needs contract_amount")
    added: list[dict[str, Any]] = []
    contract = _amount(contract_given, cur, "contract_amount") if contract_given is not None else None
    for i, add in enumerate(changes.get("add", [])):
        if add.get("amount") is not None:
            amount = _amount(add["amount"], cur, f"add[{i}].amount")
        else:
            assert contract is not None
            amount = quantize(
                contract * parse_decimal(add["percent"], field=f"add[{i}].percent") / HUNDRED, cur
            )
        plan[add["key"]] = (add["name"], amount)
        added.append(add | {"resolved": str(amount)})
    new_total = sum((amount for _, amount in plan.values()), Decimal(0))
    if contract is None:
        contract = project.contract_amount + new_total - old_total
    if new_total > contract:
        raise MoneyError(f"milestones: they add up to {new_total}, more than the contract ({contract})")
    if not plan and project.milestones and not project.tm_rule:
        raise MoneyError("remove: a project keeps at least one milestone")
    if changes.get("tm_cap") is not None:
        if not project.tm_rule:
            raise MoneyError("tm_cap: the project has no time_and_materials rule")
        _amount(changes["tm_cap"], cur, "tm_cap")
    extra = Decimal(0)
    deposit = changes.get("deposit")
    if deposit:
        if deposit.get("amount") is not None:
            extra = _amount(deposit["amount"], cur, "deposit.amount")
        else:
            raised = contract - project.contract_amount
            if raised <= 0:
                raise MoneyError("deposit.percent: the change order does not raise the contract")
            extra = quantize(
                raised * parse_decimal(deposit["percent"], field="deposit.percent") / HUNDRED, cur
            )
    unbilled = sum(
        (amount for key, (_, amount) in plan.items() if key not in by_key or by_key[key].status != "billed"),
        Decimal(0),
    )
    outstanding = project.deposit_billed - project.deposit_recouped + extra
    if outstanding > unbilled:
        raise MoneyError(
            f"deposit: {outstanding} would be outstanding, more than the unbilled milestones can recoup "
            f"({unbilled})"
        )
    return Amended(contract=contract, milestones=plan, added=added, deposit_extra=extra)


def create(
    session: Session,
    project: Project,
    changes: dict[str, Any],
    *,
    reason: str,
    reference: str,
    signature: tuple[str, str] | None,
    actor: str,
) -> ChangeOrder:
    """Check and store a change order; one to be signed routes its envelope to the project."""
    amended = amend(project, changes)
    number = (
        session.scalar(select(func.max(ChangeOrder.number)).where(ChangeOrder.project_id == project.id)) or 0
    ) + 1
    order = ChangeOrder(
        id=uuid.uuid4(),
        project_id=project.id,
        number=number,
        reason=reason.strip(),
        reference=reference.strip(),
        changes=changes,
        status="pending_signature" if signature else "approved",
        envelope_system=signature[0] if signature else None,
        envelope_id=signature[1].strip() if signature else None,
        contract_before=project.contract_amount,
        contract_after=amended.contract,
        deposit_amount=amended.deposit_extra,
        created_by=actor,
    )
    order.approval = change_order_approvals.route_chain(session, project, order)
    if order.approval is not None:
        order.status = "pending_approval"
    session.add(order)
    if signature:
        project.refs.append(ProjectRef(system=signature[0], ref=signature[1].strip(), milestone_key=None))
    session.flush()
    return order


def for_envelope(session: Session, project_id: uuid.UUID, system: str, envelope: str) -> ChangeOrder | None:
    return session.scalars(
        select(ChangeOrder).where(
            ChangeOrder.project_id == project_id,
            ChangeOrder.envelope_system == system,
            ChangeOrder.envelope_id == envelope,
        )
    ).first()


def of_project(session: Session, project_id: uuid.UUID) -> list[ChangeOrder]:
    return list(
        session.scalars(
            select(ChangeOrder).where(ChangeOrder.project_id == project_id).order_by(ChangeOrder.number)
        )
    )


def apply(
    session: Session,
    project: Project,
    order: ChangeOrder,
    trigger: ProjectTrigger,
    out: BillOutcome,
    maker: InvoiceMaker,
) -> None:
    """Apply a signed or approved change order once (the caller holds the project's row lock)."""
    if order.status == "applied":
        if order.deposit_invoice_id is not None and order.note == trigger.event_key:  # a retry
            out.invoices.append(maker.as_input(session.get(Invoice, order.deposit_invoice_id)))  # type: ignore[arg-type]
        else:
            out.detail += f"change order {order.number} already applied; "
        return
    if order.status == "refused":
        out.detail += f"change order {order.number} was refused; "
        return
    if order.status == "rejected":
        out.detail += f"change order {order.number} was rejected by its approvers; "
        return
    if order.status == "pending_approval":  # ask the current step (again: the outbox sends each once)
        if trigger.kind == "contract_signed":
            change_order_approvals.signed_while_waiting(order)
        out.emails.extend(change_order_approvals.emails_for_step(order))
        out.detail += f"change order {order.number} waits for approval; "
        return
    try:
        amended = amend(project, order.changes)
    except MoneyError as exc:
        order.status, order.note = "refused", f"cannot be applied any more: {exc}"
        out.detail += f"change order {order.number} refused: {exc}; "
        return
    removed = set(order.changes.get("remove", []))
    for milestone in [m for m in project.milestones if m.key in removed]:
        project.milestones.remove(milestone)
    project.refs[:] = [r for r in project.refs if r.milestone_key not in removed]
    for milestone in project.milestones:
        name, amount = amended.milestones[milestone.key]
        if milestone.status != "billed":
            milestone.name, milestone.amount = name, amount
    position = max((m.position for m in project.milestones), default=-1) + 1
    for i, add in enumerate(amended.added):
        project.milestones.append(
            ProjectMilestone(
                key=add["key"],
                name=add["name"].strip(),
                position=position + i,
                amount=Decimal(add["resolved"]),
                percent=Decimal(add["percent"]) if add.get("percent") is not None else None,
                bill_on=add.get("bill_on", "milestone"),
                after_key=add.get("after"),
                status="pending",
                recouped=Decimal(0),
            )
        )
        for system, ref in (add.get("external_refs") or {}).items():
            project.refs.append(ProjectRef(system=system, ref=ref.strip(), milestone_key=add["key"]))
    if order.changes.get("tm_cap") is not None and project.tm_rule:
        project.tm_rule = {**project.tm_rule, "cap": str(order.changes["tm_cap"])}
    order.contract_before, order.contract_after = project.contract_amount, amended.contract
    project.contract_amount = amended.contract
    extra = amended.deposit_extra
    if project.deposit_invoice_id is None:
        base = project.deposit_amount
        if project.deposit_percent is not None:
            base = quantize(amended.contract * project.deposit_percent / HUNDRED, project.currency)
        project.deposit_amount = base + extra
    elif extra > 0:
        invoice = maker.new(
            f"change-order:{order.id}:deposit",
            [
                LineInput(
                    description=f"{project.name}: Deposit (change order {order.number})",
                    quantity=Decimal(1),
                    unit_price=extra,
                    tax_rate=project.tax_rate,
                )
            ],
            f"Advance payment for change order {order.number}, deducted from the milestone invoices "
            "that follow.",
        )
        order.deposit_invoice_id = invoice.id
        project.deposit_billed += extra
        project.deposit_amount += extra
        out.invoices.append(maker.as_input(invoice))
    if project.status == "completed" and any(m.status == "pending" for m in project.milestones):
        project.status = "active"
    order.status, order.applied_at, order.note = "applied", datetime.now(UTC), trigger.event_key
    out.detail += f"change order {order.number} applied; "
    session.flush()


def change_order_out(order: ChangeOrder) -> dict[str, Any]:
    """What GET /projects/{id} shows of a change order: what it asked for and what it changed."""
    return {
        "id": str(order.id),
        "number": order.number,
        "status": order.status,
        "reason": order.reason,
        "reference": order.reference,
        "changes": order.changes,
        "contract_before": str(order.contract_before) if order.contract_before is not None else None,
        "contract_after": str(order.contract_after) if order.contract_after is not None else None,
        "deposit": str(order.deposit_amount),
        "deposit_invoice_id": str(order.deposit_invoice_id) if order.deposit_invoice_id else None,
        "signature": (
            {"system": order.envelope_system, "envelope_id": order.envelope_id} if order.envelope_id else None
        ),
        "note": order.note if order.status in ("refused", "rejected") else "",
        "approval": change_order_approvals.approval_out(order),
        "created_at": order.created_at.isoformat() if order.created_at else None,
        "applied_at": order.applied_at.isoformat() if order.applied_at else None,
    }
