"""Estimates (quotes): created by operators, answered by clients on a hosted page (GET shows, only POST
acts), converted into invoices with exactly their lines, discounts and tax."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.deps import DbDep, IdempotencyKey, Operator, SettingsDep, TemporalDep
from api.errors import unprocessable
from api.pages import page, result
from api.plan_schemas import DepositCreate, MilestoneCreate
from api.schemas import Currency, LineCreate, Strict, Terms
from api.validation import ApiDate, StorableText
from billing.errors import MoneyError
from billing.money import format_money
from billing.totals import parse_lines
from core.links import LinkError, verify_estimate
from persistence import estimates as repo
from persistence.models import Customer, Estimate
from services.idempotency import create_once, fingerprint
from services.workflow_calls import run_update
from workflows.estimate import EstimateWorkflow
from workflows.payloads import EstimateDecisionInput, EstimateWorkflowInput

router = APIRouter(tags=["estimates"])
# Estimate links outlive the estimate's validity by design (the page then says it expired).
LINK_MAX_AGE_S = 400 * 86400


class EstimateProject(Strict):
    """Accepting the estimate creates this project (contract = the estimate's net total) and bills its
    deposit at once; milestones default to one "completion" milestone for the rest."""

    name: str | None = Field(default=None, max_length=300)
    category: str | None = Field(default=None, max_length=120)
    deposit: DepositCreate | None = None
    milestones: list[MilestoneCreate] = Field(default_factory=list, max_length=100)


class EstimateCreate(Strict):
    customer_id: uuid.UUID
    currency: Currency | None = None
    lines: list[LineCreate] = Field(min_length=1, max_length=500)
    valid_until: ApiDate
    payment_terms: Terms | None = None
    notes: str = Field(default="", max_length=5000)
    project: EstimateProject | None = Field(
        default=None, description="Accepting creates a project and bills its deposit."
    )


class EstimateOut(BaseModel):
    id: uuid.UUID
    number: str
    workflow_id: str
    customer_id: uuid.UUID
    status: str
    currency: str
    subtotal: str
    tax_total: str
    total: str
    valid_until: date
    lines: list[dict[str, str]]
    invoice_id: uuid.UUID | None
    project_id: uuid.UUID | None = None
    decision_note: str


class ConvertCreate(Strict):
    note: str = Field(default="", max_length=2000)


def estimate_out(e: Estimate) -> EstimateOut:
    return EstimateOut(
        id=e.id,
        number=e.number,
        workflow_id=e.workflow_id,
        customer_id=e.customer_id,
        status=e.status,
        currency=e.currency,
        subtotal=str(e.subtotal),
        tax_total=str(e.tax_total),
        total=str(e.total),
        valid_until=e.valid_until,
        lines=e.lines,
        invoice_id=e.invoice_id,
        project_id=e.project_id,
        decision_note=e.decision_note,
    )


def _invalid(field: str, message: str) -> HTTPException:
    return unprocessable(["body", field], message)


@router.post("/estimates", status_code=status.HTTP_201_CREATED, response_model=EstimateOut)
async def create_estimate(
    body: EstimateCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Operator,
    idempotency_key: IdempotencyKey = None,
) -> EstimateOut:
    def tx(session: Session) -> uuid.UUID:
        customer = session.get(Customer, body.customer_id)
        if customer is None:
            raise _invalid("customer_id", f"customer {body.customer_id} does not exist")
        today = datetime.now(UTC).astimezone(ZoneInfo(customer.timezone)).date()
        if body.valid_until < today:
            raise _invalid("valid_until", f"must not be in the past (today is {today} for this client)")
        try:
            lines = parse_lines([line.model_dump(mode="json") for line in body.lines])
            currency = body.currency or customer.currency
            plan = None
            if body.project is not None:
                plan = body.project.model_dump(mode="json", exclude_none=True)
                # Validate the plan now, against the estimate's own total, not at acceptance.
                repo.projects.check_plan(
                    repo.project_from_plan(uuid.uuid4(), customer, currency, lines, plan, "net_30", "-")
                )
            estimate = repo.create(
                session,
                repo.NewEstimate(
                    customer=customer,
                    currency=currency,
                    lines=lines,
                    valid_until=body.valid_until,
                    payment_terms=body.payment_terms or customer.payment_terms,
                    notes=body.notes,
                    project_plan=plan,
                ),
                today,
            )
        except MoneyError as exc:
            raise _invalid(
                "project" if body.project is not None and "project" in str(exc) else "lines", str(exc)
            ) from None
        return estimate.id

    def started(session: Session) -> tuple[EstimateOut, EstimateWorkflowInput]:
        estimate = repo.get(session, created)
        start = EstimateWorkflowInput(
            estimate_id=str(estimate.id),
            customer_id=str(estimate.customer_id),
            currency=estimate.currency,
            expires_at=repo.expires_at(estimate),
        )
        return estimate_out(estimate), start

    created, replayed = await create_once(db, "estimates.create", idempotency_key, fingerprint(body), tx)
    if idempotency_key is not None:
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    out, start = await db.run(started)
    with contextlib.suppress(WorkflowAlreadyStartedError):  # a repeated create: it runs (or ran) already
        await temporal.start_workflow(
            EstimateWorkflow.run,
            start,
            id=out.workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Estimate {out.number}: {out.total} {out.currency}",
        )
    return out


async def _load(db: DbDep, estimate_id: uuid.UUID) -> EstimateOut:
    try:
        return await db.run(lambda s: estimate_out(repo.get(s, estimate_id)))
    except repo.EstimateNotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"estimate {estimate_id} does not exist"
        ) from None


@router.get("/estimates/{estimate_id}", response_model=EstimateOut)
async def get_estimate(estimate_id: uuid.UUID, db: DbDep, _: Operator) -> EstimateOut:
    return await _load(db, estimate_id)


@router.post("/estimates/{estimate_id}/convert", response_model=EstimateOut)
async def convert_estimate(
    estimate_id: uuid.UUID, body: ConvertCreate, db: DbDep, temporal: TemporalDep, operator: Operator
) -> EstimateOut:
    """Convert on the client's behalf (e.g. they accepted by phone)."""
    estimate = await _load(db, estimate_id)
    await run_update(
        temporal,
        estimate.workflow_id,
        EstimateWorkflow.decide,
        EstimateDecisionInput(decision="accept", note=body.note, actor=operator, via="api"),
    )
    return await _load(db, estimate_id)


# ---------------------------------------------------------------- the client's hosted page


def _page_context(e: Estimate, settings: SettingsDep) -> dict[str, object]:
    cur = e.currency
    return {
        "number": e.number,
        "customer": e.customer.name,
        "seller": settings.seller_name,
        "total": format_money(e.total, cur),
        "tax": format_money(e.tax_total, cur),
        "valid_until": e.valid_until.isoformat(),
        "notes": e.notes,
        "lines": [
            {
                "description": line["description"],
                "quantity": line["quantity"],
                "unit_price": format_money(parse_lines([line])[0].unit_price, cur),
            }
            for line in e.lines
        ],
        "status": e.status,
        "workflow_id": e.workflow_id,
    }


CLOSED = {
    "accepted": "This estimate has been accepted; the invoice is on its way.",
    "declined": "This estimate has been declined.",
    "expired": "This estimate has expired. Ask us for a new one.",
}


async def _view(value: str, db: DbDep, settings: SettingsDep) -> dict[str, object] | HTMLResponse:
    try:
        estimate_id = verify_estimate(settings.secret_key, value, max_age_s=LINK_MAX_AGE_S)
    except LinkError as exc:
        return result(400 if exc.reason == "tampered" else 410, "This link is not valid", str(exc), "bad")
    try:
        return await db.run(lambda s: _page_context(repo.get(s, uuid.UUID(estimate_id)), settings))
    except (repo.EstimateNotFound, ValueError):
        return result(404, "Estimate not found", "The estimate behind this link does not exist.", "bad")


@router.get("/estimates/view/{value}", response_class=HTMLResponse, include_in_schema=False)
async def show_estimate(value: str, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    context = await _view(value, db, settings)
    if isinstance(context, HTMLResponse):
        return context
    if context["status"] in CLOSED:
        return result(
            409,
            f"Estimate {context['number']}",
            CLOSED[str(context["status"])],
            "",
            customer=context["customer"],
            total=context["total"],
        )
    return page("estimate.html", action_url=f"/estimates/view/{value}", **context)


@router.post("/estimates/view/{value}", response_class=HTMLResponse, include_in_schema=False)
async def answer_estimate(
    value: str,
    request: Request,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    decision: str = Form(...),
    note: Annotated[StorableText, Form(max_length=2000)] = "",
) -> HTMLResponse:
    context = await _view(value, db, settings)
    if isinstance(context, HTMLResponse):
        return context
    if decision not in ("accept", "decline"):
        return result(422, "Unknown answer", "Choose Accept or Decline on the page.", "bad")
    if context["status"] in CLOSED:
        return result(
            409,
            f"Estimate {context['number']}",
            CLOSED[str(context["status"])],
            "",
            customer=context["customer"],
            total=context["total"],
        )
    try:
        await temporal.get_workflow_handle(str(context["workflow_id"])).execute_update(
            EstimateWorkflow.decide,
            EstimateDecisionInput(
                decision=decision,
                note=note.strip(),
                actor="client",
                via="link",
                ip=request.client.host if request.client else "",
                user_agent=request.headers.get("user-agent", "")[:300],
            ),
        )
    except (WorkflowUpdateFailedError, RPCError):
        return result(
            409,
            f"Estimate {context['number']}",
            "This estimate no longer takes an answer.",
            "",
            customer=context["customer"],
        )
    if decision == "accept":
        return result(
            200,
            "Thank you",
            "The estimate is accepted; your invoice follows by email.",
            "good",
            customer=context["customer"],
            total=context["total"],
        )
    return result(
        200,
        "Declined",
        "Thank you for letting us know.",
        "",
        customer=context["customer"],
        total=context["total"],
    )
