"""Invoice statuses and the rule that derives an issued invoice's status from money and time.

Draft and approval states are set by the workflow; once an invoice is issued, ``settle_status`` is the
only place that decides between open, overdue, partially paid and paid, so the API, the documents and
the workflow can never disagree.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum


class InvoiceStatus(StrEnum):
    """Stored and serialised by value ("partially_paid"), so the names are part of the API."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    OPEN = "open"
    OVERDUE = "overdue"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"
    CREDITED = "credited"  # cancelled in full by credit notes: closed, neither void nor written off
    # Issued, but its e-invoice failed the official rules: nothing was sent; it goes out once fixed.
    EINVOICE_INVALID = "einvoice_invalid"


FINAL_STATUSES: frozenset[InvoiceStatus] = frozenset(
    {InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.CREDITED}
)


def settle_status(
    *, total: Decimal, amount_paid: Decimal, past_due: bool, amount_credited: Decimal = Decimal(0)
) -> InvoiceStatus:
    """The status of an issued invoice. Precedence: credited > paid > overdue > partially paid > open.

    - CREDITED when credit notes cover the whole total (``amount_credited >= total``): the sale is
      undone, so whatever was paid becomes customer credit; distinct from VOID (never owed) and
      UNCOLLECTIBLE (owed, written off);
    - PAID when ``amount_paid + amount_credited >= total`` (what was still owed after credit notes is paid);
      an overpayment is still paid; the excess becomes a credit;
    - else OVERDUE when ``past_due``: a partly paid invoice past its due date is overdue, because that is
      the state someone has to act on (the amount due still shows the partial payment);
    - else PARTIALLY_PAID when something was paid;
    - else OPEN.
    """
    if amount_credited and amount_credited >= total:
        return InvoiceStatus.CREDITED
    if amount_paid + amount_credited >= total:
        return InvoiceStatus.PAID
    if past_due:
        return InvoiceStatus.OVERDUE
    if amount_paid > 0:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.OPEN
