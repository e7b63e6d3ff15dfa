"""Dunning: named policies, the reminder preview of an invoice, and dispute holds on an
invoice or a whole customer.

Policies are validated by ``billing.dunning.policy_from_dict`` (its message is the 422's) and must name
email templates that exist. Holds go to the invoice workflows as Updates (the workflow records them and
stops its reminders); a customer-wide hold is a row of its own that the issue activity also honours, so
invoices issued while it lasts start held.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.deps import DbDep, Operator, SettingsDep, TemporalDep
from api.errors import unprocessable
from api.schemas import HoldOut, Strict
from api.validation import ApiDate
from billing.dunning import DunningError, DunningPolicy, policy_from_dict, policy_to_dict
from billing.status import InvoiceStatus
from documents.rendering import RenderError, missing_email_templates
from persistence import dunning as repo
from persistence import invoices as invoice_repo
from persistence.models import Customer, DunningHold, DunningPolicyRow, Invoice
from services.workflow_calls import run_update
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import HoldSpec, ReleaseInput

router = APIRouter(tags=["dunning"])

OPEN = (str(InvoiceStatus.OPEN), str(InvoiceStatus.OVERDUE), str(InvoiceStatus.PARTIALLY_PAID))


def _invalid(message: str, *loc: str) -> HTTPException:
    return unprocessable(["body", *loc], message)


# ---------------------------------------------------------------- policies


class PolicyOut(BaseModel):
    name: str
    policy: dict[str, Any]
    created_at: datetime
    updated_at: datetime


EXAMPLE = {
    "name": "Firm 60",
    "steps": [
        {"offset_days": -3, "template": "reminder", "tone": "friendly"},
        {"offset_days": 7, "template": "reminder", "tone": "firm"},
        {
            "offset_days": 30,
            "template": "reminder",
            "tone": "final",
            "recipients": ["client", "account_owner"],
        },
    ],
    "send_window": {"start": "09:00", "end": "17:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
    "escalation": {"after_days": 2, "recipients": ["account_owner", "finance_lead"]},
}


def _parse(body: dict[str, Any], settings: Any) -> DunningPolicy:
    """Validate a policy body: the rules' own validator, then that every template it names exists."""
    try:
        policy = policy_from_dict(body)
    except DunningError as exc:
        raise _invalid(str(exc)) from None
    named = [(f"steps[{i}].template", s.template) for i, s in enumerate(policy.steps)]
    if policy.escalation is not None:
        named.append(("escalation.template", policy.escalation.template))
    for where, template in named:
        try:
            missing = missing_email_templates(template, settings.template_dir)
        except RenderError as exc:
            raise _invalid(str(exc)) from None
        if missing:
            raise _invalid(f"{where}: no email template {template!r} (missing {', '.join(missing)})")
    return policy


def _out(row: DunningPolicyRow) -> PolicyOut:
    return PolicyOut(
        name=row.name, policy=row.definition, created_at=row.created_at, updated_at=row.updated_at
    )


@router.post("/dunning-policies", status_code=status.HTTP_201_CREATED, response_model=PolicyOut)
async def create_policy(
    db: DbDep, settings: SettingsDep, _: Operator, body: dict[str, Any] = Body(..., examples=[EXAMPLE])
) -> PolicyOut:
    """A named policy: steps at offsets from the due date (template, tone, recipients), the send window
    on the client's clock, an optional escalation and late fee. Invoices freeze it when issued."""
    policy = _parse(body, settings)

    def tx(session: Session) -> PolicyOut:
        row = DunningPolicyRow(name=policy.name, definition=policy_to_dict(policy))
        session.add(row)
        session.flush()
        session.refresh(row)
        return _out(row)

    try:
        return await db.run(tx)
    except IntegrityError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"a dunning policy named {policy.name!r} exists already"
        ) from None


