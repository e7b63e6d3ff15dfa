"""A project as the API shows it (``GET /projects/{id}`` and every project action's answer): the plan,
what is billed, pending and left, its invoices, time & materials and change orders."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from persistence import change_orders, time_entries
from persistence import projects as repo
from persistence.models import Invoice, Project


class MilestoneOut(BaseModel):
    key: str
    name: str
    amount: str
    percent: str | None
    bill_on: str
    after: str | None = None
    status: str
    invoice_id: uuid.UUID | None
    deposit_applied: str
    external_refs: dict[str, str]


class ProjectInvoiceOut(BaseModel):
    id: uuid.UUID
    number: str | None
    status: str
    total: str
    amount_due: str


class ProjectOut(BaseModel):
    id: uuid.UUID
    workflow_id: str
    customer_id: uuid.UUID
    name: str
    currency: str
    category: str | None
    status: str
    source: str
    contract_amount: str
    deposit: dict[str, Any] | None
    milestones: list[MilestoneOut]
    external_refs: dict[str, str]
    billed: str
    left: str
    pending: list[str]
    invoices: list[ProjectInvoiceOut]
    time_and_materials: dict[str, Any] | None = None
    change_orders: list[dict[str, Any]] = Field(default_factory=list)
    start_on: str = "signature"
    started_at: datetime | None = None
    owner_email: str | None = None


def _project_refs(refs: list[Any]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for r in refs:
        if r.milestone_key is None:
            out.setdefault(r.system, []).append(r.ref)
    return {system: ",".join(values) for system, values in out.items()}


def project_out(session: Session, project: Project) -> ProjectOut:
    numbers = repo.summary(project)
    refs = [r for r in project.refs]
    invoices = session.scalars(
        select(Invoice).where(Invoice.project_id == project.id).order_by(Invoice.created_at)
    ).all()
    deposit = None
    if project.deposit_amount > 0:
        deposit = {
            "amount": str(project.deposit_amount),
            "percent": str(project.deposit_percent) if project.deposit_percent else None,
            "on": project.deposit_on,
            "billed": str(project.deposit_billed),
            "recouped": str(project.deposit_recouped),
            "invoice_id": str(project.deposit_invoice_id) if project.deposit_invoice_id else None,
        }
    return ProjectOut(
        id=project.id,
        workflow_id=project.workflow_id,
        customer_id=project.customer_id,
        name=project.name,
        currency=project.currency,
        category=project.category,
        status=project.status,
        source=project.source,
        contract_amount=str(project.contract_amount),
        deposit=deposit,
        milestones=[
            MilestoneOut(
                key=m.key,
                name=m.name,
                amount=str(m.amount),
                percent=str(m.percent) if m.percent is not None else None,
                bill_on=m.bill_on,
                after=m.after_key,
                status=m.status,
                invoice_id=m.invoice_id,
                deposit_applied=str(m.recouped),
                external_refs={r.system: r.ref for r in refs if r.milestone_key == m.key},
            )
            for m in project.milestones
        ],
        external_refs=_project_refs(refs),
        billed=str(numbers["billed"]),
        left=str(numbers["left"]),
        pending=list(numbers["pending_milestones"]),  # type: ignore[arg-type]
        invoices=[
            ProjectInvoiceOut(
                id=i.id, number=i.number, status=i.status, total=str(i.total), amount_due=str(i.amount_due)
            )
            for i in invoices
        ],
        time_and_materials=time_entries.summary(session, project),
        change_orders=[
            change_orders.change_order_out(o) for o in change_orders.of_project(session, project.id)
        ],
        start_on=project.start_on,
        started_at=project.started_at,
        owner_email=project.owner_email or project.customer.owner_email,
    )
