"""Estimates on the database: creation with a gapless EST number, conversion into an invoice."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.errors import MoneyError
from billing.projects import DepositSpec
from billing.totals import LineInput, compute_totals, parse_lines
from persistence import invoices as repo
from persistence import numbering, projects
from persistence.models import Customer, Estimate
from persistence.subscriptions import terms_json
from workflows.payloads import ConvertedEstimate, estimate_workflow_id

ESTIMATE_NAMESPACE = uuid.UUID("0b7b6a3e-9c51-4f0e-8d1e-5a2c7e9f1d34")


class EstimateNotFound(LookupError):
    pass


class InvalidEstimateOperation(ValueError):
    pass


@dataclass(frozen=True)
class NewEstimate:
    customer: Customer
    currency: str
    lines: list[LineInput]
    valid_until: date
    payment_terms: str
    notes: str = ""
    number_prefix: str = "EST"
    project_plan: dict[str, Any] | None = None  # see `project_from_plan`


def _single_tax_rate(lines: list[LineInput]) -> Decimal:
    rates = {line.tax_rate.normalize() for line in lines}
    if len(rates) != 1:
        raise MoneyError("project: an estimate that becomes a project needs one tax rate on every line")
    return lines[0].tax_rate


def project_from_plan(
    estimate_id: uuid.UUID,
    customer: Customer,
    currency: str,
    lines: list[LineInput],
    plan: dict[str, Any],
    payment_terms: str,
    name: str,
) -> projects.NewProject:
    """The project an accepted estimate becomes: the contract is the estimate's net total, its milestones
    the plan's (or one "completion" milestone for all of it), its deposit billed at acceptance."""
    contract = compute_totals(lines, currency).subtotal
    milestones = [
        projects.NewMilestone(
            key=m["key"],
            name=m["name"],
            amount=Decimal(m["amount"]) if m.get("amount") is not None else None,
            percent=Decimal(m["percent"]) if m.get("percent") is not None else None,
            refs=dict(m.get("external_refs") or {}),
            bill_on=m.get("bill_on", "milestone"),
        )
        for m in plan.get("milestones") or []
    ] or [projects.NewMilestone(key="completion", name="Completion", amount=contract)]
    deposit = plan.get("deposit") or None
    return projects.NewProject(
        customer=customer,
        name=plan.get("name") or name,
        currency=currency,
        milestones=milestones,
        payment_terms=payment_terms,
        category=plan.get("category"),
        contract_amount=contract,
        deposit=DepositSpec(
            percent=Decimal(deposit["percent"]) if deposit.get("percent") is not None else None,
            amount=Decimal(deposit["amount"]) if deposit.get("amount") is not None else None,
        )
        if deposit
        else None,
        deposit_on="signature",
        tax_rate=_single_tax_rate(lines),
        source="estimate",
        project_id=uuid.uuid5(ESTIMATE_NAMESPACE, f"project:{estimate_id}"),
    )


def create(session: Session, new: NewEstimate, today: date) -> Estimate:
    totals = compute_totals(new.lines, new.currency)
    series = numbering.series_for(new.number_prefix, today)
    estimate_id = uuid.uuid4()
    estimate = Estimate(
        id=estimate_id,
        customer_id=new.customer.id,
        number=numbering.format_number(series, numbering.allocate(session, series)),
        currency=new.currency,
        lines=terms_json(new.lines),
        subtotal=totals.subtotal,
        tax_total=totals.tax_total,
        total=totals.total,
        notes=new.notes,
        payment_terms=new.payment_terms,
        valid_until=new.valid_until,
        project_plan=new.project_plan,
        status="draft",
        workflow_id=estimate_workflow_id(str(estimate_id)),
    )
    session.add(estimate)
    session.flush()
    return estimate


def expires_at(estimate: Estimate) -> datetime:
    """An estimate is valid through its valid-until day, in the client's timezone."""
    local = datetime.combine(
        estimate.valid_until + timedelta(days=1), time(0), ZoneInfo(estimate.customer.timezone)
    )
    return local.astimezone(UTC)


def get(session: Session, estimate_id: uuid.UUID, *, lock: bool = False) -> Estimate:
    stmt = select(Estimate).where(Estimate.id == estimate_id)
    if lock:
        stmt = stmt.with_for_update(of=Estimate)
    estimate = session.scalars(stmt).unique().one_or_none()
    if estimate is None:
        raise EstimateNotFound(f"estimate {estimate_id} does not exist")
    return estimate


def set_status(session: Session, estimate_id: uuid.UUID, status: str, note: str) -> None:
    estimate = get(session, estimate_id, lock=True)
    if estimate.status in ("accepted", "declined", "expired") or estimate.status == status:
        return
    estimate.status = status
    if status != "sent":
        estimate.decision_note = note
        estimate.decided_at = datetime.now(UTC)


def convert(session: Session, estimate_id: uuid.UUID, *, actor: str, note: str) -> ConvertedEstimate:
    """The invoice carries exactly the estimate's lines, discounts and tax. Idempotent: the invoice id
    is derived from the estimate, and an accepted estimate returns its invoice."""
    estimate = get(session, estimate_id, lock=True)
    if estimate.project_plan is not None:
        return _convert_to_project(session, estimate, actor=actor, note=note)
    if estimate.invoice_id is None:
        if estimate.status in ("declined", "expired"):
            raise InvalidEstimateOperation(f"estimate is {estimate.status}")
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=estimate.customer,
                currency=estimate.currency,
                lines=parse_lines(estimate.lines),
                payment_terms=estimate.payment_terms,
                notes=estimate.notes,
                source="estimate",
                invoice_id=uuid.uuid5(ESTIMATE_NAMESPACE, str(estimate.id)),
            ),
        )
        repo.add_event(
            session,
            invoice.id,
            "estimate.converted",
            actor=actor,
            data={"estimate": estimate.number, "note": note},
            dedupe_key=f"estimate:{estimate.id}:converted",
        )
        estimate.invoice_id = invoice.id
        estimate.status = "accepted"
        estimate.decision_note = note
        estimate.decided_at = datetime.now(UTC)
        session.flush()
        total, customer_id = invoice.total, invoice.customer_id
    else:
        invoice_row = repo.get_invoice(session, estimate.invoice_id)
        total, customer_id = invoice_row.total, invoice_row.customer_id
    return ConvertedEstimate(
        invoice_id=str(estimate.invoice_id),
        customer_id=str(customer_id),
        currency=estimate.currency,
        total=str(total),
    )


def _convert_to_project(session: Session, estimate: Estimate, *, actor: str, note: str) -> ConvertedEstimate:
    if estimate.project_id is None:
        if estimate.status in ("declined", "expired"):
            raise InvalidEstimateOperation(f"estimate is {estimate.status}")
        assert estimate.project_plan is not None
        project = projects.create_project(
            session,
            project_from_plan(
                estimate.id,
                estimate.customer,
                estimate.currency,
                parse_lines(estimate.lines),
                estimate.project_plan,
                estimate.payment_terms,
                f"Estimate {estimate.number}",
            ),
        )
        estimate.project_id = project.id
        estimate.status = "accepted"
        estimate.decision_note = note
        estimate.decided_at = datetime.now(UTC)
        session.flush()
    return ConvertedEstimate(
        invoice_id="",
        customer_id=str(estimate.customer_id),
        currency=estimate.currency,
        total=str(estimate.total),
        project_id=str(estimate.project_id),
    )
