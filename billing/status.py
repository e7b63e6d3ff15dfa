"""Invoice statuses and the rule that derives an issued invoice's status from money and time."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    OPEN = "open"
    OVERDUE = "overdue"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


FINAL_STATUSES: frozenset[InvoiceStatus] = frozenset(
    {InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE}
)


def settle_status(*, total: Decimal, amount_paid: Decimal, past_due: bool) -> InvoiceStatus:
    """Precedence: paid > overdue > partially paid > open. A partly paid invoice past its due date is
    ``overdue``: that is the state someone has to act on (the amount due shows the partial payment)."""
    if amount_paid >= total:
        return InvoiceStatus.PAID
    if past_due:
        return InvoiceStatus.OVERDUE
    if amount_paid > 0:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.OPEN
