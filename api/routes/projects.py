"""Projects (billing plans) and the webhook inbox seen by operators.

`POST /projects` stores the plan and starts its ProjectBillingWorkflow, which then waits for triggers:
webhooks (`api.webhooks.receivers`) or an operator (`/projects/{id}/contract-signed`,
`/projects/{id}/milestones/{key}/complete`). `GET /webhooks/unmatched` lists events no project knew,
and a replay routes them again once the mapping exists.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, EmailStr, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.deps import Db, DbDep, IdempotencyKey, Operator, SettingsDep, TemporalDep
from api.errors import unprocessable
from api.plan_schemas import DepositCreate, MilestoneCreate, RefValue
from api.schemas import Currency, DecimalStr, Strict, Terms
from api.views.projects import ProjectOut, project_out
from api.webhooks.dispatcher import InboxDispatcher, TemporalUnavailable, signal_with_start
from billing.errors import MoneyError
from billing.projects import DepositSpec
from billing.time_materials import parse_rule
from billing.totals import LineInput, compute_totals
from persistence import projects as repo
from persistence import webhook_inbox as inbox
from persistence.books_inbound import BOOKS_EVENT
from persistence.models import Customer, Project, WebhookEvent
from persistence.webhook_inbox import Route
from services import payments as kept_payments
from services.idempotency import create_once, fingerprint
from workflows.payloads import ProjectTrigger, ProjectWorkflowInput, TriggerKind, project_workflow_id
from workflows.project import ProjectBillingWorkflow

log = logging.getLogger("invoiceflow.api.projects")

router = APIRouter(tags=["projects"])


def _invalid(loc: list[str | int], message: str) -> HTTPException:
    return unprocessable(loc, message)


class ProjectCreate(Strict):
    customer_id: uuid.UUID
    name: str = Field(min_length=1, max_length=300)
    currency: Currency | None = None
    category: str | None = Field(default=None, max_length=120, description="Approval rules can match on it.")
    contract_amount: DecimalStr | None = Field(
        default=None, description="Default: the sum of the milestone amounts."
    )
    deposit: DepositCreate | None = None
    milestones: list[MilestoneCreate] = Field(default_factory=list, max_length=100)
    time_and_materials: dict[str, Any] | None = Field(
        default=None,
        description='Bill logged time: {"rate": "150.00", "bill_every": "week"} (or "month"), or '
        '{"rate": "150.00", "threshold_hours": "40"} / "threshold_amount"; optional "cap", "rate_card".',
    )
    tax_rate: DecimalStr = Decimal(0)
    payment_terms: Terms | None = None
    start_on: Literal["signature", "deposit_paid"] = Field(
        default="signature",
        description="deposit_paid: milestones and time bill only once the deposit invoice is paid in full.",
    )
    owner_email: EmailStr | None = Field(
        default=None, description="Told when the deposit is paid; default: the customer's owner_email."
    )
    external_refs: dict[str, RefValue] = Field(
        default_factory=dict,
        description='The deal and envelopes that route to it, e.g. {"hubspot_deal": "1234567890"}.',
    )

    @model_validator(mode="after")
    def _after_refers_to_the_plan(self) -> ProjectCreate:
        if not self.milestones and self.time_and_materials is None:
            raise ValueError("milestones: give at least one, or a time_and_materials rule")
        if self.start_on == "deposit_paid" and self.deposit is None:
            raise ValueError("start_on: deposit_paid needs a deposit")
        keys = {m.key for m in self.milestones}
        for index, m in enumerate(self.milestones):
            if m.after == "deposit" and self.deposit is None:
                raise ValueError(f"milestones[{index}].after: the plan has no deposit to be paid first")
            if m.after is not None and m.after != "deposit" and m.after not in keys:
                raise ValueError(f"milestones[{index}].after: the plan has no milestone {m.after!r}")
        return self

    @field_validator("external_refs")
    @classmethod
    def _systems(cls, refs: dict[str, str]) -> dict[str, str]:
        unknown = set(refs) - repo.PROJECT_REF_SYSTEMS
        if unknown:
            raise ValueError(f"unknown systems {sorted(unknown)}; use {sorted(repo.PROJECT_REF_SYSTEMS)}")
        return refs


async def _load(db: Db, project_id: uuid.UUID) -> ProjectOut:
    def tx(session: Session) -> ProjectOut:
        # One snapshot for the project, its milestones and its invoices: under READ COMMITTED each
        # statement could see a different moment of a concurrent billing transaction.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        try:
            return project_out(session, repo.get_project(session, project_id))
        except repo.ProjectNotFound as exc:
            raise HTTPException(404, detail=str(exc)) from exc

    return await db.run(tx)


@router.post("/projects", status_code=status.HTTP_201_CREATED, response_model=ProjectOut)
async def create_project(
    body: ProjectCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Operator,
    idempotency_key: IdempotencyKey = None,
) -> ProjectOut:
    def tx(session: Session) -> uuid.UUID:
        customer = session.get(Customer, body.customer_id)
        if customer is None:
            raise _invalid(["body", "customer_id"], f"customer {body.customer_id} does not exist")
        deposit = None
        if body.deposit is not None:
            deposit = DepositSpec(percent=body.deposit.percent, amount=body.deposit.amount)
        try:
            project = repo.create_project(
                session,
                repo.NewProject(
                    customer=customer,
                    name=body.name,
                    currency=body.currency or customer.currency,
                    category=body.category,
                    contract_amount=body.contract_amount,
                    deposit=deposit,
                    deposit_on=body.deposit.on if body.deposit else "signature",
                    milestones=[
                        repo.NewMilestone(
                            key=m.key,
                            name=m.name,
                            amount=m.amount,
                            percent=m.percent,
                            refs=m.external_refs,
                            bill_on=m.bill_on,
                            after=m.after,
                        )
                        for m in body.milestones
                    ],
                    tax_rate=body.tax_rate,
                    payment_terms=body.payment_terms or customer.payment_terms,
                    refs=body.external_refs,
                    start_on=body.start_on,
                    owner_email=body.owner_email,
                    tm_rule=parse_rule(body.time_and_materials, body.currency or customer.currency).as_json()
                    if body.time_and_materials is not None
                    else None,
                ),
            )
            # The tax rate is validated the way every invoice validates it.
            compute_totals(
                [LineInput("check", Decimal(1), Decimal(1), tax_rate=body.tax_rate)], project.currency
            )
        except repo.RefConflict as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        return project.id

    try:
        project_id, replayed = await create_once(
            db, "projects.create", idempotency_key, fingerprint(body), tx
        )
    except MoneyError as exc:
        raise _invalid(["body"], str(exc)) from exc
    if idempotency_key is not None:
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    try:
        # Started now so the project shows in the Temporal UI at once; if Temporal is down, the first
        # trigger's signal-with-start starts it instead, so the project is usable either way.
        await temporal.start_workflow(
            ProjectBillingWorkflow.run,
            ProjectWorkflowInput(project_id=str(project_id)),
            id=project_workflow_id(str(project_id)),
            task_queue=settings.task_queue,
        )
    except WorkflowAlreadyStartedError:
        pass  # a repeated create: its workflow runs (or ran) already
    except (RPCError, RuntimeError) as exc:
        log.warning(
            "project %s stored; its workflow starts with its first trigger (Temporal: %s)", project_id, exc
        )
    return await _load(db, project_id)


@router.get("/projects/{project_id}", response_model=ProjectOut)
async def get_project(project_id: uuid.UUID, db: DbDep, _: Operator) -> ProjectOut:
    return await _load(db, project_id)


@router.get("/projects", response_model=list[ProjectOut])
async def list_projects(
    db: DbDep, _: Operator, customer_id: uuid.UUID | None = None, limit: int = 100
) -> list[ProjectOut]:
    def tx(session: Session) -> list[ProjectOut]:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        stmt = select(Project).order_by(Project.created_at.desc()).limit(min(max(limit, 1), 500))
        if customer_id is not None:
            stmt = stmt.where(Project.customer_id == customer_id)
        return [project_out(session, p) for p in session.scalars(stmt).unique()]

    return await db.run(tx)


class ManualTrigger(Strict):
    reference: str = Field(default="", max_length=200, description="Why, e.g. 'signed on paper 2026-11-20'.")


async def _manual(
    db: Db, temporal: TemporalDep, settings: SettingsDep, project_id: uuid.UUID, trigger: ProjectTrigger
) -> ProjectOut:
    await _load(db, project_id)  # 404 for an unknown project
    try:
        await signal_with_start(temporal, settings, Route(project_id, trigger.milestone_key), trigger)
    except TemporalUnavailable as exc:
        raise HTTPException(503, detail=f"Temporal is unavailable: {exc}") from exc
    return await _load(db, project_id)


@router.post("/projects/{project_id}/milestones/{key}/complete", status_code=202, response_model=ProjectOut)
async def complete_milestone(
    project_id: uuid.UUID,
    key: str,
    body: ManualTrigger,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    operator: Operator,
) -> ProjectOut:
    """An operator says a milestone is done: billed once, like a webhook would."""
    current = await _load(db, project_id)
    if key not in {m.key for m in current.milestones}:
        raise HTTPException(404, detail=f"project has no milestone {key!r}")
    trigger = ProjectTrigger(
        event_key=f"api:milestone:{project_id}:{key}",
        kind=TriggerKind.MILESTONE_DONE,
        provider="api",
        ref=body.reference,
        milestone_key=key,
        actor=operator,
    )
    return await _manual(db, temporal, settings, project_id, trigger)


@router.post("/projects/{project_id}/contract-signed", status_code=202, response_model=ProjectOut)
async def contract_signed(
    project_id: uuid.UUID,
    body: ManualTrigger,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    operator: Operator,
) -> ProjectOut:
    trigger = ProjectTrigger(
        event_key=f"api:signed:{project_id}",
        kind=TriggerKind.CONTRACT_SIGNED,
        provider="api",
        ref=body.reference,
        actor=operator,
    )
    return await _manual(db, temporal, settings, project_id, trigger)


# --- the webhook inbox ------------------------------------------------------------------------------


class WebhookEventOut(BaseModel):
    id: uuid.UUID
    provider: str
    kind: str
    system: str
    ref: str
    status: str
    note: str
    deliveries: int
    received_at: str
    project_id: uuid.UUID | None
    summary: dict[str, Any]


def event_out(row: WebhookEvent) -> WebhookEventOut:
    return WebhookEventOut(
        id=row.id,
        provider=row.provider,
        kind=row.kind,
        system=row.system,
        ref=row.ref,
        status=row.status,
        note=row.note,
        deliveries=row.deliveries,
        received_at=row.received_at.isoformat(),
        project_id=row.project_id,
        summary=row.summary,
    )


@router.get("/webhooks/unmatched", response_model=list[WebhookEventOut], tags=["webhooks"])
async def list_unmatched(db: DbDep, _: Operator) -> list[WebhookEventOut]:
    """Events no project knew when they arrived (and accepted ones still waiting for their hand-over to
    Temporal, with the last error in their note)."""
    return await db.run(lambda s: [event_out(r) for r in inbox.pending(s)])


def get_dispatcher(request: Request) -> InboxDispatcher:
    return request.app.state.dispatcher


DispatcherDep = Annotated[InboxDispatcher, Depends(get_dispatcher)]


async def _replay(
    db: Db, dispatcher: InboxDispatcher, event_ids: list[uuid.UUID], temporal: Any = None
) -> list[WebhookEventOut]:
    """Route kept events again (an operator's replay confirms an unconfirmed one) and have the inbox
    dispatcher hand the routed ones over now, so the answer says what became of each. Kept payments
    are applied to their invoice again (``services.payments.replay_kept``)."""
    payments: list[WebhookEvent] = []

    def route(session: Session) -> list[uuid.UUID]:
        routed = []
        for event_id in event_ids:
            row = inbox.get(session, event_id)
            if row is None:
                raise HTTPException(404, detail=f"webhook event {event_id} does not exist")
            if row.status == "dispatched":
                continue
            if row.kind == BOOKS_EVENT:  # an accounting webhook event: the books lane hands it over
                inbox.mark(session, row.id, "received", note=row.note)
                routed.append(row.id)
                continue
            if row.kind == kept_payments.KEPT_KIND:
                payments.append(row)
                continue
            target = inbox.route(session, row, confirmed=True)  # an operator's replay confirms it
            if target is None:
                inbox.mark(session, row.id, "unmatched", note=inbox.not_linked(row.system, row.ref))
                continue
            inbox.routed(session, row, target)
            routed.append(row.id)
        return routed

    routed = await db.run(route)
    for row in payments:
        try:
            await kept_payments.replay_kept(db, temporal, row)
        except kept_payments.TemporalUnavailable as exc:
            raise HTTPException(503, detail=f"Temporal is unavailable: {exc}") from None
    if routed:
        result = await dispatcher.dispatch(routed, note="replayed", ignore_leases=True)
        if result.failed:
            raise HTTPException(
                503,
                detail=f"{next(iter(result.failed.values()))}; the event stays received and "
                "the inbox dispatcher retries it",
            )
    return await db.run(lambda s: [event_out(inbox.get(s, i)) for i in event_ids])  # type: ignore[arg-type]


@router.post("/webhooks/events/{event_id}/replay", response_model=WebhookEventOut, tags=["webhooks"])
async def replay_event(
    event_id: uuid.UUID, db: DbDep, dispatcher: DispatcherDep, temporal: TemporalDep, _: Operator
) -> WebhookEventOut:
    """Route a kept event again (after adding the project or ref it needed) and hand it to its workflow;
    a kept payment is applied to its invoice again."""
    [event] = await _replay(db, dispatcher, [event_id], temporal)
    return event


@router.post("/webhooks/unmatched/replay", response_model=list[WebhookEventOut], tags=["webhooks"])
async def replay_unmatched(
    db: DbDep, dispatcher: DispatcherDep, temporal: TemporalDep, _: Operator
) -> list[WebhookEventOut]:
    ids = await db.run(lambda s: [r.id for r in inbox.pending(s)])
    return await _replay(db, dispatcher, ids, temporal)