@router.get("/dunning-policies", response_model=list[PolicyOut])
async def list_policies(db: DbDep, _: Operator) -> list[PolicyOut]:
    return await db.run(
        lambda s: [_out(r) for r in s.scalars(select(DunningPolicyRow).order_by(DunningPolicyRow.name))]
    )


@router.get("/dunning-policies/{name}", response_model=PolicyOut)
async def get_policy(name: str, db: DbDep, _: Operator) -> PolicyOut:
    row = await db.run(lambda s: (lambda r: _out(r) if r else None)(repo.get_policy(s, name)))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"dunning policy {name!r} does not exist")
    return row


@router.put("/dunning-policies/{name}", response_model=PolicyOut)
async def replace_policy(
    name: str, db: DbDep, settings: SettingsDep, _: Operator, body: dict[str, Any] = Body(...)
) -> PolicyOut:
    """Replace a policy. Invoices issued before keep the copy they froze; drafts and later issues get
    this one. The name cannot change (customers and invoices refer to it)."""
    if isinstance(body, dict) and "name" not in body:
        body = {**body, "name": name}
    policy = _parse(body, settings)
    if policy.name != name:
        raise _invalid(
            f"name: a policy cannot be renamed ({name!r} in the path, {policy.name!r} in the body)", "name"
        )

    def tx(session: Session) -> PolicyOut | None:
        row = session.scalars(
            select(DunningPolicyRow).where(DunningPolicyRow.name == name).with_for_update()
        ).one_or_none()
        if row is None:
            return None
        row.definition = policy_to_dict(policy)
        row.updated_at = datetime.now(UTC)
        session.flush()
        return _out(row)

    found = await db.run(tx)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"dunning policy {name!r} does not exist")
    return found


# ---------------------------------------------------------------- preview


class ReminderOut(BaseModel):
    step_index: int | None  # position in the policy's steps (escalation: len(steps)); None without a policy
    kind: str  # reminder | escalation
    offset_days: int
    send_at: datetime  # UTC
    local_time: datetime  # the same instant on the client's clock (with its offset)
    weekday: str
    template: str
    tone: str
    recipients: list[str]
    merged: list[int]
    status: str  # sent | pending | held | skipped


class LateFeeOut(BaseModel):
    sequence: int
    assess_at: datetime  # start of the assessment day on the client's clock
    status: str  # applied | pending | none (nothing was outstanding, or the invoice closed)
    amount: str | None


class ReminderPreviewOut(BaseModel):
    invoice_id: uuid.UUID
    invoice_status: str
    source: str  # frozen (issued with a policy) | policy (a draft's policy) | default (offsets, no policy)
    policy: str | None
    timezone: str
    due_date: date
    held: bool
    reminders: list[ReminderOut]
    late_fees: list[LateFeeOut] = Field(default_factory=list)


@router.get("/invoices/{invoice_id}/reminders", response_model=ReminderPreviewOut)
async def preview_reminders(
    invoice_id: uuid.UUID, db: DbDep, settings: SettingsDep, _: Operator
) -> ReminderPreviewOut:
    """The exact reminders of an issued invoice (UTC and client time, template, tone, recipients, and
    whether each was sent, is pending, held or skipped); for a draft, what it would get if issued now."""

    def tx(session: Session) -> ReminderPreviewOut:
        try:
            invoice = invoice_repo.get_invoice(session, invoice_id)
        except invoice_repo.InvoiceNotFound:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"invoice {invoice_id} does not exist"
            ) from None
        view = repo.preview(
            session,
            invoice,
            now=datetime.now(UTC),
            fallback_offsets=settings.reminder_offsets(),
            send_hour=settings.reminder_send_hour,
        )
        return ReminderPreviewOut(
            invoice_id=invoice.id,
            invoice_status=invoice.status,
            source=view.source,
            policy=view.policy,
            timezone=view.timezone,
            due_date=view.due_date,
            held=view.held,
            reminders=[
                ReminderOut(
                    step_index=e.step.step_index if e.step.template else None,
                    kind=e.step.kind,
                    offset_days=e.step.offset_days,
                    send_at=e.step.send_at,
                    local_time=e.local_time,
                    weekday=e.local_time.strftime("%A"),
                    template=e.step.template or e.step.kind,
                    tone=e.step.tone,
                    recipients=e.step.recipients
                    or (["client"] if e.step.kind == "reminder" else ["account_owner"]),
                    merged=e.step.merged,
                    status=e.status,
                )
                for e in view.entries
            ],
            late_fees=[LateFeeOut(**fee) for fee in view.late_fees],
        )

    return await db.run(tx)


