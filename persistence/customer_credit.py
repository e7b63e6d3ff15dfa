"""The customer credit ledger (``customer_credit_entries``): what a client is owed back, per currency.

Credit comes from overpayments and from credit notes beyond what was still due; it goes out when it is
applied to the client's next invoice (at issue, in the numbering transaction) or refunded. Every entry
has a dedupe key, so a retried activity never books it twice; applications lock the customer row
first, so two invoices issued at once cannot both spend the same credit and the balance never goes
below zero.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from persistence.models import Customer, CustomerCreditEntry


def balance(session: Session, customer_id: uuid.UUID, currency: str) -> Decimal:
    """The customer's unapplied credit in ``currency`` (credit in another currency never counts)."""
    total = session.scalar(
        select(func.coalesce(func.sum(CustomerCreditEntry.amount), 0)).where(
            CustomerCreditEntry.customer_id == customer_id, CustomerCreditEntry.currency == currency
        )
    )
    return Decimal(total or 0)


def balances(session: Session, customer_id: uuid.UUID) -> dict[str, Decimal]:
    """Unapplied credit per currency (only currencies with a non-zero balance)."""
    rows = session.execute(
        select(CustomerCreditEntry.currency, func.sum(CustomerCreditEntry.amount))
        .where(CustomerCreditEntry.customer_id == customer_id)
        .group_by(CustomerCreditEntry.currency)
    ).all()
    return {currency: Decimal(amount) for currency, amount in rows if amount}


def lock_customer(session: Session, customer_id: uuid.UUID) -> None:
    """Serialise credit applications of one customer (held until the caller's transaction ends)."""
    session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())


def record(
    session: Session,
    *,
    customer_id: uuid.UUID,
    currency: str,
    amount: Decimal,
    kind: str,
    dedupe_key: str,
    invoice_id: uuid.UUID | None = None,
    credit_note_id: uuid.UUID | None = None,
) -> bool:
    """Book one signed entry once per ``dedupe_key``; False when it was already booked."""
    inserted = session.execute(
        insert(CustomerCreditEntry)
        .values(
            customer_id=customer_id,
            currency=currency,
            amount=amount,
            kind=kind,
            dedupe_key=dedupe_key,
            invoice_id=invoice_id,
            credit_note_id=credit_note_id,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(CustomerCreditEntry.id)
    ).scalar_one_or_none()
    return inserted is not None
