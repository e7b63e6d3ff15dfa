"""Billable expenses and time entries, per customer. Approved, unbilled items roll into the customer's
next subscription invoice, as their own lines, when that invoice is issued; an item whose ``project_ref``
is one of the customer's projects rolls into that project's next invoice instead (milestone or T&M).

Expenses above ``INVOICEFLOW_EXPENSE_APPROVAL_THRESHOLD`` wait for an operator's approval (the
signed-link approval mechanism will take this over)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import DbDep, IdempotencyKey, Operator, SettingsDep
from api.errors import unprocessable
from api.schemas import BillableItemOut, DecisionCreate, ExpenseCreate, TimeEntryCreate
from billing.errors import MoneyError
from billing.limits import check_amount
from billing.money import quantize, require_minor_units
from persistence.models import BillableItem, Customer, Project
from services.idempotency import create_once, fingerprint

router = APIRouter(tags=["billable items"])


def item_out(item: BillableItem) -> BillableItemOut:
    return BillableItemOut(
        id=item.id,
        customer_id=item.customer_id,
        kind=item.kind,
        description=item.description,
        quantity=str(item.quantity),
        unit_price=str(item.unit_price),
        amount=str(item.amount),
        currency=item.currency,
        tax_rate=str(item.tax_rate),
        incurred_on=item.incurred_on,
        receipt_ref=item.receipt_ref,
        billable=item.billable,
        status=item.status,
        decided_by=item.decided_by,
        invoice_id=item.invoice_id,
        project_ref=item.project_ref,
    )


def _project_of(session: Session, customer_id: uuid.UUID, project_ref: str | None) -> uuid.UUID | None:
    """A ``project_ref`` naming one of the customer's projects puts the item on that project's invoices."""
    try:
        project_id = uuid.UUID(project_ref) if project_ref else None
    except ValueError:
        return None
    project = session.get(Project, project_id) if project_id else None
    return project.id if project is not None and project.customer_id == customer_id else None


def _invalid(field: str, message: str) -> HTTPException:
    return unprocessable(["body", field], message)


async def _add(
    db: DbDep,
    customer_id: uuid.UUID,
    *,
    kind: str,
    description: str,
    quantity: Decimal,
    unit_price: Decimal,
    currency: str | None,
    incurred_on,
    tax_rate: Decimal,
    billable: bool,
    receipt_ref: str,
    project_ref: str | None,  # type: ignore[no-untyped-def]
    threshold: Decimal,
    idempotency: tuple[str | None, str] = (None, ""),
    response: Response | None = None,
) -> BillableItemOut:
    def tx(session: Session) -> uuid.UUID:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"customer {customer_id} does not exist")
        cur = currency or customer.currency
        if quantity <= 0:
            raise _invalid("hours" if kind == "time" else "amount", "must be greater than 0")
        if unit_price < 0:
            raise _invalid("rate", "must not be negative")
        if not Decimal(0) <= tax_rate <= Decimal(100):
            raise _invalid("tax_rate", "must be between 0 and 100 (a percent)")
        try:
            if kind == "expense":
                require_minor_units(unit_price, cur, field="amount")
            amount = check_amount(quantize(quantity * unit_price, cur), "amount", currency=cur)
        except MoneyError as exc:
            raise _invalid("amount", str(exc)) from None
        needs_approval = kind == "expense" and amount > threshold
        item = BillableItem(
            customer_id=customer.id,
            kind=kind,
            description=description.strip(),
            quantity=quantity,
            unit_price=unit_price,
            amount=amount,
            currency=cur,
            tax_rate=tax_rate,
            incurred_on=incurred_on,
            receipt_ref=receipt_ref,
            billable=billable,
            status="pending_approval" if needs_approval else "approved",
            project_ref=project_ref,
            project_id=_project_of(session, customer.id, project_ref),
            decided_by=None if needs_approval else "auto (under threshold)" if kind == "expense" else "auto",
        )
        session.add(item)
        session.flush()
        return item.id

    key, digest = idempotency
    item_id, replayed = await create_once(db, f"billable_items.{kind}", key, digest, tx)
    if key is not None and response is not None:
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    return await db.run(lambda session: item_out(session.get(BillableItem, item_id)))


@router.post(
    "/customers/{customer_id}/expenses", status_code=status.HTTP_201_CREATED, response_model=BillableItemOut
)
async def add_expense(
    customer_id: uuid.UUID,
    body: ExpenseCreate,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    _: Operator,
    idempotency_key: IdempotencyKey = None,
) -> BillableItemOut:
    return await _add(
        db,
        customer_id,
        kind="expense",
        description=body.description,
        quantity=Decimal(1),
        unit_price=body.amount,
        currency=body.currency,
        incurred_on=body.incurred_on,
        tax_rate=body.tax_rate,
        billable=body.billable,
        receipt_ref=body.receipt_ref,
        project_ref=body.project_ref,
        threshold=settings.expense_approval_threshold,
        idempotency=(idempotency_key, fingerprint(body)),
        response=response,
    )


@router.post(
    "/customers/{customer_id}/time-entries",
    status_code=status.HTTP_201_CREATED,
    response_model=BillableItemOut,
)
async def add_time_entry(
    customer_id: uuid.UUID,
    body: TimeEntryCreate,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    _: Operator,
    idempotency_key: IdempotencyKey = None,
) -> BillableItemOut:
    return await _add(
        db,
        customer_id,
        kind="time",
        description=body.description,
        quantity=body.hours,
        unit_price=body.rate,
        currency=body.currency,
        incurred_on=body.incurred_on,
        tax_rate=body.tax_rate,
        billable=body.billable,
        receipt_ref="",
        project_ref=body.project_ref,
        threshold=settings.expense_approval_threshold,
        idempotency=(idempotency_key, fingerprint(body)),
        response=response,
    )


@router.get("/customers/{customer_id}/billable-items", response_model=list[BillableItemOut])
async def list_items(
    customer_id: uuid.UUID,
    db: DbDep,
    _: Operator,
    state: Literal["pending_approval", "approved", "rejected", "unbilled", "billed"] | None = Query(
        default=None
    ),
) -> list[BillableItemOut]:
    def tx(session: Session) -> list[BillableItemOut]:
        stmt = (
            select(BillableItem)
            .where(BillableItem.customer_id == customer_id)
            .order_by(BillableItem.incurred_on, BillableItem.created_at)
        )
        if state == "unbilled":
            stmt = stmt.where(
                BillableItem.status == "approved",
                BillableItem.billable.is_(True),
                BillableItem.invoice_id.is_(None),
            )
        elif state == "billed":
            stmt = stmt.where(BillableItem.invoice_id.is_not(None))
        elif state is not None:
            stmt = stmt.where(BillableItem.status == state)
        return [item_out(i) for i in session.scalars(stmt)]

    return await db.run(tx)


async def _decide(db: DbDep, item_id: uuid.UUID, decision: str, actor: str) -> BillableItemOut:
    def tx(session: Session) -> BillableItemOut:
        item = session.get(BillableItem, item_id, with_for_update=True)
        if item is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"billable item {item_id} does not exist")
        if item.status != "pending_approval":
            raise HTTPException(status.HTTP_409_CONFLICT, detail=f"item is already {item.status}")
        item.status, item.decided_by, item.decided_at = decision, actor, datetime.now(UTC)
        return item_out(item)

    return await db.run(tx)


@router.post("/billable-items/{item_id}/approve", response_model=BillableItemOut)
async def approve_item(
    item_id: uuid.UUID, body: DecisionCreate, db: DbDep, operator: Operator
) -> BillableItemOut:
    return await _decide(db, item_id, "approved", operator)


@router.post("/billable-items/{item_id}/reject", response_model=BillableItemOut)
async def reject_item(
    item_id: uuid.UUID, body: DecisionCreate, db: DbDep, operator: Operator
) -> BillableItemOut:
    return await _decide(db, item_id, "rejected", operator)