# ---------------------------------------------------------------- holds


class HoldCreate(Strict):
    reason: str = Field(min_length=1, max_length=2000, description="Why dunning pauses (the dispute).")
    resume_on: ApiDate | None = Field(
        default=None, description="Resume by itself on this day (client's calendar)."
    )


class ReleaseCreate(Strict):
    reason: str = Field(default="", max_length=2000)


class CustomerHoldOut(BaseModel):
    hold: HoldOut
    invoices: list[uuid.UUID]  # open invoices the hold was (or is no longer) applied to


def _resume_at(body: HoldCreate, timezone: str) -> datetime | None:
    if body.resume_on is None:
        return None
    resume_at = repo.resume_instant(body.resume_on, timezone)
    if resume_at <= datetime.now(UTC):
        raise _invalid(
            f"resume_on: {body.resume_on.isoformat()} has begun already for the client; give a later day",
            "resume_on",
        )
    return resume_at


@router.post("/invoices/{invoice_id}/hold", response_model=HoldOut, status_code=status.HTTP_201_CREATED)
async def hold_invoice(
    invoice_id: uuid.UUID, body: HoldCreate, db: DbDep, temporal: TemporalDep, operator: Operator
) -> HoldOut:
    """Pause dunning of one invoice (a dispute) until released or until ``resume_on``. Its money is
    unchanged and payments still work."""

    def tx(session: Session) -> tuple[str, str]:
        try:
            invoice = invoice_repo.get_invoice(session, invoice_id)
        except invoice_repo.InvoiceNotFound:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"invoice {invoice_id} does not exist"
            ) from None
        if invoice.status not in OPEN:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"invoice is {invoice.status}; only an open invoice's dunning can be held",
            )
        active = [
            h
            for h in repo.active_invoice_holds(session, invoice, datetime.now(UTC))
            if h.invoice_id == invoice.id and h.kind == "dispute"
        ]
        if active:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"invoice is on hold already since {active[0].started_at.isoformat()}",
            )
        return invoice.workflow_id, invoice.customer.timezone

    workflow_id, timezone = await db.run(tx)
    hold = HoldSpec(
        hold_id=str(uuid.uuid4()),
        kind="dispute",
        reason=body.reason,
        resume_at=_resume_at(body, timezone),
        actor=operator,
    )
    await run_update(temporal, workflow_id, InvoiceWorkflow.hold, hold)
    return await db.run(
        lambda s: HoldOut(**repo.hold_out(s.get(DunningHold, uuid.UUID(hold.hold_id)), datetime.now(UTC)))
    )


@router.post("/invoices/{invoice_id}/release", response_model=list[HoldOut])
async def release_invoice(
    invoice_id: uuid.UUID,
    db: DbDep,
    temporal: TemporalDep,
    operator: Operator,
    body: ReleaseCreate | None = None,
) -> list[HoldOut]:
    """End the invoice's dispute hold: only the latest reminder it held back is sent (at the next window
    slot), the others are skipped; the schedule carries on from there."""

    def load(session: Session) -> Invoice:
        try:
            return invoice_repo.get_invoice(session, invoice_id)
        except invoice_repo.InvoiceNotFound:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"invoice {invoice_id} does not exist"
            ) from None

    invoice = await db.run(load)
    reason = body.reason if body else ""
    await run_update(
        temporal,
        invoice.workflow_id,
        InvoiceWorkflow.release,
        ReleaseInput(actor=operator, reason=reason or "released"),
    )
    return await db.run(lambda s: [HoldOut(**h) for h in repo.holds_out(s, load(s))])


