"""Customers: who is billed, where invoices go, in which currency, timezone and terms."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import DbDep, IdempotencyKey, Operator
from api.einvoice_fields import apply_address, check_customer, postal_address_out
from api.schemas import CustomerCreate, CustomerOut, CustomerUpdate
from api.validation import MAX_PAGE_OFFSET
from persistence import customer_credit
from persistence.dunning import get_policy
from persistence.models import Customer, CustomerExternalId
from services.errors import Invalid
from services.idempotency import create_once, fingerprint

router = APIRouter(prefix="/customers", tags=["customers"])


def customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(
        id=c.id,
        name=c.name,
        emails=list(c.emails),
        currency=c.currency,
        timezone=c.timezone,
        payment_terms=c.payment_terms,
        tags=list(c.tags),
        address=c.address,
        tax_id=c.tax_id,
        owner_email=c.owner_email,
        reminder_offsets=c.reminder_offsets,
        external_ids={x.system: x.external_id for x in c.external_ids},
        created_at=c.created_at,
        dunning_policy=c.dunning_policy,
        postal_address=postal_address_out(c),
        buyer_reference=c.buyer_reference or "",
        endpoint=c.endpoint or "",
        einvoice_format=c.einvoice_format or "none",
    )


def _check_policy(session: Session, name: str | None) -> None:
    if name is not None and get_policy(session, name) is None:
        raise Invalid("dunning_policy", f"dunning policy {name!r} does not exist")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomerOut)
async def create_customer(
    body: CustomerCreate, response: Response, db: DbDep, _: Operator, idempotency_key: IdempotencyKey = None
) -> CustomerOut:
    def tx(session: Session) -> uuid.UUID:
        _check_policy(session, body.dunning_policy)
        customer = Customer(
            name=body.name,
            emails=[str(e) for e in body.emails],
            currency=body.currency,
            timezone=body.timezone,
            payment_terms=body.payment_terms,
            tags=body.tags,
            tax_id=body.tax_id,
            buyer_reference=body.buyer_reference,
            endpoint=body.endpoint,
            einvoice_format=body.einvoice_format,
            owner_email=str(body.owner_email) if body.owner_email else None,
            reminder_offsets=body.reminder_offsets,
            dunning_policy=body.dunning_policy,
            external_ids=[CustomerExternalId(system=k, external_id=v) for k, v in body.external_ids.items()],
        )
        apply_address(customer, body.address)
        check_customer(customer)
        session.add(customer)
        session.flush()
        return customer.id

    try:
        created, replayed = await create_once(db, "customers.create", idempotency_key, fingerprint(body), tx)
    except IntegrityError as exc:
        if "uq_customer_external_ids_system_id" in str(exc.orig):
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail="external_ids: another customer already has one of these ids"
            ) from None
        raise
    if idempotency_key is not None:
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    return await db.run(lambda session: customer_out(session.get(Customer, created)))


@router.get("", response_model=list[CustomerOut])
async def list_customers(
    db: DbDep,
    _: Operator,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
) -> list[CustomerOut]:
    def tx(session: Session) -> list[CustomerOut]:
        rows = session.scalars(
            select(Customer).order_by(Customer.created_at, Customer.id).limit(limit).offset(offset)
        )
        return [customer_out(c) for c in rows]

    return await db.run(tx)


@router.get("/{customer_id}", response_model=CustomerOut)
async def get_customer(customer_id: uuid.UUID, db: DbDep, _: Operator) -> CustomerOut:
    def tx(session: Session) -> CustomerOut | None:
        c = session.get(Customer, customer_id)
        if c is None:
            return None
        out = customer_out(c)
        out.credit = {cur: str(amount) for cur, amount in customer_credit.balances(session, c.id).items()}
        return out

    found = await db.run(tx)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"customer {customer_id} does not exist")
    return found


@router.patch("/{customer_id}", response_model=CustomerOut)
async def update_customer(
    customer_id: uuid.UUID, body: CustomerUpdate, db: DbDep, _: Operator
) -> CustomerOut:
    """Change the fields given. What an issued invoice was issued with (timezone, terms, its frozen
    dunning plan) stays as it was; invoices issued from now on use the new values."""
    changes = body.model_dump(include=body.model_fields_set)

    def tx(session: Session) -> CustomerOut | None:
        customer = session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            return None
        if "dunning_policy" in changes:
            _check_policy(session, changes["dunning_policy"])
        for name, value in changes.items():
            if name == "emails":
                value = [str(e) for e in value]
            elif name == "owner_email" and value is not None:
                value = str(value)
            if name == "address":
                apply_address(customer, value)
                continue
            setattr(customer, name, value)
        check_customer(customer)
        session.flush()
        return customer_out(customer)

    found = await db.run(tx)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"customer {customer_id} does not exist")
    return found
