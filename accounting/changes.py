"""What the books tell us: the inbound half of a connector, shared by webhooks and the poller.

Most B2B invoices are paid by bank transfer and reconciled in the accounting system, so the books must
be able to report back. A connector reads the provider's changes since a cursor (Xero
``If-Modified-Since``, QBO ``ChangeDataCapture``, FreshBooks ``updated_min``, NetSuite SuiteQL) and
normalises them into these frozen dataclasses; the poller and the webhook handlers turn them into
workflow Updates. Payments carry the provider's own id, which is the idempotency key on our side: a
poll and a webhook reporting the same payment record it once. Money is ``Decimal`` at the invoice
currency's minor units, as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class RemotePayment:
    """A payment as the books hold it, applied to one of our synced invoices.

    ``external_id`` is the provider's payment id (with the invoice's id where one provider payment
    settles several invoices, so each application is its own key). ``deleted`` is a payment the
    accountant voided or deleted in the books: never applied silently, it becomes a difference.
    """

    external_id: str
    invoice_external_id: str
    amount: Decimal
    date: date
    currency: str
    reference: str = ""
    deleted: bool = False
    # Optional, added for recognising our own pushes: the provider's payment object id (QBO's external_id
    # also names the invoice) and its free text, where our sync leaves its marker (QBO PrivateNote,
    # FreshBooks note, Xero Reference).
    payment_id: str = ""
    memo: str = ""


@dataclass(frozen=True)
class ChangeSet:
    """Everything that changed at the provider since ``cursor`` was handed out.

    ``invoice_external_ids`` and ``credit_note_external_ids`` name objects to read again and compare
    with ours (voids, amount changes, credit notes made in the books); ``next_cursor`` is opaque to the
    caller and stored durably only after the changes were recorded.
    """

    payments: tuple[RemotePayment, ...] = ()
    invoice_external_ids: tuple[str, ...] = ()
    credit_note_external_ids: tuple[str, ...] = ()
    next_cursor: str = ""
    detail: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class ChangeFeed(Protocol):
    """The inbound side every connector implements next to ``accounting.base.AccountingConnector``."""

    async def changes_since(self, cursor: str | None) -> ChangeSet:
        """Changes after ``cursor`` (``None``: a first poll, which starts from now minus a lookback)."""
        ...

    async def fetch_payment(self, external_id: str) -> tuple[RemotePayment, ...]:
        """One provider payment, by id, as its applications to invoices (a webhook names only the id)."""
        ...


@dataclass(frozen=True)
class RemoteContact:
    """A customer as the books hold it, for linking ours to theirs (``invoiceflow accounting
    import-customers``): matched by external id, then tax id, then email."""

    external_id: str
    name: str
    email: str = ""
    tax_id: str = ""
    currency: str = ""