async def _each_invoice(
    temporal: TemporalDep, workflow_ids: list[tuple[uuid.UUID, str]], update: Any, arg: Any
) -> list[uuid.UUID]:
    """Send one Update to several invoices; an invoice that closed meanwhile (or never had the hold)
    is left out, not an error of the whole request."""
    done: list[uuid.UUID] = []
    for invoice_id, workflow_id in workflow_ids:
        try:
            await temporal.get_workflow_handle(workflow_id).execute_update(update, arg)
        except (WorkflowUpdateFailedError, RPCError):
            continue
        done.append(invoice_id)
    return done


def _open_invoices(session: Session, customer_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    rows = session.execute(
        select(Invoice.id, Invoice.workflow_id)
        .where(Invoice.customer_id == customer_id, Invoice.number.is_not(None), Invoice.status.in_(OPEN))
        .order_by(Invoice.created_at)
    )
    return [(r.id, r.workflow_id) for r in rows]


@router.post(
    "/customers/{customer_id}/hold", response_model=CustomerHoldOut, status_code=status.HTTP_201_CREATED
)
async def hold_customer(
    customer_id: uuid.UUID, body: HoldCreate, db: DbDep, temporal: TemporalDep, operator: Operator
) -> CustomerHoldOut:
    """Pause dunning for every open invoice of a customer, and for invoices issued while the hold lasts."""

    def tx(session: Session) -> tuple[DunningHold, list[tuple[uuid.UUID, str]]]:
        # FOR UPDATE: an invoice being issued right now (FOR SHARE on the customer) is either issued
        # before this hold (and listed below) or sees the hold when it is issued.
        customer = session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"customer {customer_id} does not exist")
        now = datetime.now(UTC)
        if repo.active_customer_holds(session, customer.id, now):
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail="the customer is on hold already; release it first"
            )
        row = DunningHold(
            customer_id=customer.id,
            kind="dispute",
            reason=body.reason,
            actor=operator,
            started_at=now,
            resume_at=_resume_at(body, customer.timezone),
        )
        session.add(row)
        session.flush()
        return row, _open_invoices(session, customer.id)

    row, invoices = await db.run(tx)
    spec = repo.hold_spec(row)
    applied = await _each_invoice(temporal, invoices, InvoiceWorkflow.hold, spec)
    return CustomerHoldOut(hold=HoldOut(**repo.hold_out(row, datetime.now(UTC))), invoices=applied)


@router.post("/customers/{customer_id}/release", response_model=CustomerHoldOut)
async def release_customer(
    customer_id: uuid.UUID,
    db: DbDep,
    temporal: TemporalDep,
    operator: Operator,
    body: ReleaseCreate | None = None,
) -> CustomerHoldOut:
    """End the customer's hold on all its invoices (each resumes as after an invoice's own release)."""

    def tx(session: Session) -> tuple[DunningHold, list[tuple[uuid.UUID, str]]]:
        customer = session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"customer {customer_id} does not exist")
        now = datetime.now(UTC)
        active = repo.active_customer_holds(session, customer.id, now)
        if not active:
            raise HTTPException(status.HTTP_409_CONFLICT, detail="the customer is not on hold")
        for hold in active:
            hold.released_at, hold.released_by = now, operator
        session.flush()
        return active[0], _open_invoices(session, customer.id)

    row, invoices = await db.run(tx)
    release = ReleaseInput(
        hold_ids=[str(row.id)], actor=operator, reason=(body.reason if body else "") or "released"
    )
    applied = await _each_invoice(temporal, invoices, InvoiceWorkflow.release, release)
    return CustomerHoldOut(hold=HoldOut(**repo.hold_out(row, datetime.now(UTC))), invoices=applied)
