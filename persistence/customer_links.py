"""Our customers and their ids in one accounting organisation, for linking them to the books' contacts
(``services.books_customers``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from persistence.models import Customer, CustomerExternalId


@dataclass(frozen=True)
class OurCustomer:
    customer_id: uuid.UUID
    name: str
    emails: tuple[str, ...]
    tax_id: str
    linked_to: str | None  # the contact id in this organisation, if linked


def _normal_tax_id(value: str) -> str:
    return "".join(ch for ch in value.upper() if ch.isalnum())


def our_customers(session: Session, system: str) -> list[OurCustomer]:
    links = dict(
        session.execute(
            select(CustomerExternalId.customer_id, CustomerExternalId.external_id).where(
                CustomerExternalId.system == system
            )
        ).all()
    )
    return [
        OurCustomer(
            c.id,
            c.name,
            tuple(e.lower() for e in c.emails or []),
            _normal_tax_id(c.tax_id or ""),
            links.get(c.id),
        )
        for c in session.scalars(select(Customer).order_by(Customer.created_at))
    ]


def linked_customer(session: Session, system: str, external_id: str) -> uuid.UUID | None:
    return session.scalars(
        select(CustomerExternalId.customer_id).where(
            CustomerExternalId.system == system, CustomerExternalId.external_id == external_id
        )
    ).first()


def link(session: Session, customer_id: uuid.UUID, system: str, external_id: str) -> None:
    exists = session.scalars(
        select(func.count()).where(
            CustomerExternalId.system == system, CustomerExternalId.customer_id == customer_id
        )
    ).one()
    if not exists:
        session.add(CustomerExternalId(customer_id=customer_id, system=system, external_id=external_id))


def create_linked(
    session: Session,
    *,
    system: str,
    external_id: str,
    name: str,
    email: str,
    tax_id: str,
    currency: str,
    payment_terms: str,
) -> uuid.UUID:
    """A customer of ours made from a contact, linked to it in the same transaction (so our sync uses
    the contact and never creates it at the provider a second time)."""
    customer = Customer(
        name=name,
        emails=[email] if email else [],
        currency=currency,
        timezone="UTC",
        payment_terms=payment_terms,
        tags=[],
        address="",
        tax_id=tax_id,
        external_ids=[CustomerExternalId(system=system, external_id=external_id)],
    )
    session.add(customer)
    session.flush()
    return customer.id


normal_tax_id = _normal_tax_id
