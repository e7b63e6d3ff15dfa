"""Subscriptions: recurring invoices for retainers and managed services.

Creation stores the subscription and its first terms, then starts its SubscriptionWorkflow before
answering. Changes (pause, resume, new terms, cancel) are workflow Updates, validated by the workflow
against its own state. ``next_invoice_dates`` comes from the same pure function the workflow uses.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import DbDep, IdempotencyKey, Operator, SettingsDep, TemporalDep
from api.errors import unprocessable
from api.schemas import (
    CancelCreate,
    CycleInvoiceOut,
    CycleOut,
    PauseCreate,
    SubscriptionCreate,
    SubscriptionEventOut,
    SubscriptionOut,
    TermsCreate,
    TermsOut,
)
from api.validation import MAX_PAGE_OFFSET
from billing.errors import MoneyError
from billing.recurrence import Recurrence, RecurrenceError, next_cycles
from billing.totals import compute_totals, parse_lines
from persistence import subscriptions as repo
from persistence.models import Customer, Subscription
from services.idempotency import create_once, fingerprint
from services.workflow_calls import run_update
from workflows import search_attributes as sa
from workflows.payloads import (
    CancelInput,
    PauseInput,
    SubscriptionWorkflowInput,
    TermsLine,
    TermsUpdateInput,
    recurrence_spec,
)
from workflows.subscription import SubscriptionWorkflow

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])

FINISHED = ("canceled", "ended", "canceling")


def _invalid(loc: list[str | int], message: str) -> HTTPException:
    return unprocessable(loc, message)


def subscription_out(
    session: Session, sub: Subscription, *, preview: int = 5, detail: bool = True
) -> SubscriptionOut:
    upcoming = []
    if sub.status not in FINISHED:
        rec = repo.recurrence_of(sub)
        upcoming = [
            CycleOut(cycle=c.index, date=c.date, send_at=c.send_at)
            for c in next_cycles(rec, datetime.now(UTC), from_index=sub.next_cycle, count=preview)
        ]
    out = SubscriptionOut(
        id=sub.id,
        workflow_id=sub.workflow_id,
        customer_id=sub.customer_id,
        status=sub.status,
        currency=sub.currency,
        interval=sub.interval,
        interval_count=sub.interval_count,
        anchor_day=sub.anchor_day,
        start_date=sub.start_date,
        end_date=sub.end_date,
        max_cycles=sub.max_cycles,
        timezone=sub.timezone,
        send_time=sub.send_time.isoformat(timespec="seconds"),
        auto_send=sub.auto_send,
        payment_terms=sub.payment_terms,
        catch_up=sub.catch_up,
        next_cycle=sub.next_cycle,
        paused_until=sub.paused_until,
        next_invoice_dates=upcoming,
        terms=[
            TermsOut(version=t.version, effective_from_cycle=t.effective_from_cycle, lines=t.lines)
            for t in sub.terms
        ],
    )
    if detail:
        out.invoices = [
            CycleInvoiceOut(
                cycle=i.subscription_cycle or 0,
                period_date=i.period_date,
                invoice_id=i.id,
                number=i.number,
                status=i.status,
                total=str(i.total),
            )
            for i in repo.invoices_of(session, sub.id)
            if i.period_date is not None
        ]
        out.history = [
            SubscriptionEventOut(at=e.at, kind=e.kind, cycle=e.cycle, data=e.data)
            for e in repo.history(session, sub.id)
        ]
    return out


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SubscriptionOut)
async def create_subscription(
    body: SubscriptionCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Operator,
    idempotency_key: IdempotencyKey = None,
) -> SubscriptionOut:
    def tx(session: Session) -> uuid.UUID:
        customer = session.get(Customer, body.customer_id)
        if customer is None:
            raise _invalid(["body", "customer_id"], f"customer {body.customer_id} does not exist")
        currency = body.currency or customer.currency
        lines = parse_lines([line.model_dump(mode="json") for line in body.lines])
        compute_totals(lines, currency, max_amount=settings.max_amount)  # refuses bad lines by field path
        try:
            rec = Recurrence(
                interval=body.interval,
                interval_count=body.interval_count,
                start_date=body.start_date,
                timezone=body.timezone or customer.timezone,
                send_time=body.send_time,
                anchor_day=body.anchor_day,
                end_date=body.end_date,
                max_cycles=body.max_cycles,
            )
        except RecurrenceError as exc:
            raise _invalid(["body"], str(exc)) from None
        sub = repo.create(
            session,
            repo.NewSubscription(
                customer=customer,
                currency=currency,
                lines=lines,
                recurrence=rec,
                payment_terms=body.payment_terms or customer.payment_terms,
                auto_send=body.auto_send,
                catch_up=body.catch_up,
            ),
        )
        return sub.id

    def started(session: Session) -> tuple[SubscriptionOut, SubscriptionWorkflowInput]:
        sub = repo.get(session, created)
        start = SubscriptionWorkflowInput(
            subscription_id=str(sub.id),
            customer_id=str(sub.customer_id),
            currency=sub.currency,
            recurrence=recurrence_spec(repo.recurrence_of(sub)),
            catch_up=sub.catch_up,
        )
        return subscription_out(session, sub, detail=False), start

    try:
        created, replayed = await create_once(
            db, "subscriptions.create", idempotency_key, fingerprint(body), tx
        )
    except MoneyError as exc:
        raise _invalid(["body"], str(exc)) from None
    if idempotency_key is not None:
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    out, start = await db.run(started)
    with contextlib.suppress(WorkflowAlreadyStartedError):  # a repeated create: it runs (or ran) already
        await temporal.start_workflow(
            SubscriptionWorkflow.run,
            start,
            id=out.workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.CUSTOMER_ID, str(out.customer_id)),
                    SearchAttributePair(sa.CURRENCY, out.currency),
                ]
            ),
            static_summary=f"{out.interval_count} × {out.interval} subscription from {out.start_date}",
        )
    return out


@router.get("", response_model=list[SubscriptionOut])
async def list_subscriptions(
    db: DbDep,
    _: Operator,
    customer_id: uuid.UUID | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
) -> list[SubscriptionOut]:
    def tx(session: Session) -> list[SubscriptionOut]:
        stmt = select(Subscription).order_by(Subscription.created_at, Subscription.id)
        if customer_id is not None:
            stmt = stmt.where(Subscription.customer_id == customer_id)
        return [
            subscription_out(session, s, detail=False)
            for s in session.scalars(stmt.limit(limit).offset(offset))
        ]

    return await db.run(tx)


async def _load(db: DbDep, subscription_id: uuid.UUID, preview: int = 5) -> SubscriptionOut:
    def tx(session: Session) -> SubscriptionOut:
        return subscription_out(session, repo.get(session, subscription_id), preview=preview)

    try:
        return await db.run(tx)
    except repo.SubscriptionNotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"subscription {subscription_id} does not exist"
        ) from None


@router.get("/{subscription_id}", response_model=SubscriptionOut)
async def get_subscription(
    subscription_id: uuid.UUID,
    db: DbDep,
    _: Operator,
    preview: int = Query(5, ge=0, le=120, description="Next N invoice dates."),
) -> SubscriptionOut:
    return await _load(db, subscription_id, preview)


async def _update(
    db: DbDep, temporal: TemporalDep, subscription_id: uuid.UUID, update: object, arg: object | None
) -> SubscriptionOut:
    current = await _load(db, subscription_id)
    await run_update(temporal, current.workflow_id, update, arg)
    return await _load(db, subscription_id)


@router.post("/{subscription_id}/pause", response_model=SubscriptionOut)
async def pause(
    subscription_id: uuid.UUID, body: PauseCreate, db: DbDep, temporal: TemporalDep, _: Operator
) -> SubscriptionOut:
    resume_on = body.resume_on.isoformat() if body.resume_on else None
    return await _update(
        db, temporal, subscription_id, SubscriptionWorkflow.pause, PauseInput(resume_on=resume_on)
    )


@router.post("/{subscription_id}/resume", response_model=SubscriptionOut)
async def resume(
    subscription_id: uuid.UUID, db: DbDep, temporal: TemporalDep, _: Operator
) -> SubscriptionOut:
    return await _update(db, temporal, subscription_id, SubscriptionWorkflow.resume, None)


@router.post("/{subscription_id}/cancel", response_model=SubscriptionOut)
async def cancel(
    subscription_id: uuid.UUID, body: CancelCreate, db: DbDep, temporal: TemporalDep, _: Operator
) -> SubscriptionOut:
    return await _update(
        db,
        temporal,
        subscription_id,
        SubscriptionWorkflow.cancel,
        CancelInput(at_period_end=body.at_period_end),
    )


@router.post("/{subscription_id}/terms", response_model=SubscriptionOut)
async def update_terms(
    subscription_id: uuid.UUID, body: TermsCreate, db: DbDep, temporal: TemporalDep, _: Operator
) -> SubscriptionOut:
    """New lines or prices from the next cycle on; earlier cycles keep the terms they were billed on."""
    lines = [TermsLine(**{k: str(v) for k, v in line.model_dump(mode="json").items()}) for line in body.lines]
    return await _update(
        db, temporal, subscription_id, SubscriptionWorkflow.update_terms, TermsUpdateInput(lines=lines)
    )
