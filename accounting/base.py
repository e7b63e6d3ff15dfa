"""The one interface the invoice workflow uses to sync to any accounting provider, and its payloads.

Plain frozen dataclasses at the boundary (like ``workflows.payloads``) so the workflow never sees a
provider's JSON. Money is ``Decimal`` at the invoice currency's minor units. Every write takes an
``idempotency_key`` derived by the caller from stable facts (``f"{invoice_id}:create:r{revision}"``),
so an activity retry after a timeout replays instead of duplicating; each connector passes it the way
its provider wants (Xero ``Idempotency-Key`` header, QBO ``requestid``, FreshBooks: search first).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable

# An access token supplier: token storage and refresh (phase 2) live behind it, so a connector only
# ever asks for "the current token" and raises AuthExpired when the provider says it is not.
TokenProvider = Callable[[], str | Awaitable[str]]


async def current_token(provider: TokenProvider) -> str:
    """The token from a sync or async provider."""
    token = provider()
    if inspect.isawaitable(token):
        token = await token
    if not isinstance(token, str) or not token:
        raise TypeError(f"the token provider returned {type(token).__name__}, not a token string")
    return token


@dataclass(frozen=True)
class AccountingCustomer:
    """Our customer; ``external_id`` is the provider's id once known (skips a lookup)."""

    customer_id: str
    name: str
    email: str
    currency: str
    external_id: str | None = None


@dataclass(frozen=True)
class AccountingLine:
    """One invoice line. ``line_amount`` = quantity × unit_price at minor units, tax excluded.

    ``tax_rate`` is a percent (19 = 19 %). ``tax_amount`` is this line's share of its tax group's tax
    (see ``accounting.mapping.line_tax_shares``): we round tax per rate group, providers such as Xero
    round per line, so sending each line's share keeps their total equal to ours to the cent.
    ``account_code`` is the revenue account (Xero AccountCode; QBO: mapped to an Item; FreshBooks:
    not used) and ``tax_code`` the provider's tax code (Xero TaxType, QBO TaxCode id, FreshBooks tax
    name).
    """

    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal
    account_code: str
    tax_code: str
    line_amount: Decimal
    tax_amount: Decimal = Decimal(0)


@dataclass(frozen=True)
class AccountingTotals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class AccountingInvoice:
    """An issued invoice as the provider should hold it (ours is the source of truth)."""

    invoice_id: str
    number: str
    customer: AccountingCustomer
    issue_date: date
    due_date: date
    currency: str
    lines: tuple[AccountingLine, ...]
    totals: AccountingTotals
    reference: str = ""


@dataclass(frozen=True)
class AccountingPayment:
    """A payment we received, to record against the provider's copy of the invoice."""

    payment_id: str
    invoice_external_id: str
    amount: Decimal
    date: date
    reference: str
    currency: str
    customer_external_id: str | None = None  # QBO needs the CustomerRef; read from the invoice if absent


@dataclass(frozen=True)
class AccountingCreditNote:
    """A credit note against a synced invoice. ``document`` carries its number, customer, date, lines and
    totals in invoice shape (``due_date`` = its date); ``allocate`` is how much of it goes onto the invoice
    at most (the provider's amount due may be lower; what is left stays as the customer's credit)."""

    credit_note_id: str
    invoice_external_id: str
    document: AccountingInvoice
    allocate: Decimal


@dataclass(frozen=True)
class AccountingCreditApplication:
    """Customer credit applied to a later invoice (our payment of method ``customer_credit``): taken at
    the provider from the customer's credit notes, oldest first (``sources``: (external id, number)),
    never more than ``amount``; ``application_id`` (our payment id) makes a retry find what it did."""

    application_id: str
    invoice_external_id: str
    customer_external_id: str
    amount: Decimal
    date: date
    currency: str
    sources: tuple[tuple[str, str], ...]


class SyncStatus:
    CREATED = "created"  # a new object at the provider
    UPDATED = "updated"  # an existing object was changed to match ours
    EXISTING = "existing"  # already there (found by number/email, or replayed); nothing written
    RECORDED = "recorded"  # a payment was recorded
    REMOVED = "removed"  # a payment was deleted (refunded)
    VOIDED = "voided"


@dataclass(frozen=True)
class SyncResult:
    """What a write did; ``external_id`` is what we store to address the object next time."""

    external_id: str
    status: str  # a SyncStatus value
    remote_status: str = ""  # the provider's own status ("AUTHORISED", "PAID", "sent", ...)
    version: str = ""  # QBO SyncToken after the write
    detail: dict[str, str] = field(default_factory=dict)


class RemoteState:
    DRAFT = "draft"
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOIDED = "voided"


@dataclass(frozen=True)
class RemoteLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    line_amount: Decimal
    account_code: str = ""
    tax_code: str = ""
    tax_amount: Decimal | None = None  # only when the provider reports tax per line (Xero)


@dataclass(frozen=True)
class RemoteInvoice:
    """The provider's copy of an invoice, normalized for a drift check against ours."""

    external_id: str
    number: str
    currency: str
    state: str  # a RemoteState value
    remote_status: str
    lines: tuple[RemoteLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    version: str = ""


@runtime_checkable
class AccountingConnector(Protocol):
    """One provider, one organisation (Xero tenant, QBO realm, FreshBooks account)."""

    provider: str

    async def ensure_customer(self, customer: AccountingCustomer, *, idempotency_key: str) -> SyncResult:
        """Find the customer at the provider or create it."""
        ...

    async def upsert_invoice(
        self, invoice: AccountingInvoice, *, idempotency_key: str, external_id: str | None = None
    ) -> SyncResult:
        """Create the invoice, or update it to match ours when it exists (by ``external_id`` or number)."""
        ...

    async def record_payment(self, payment: AccountingPayment, *, idempotency_key: str) -> SyncResult:
        """Record a payment against the invoice; a replay returns the payment already recorded."""
        ...

    async def void_invoice(self, external_id: str, *, idempotency_key: str) -> SyncResult:
        """Void the invoice; voiding a voided invoice is a no-op."""
        ...

    async def record_credit_note(self, note: AccountingCreditNote, *, idempotency_key: str) -> SyncResult:
        """Create the credit note once (found by number on a retry) and apply up to ``note.allocate`` of it
        to its invoice, once; what is not applied stays the customer's credit at the provider."""
        ...

    async def remove_payment(
        self, external_id: str, *, invoice_external_id: str, idempotency_key: str
    ) -> SyncResult:
        """Delete a recorded payment (a refund: the rest is recorded again); deleting twice is a no-op."""
        ...

    async def apply_credit(
        self, application: AccountingCreditApplication, *, idempotency_key: str
    ) -> SyncResult:
        """Apply the customer's credit at the provider to an invoice, once per ``application_id``."""
        ...

    async def fetch_invoice(self, external_id: str) -> RemoteInvoice:
        """Read the provider's copy (lines, totals, paid state) for a drift check."""
        ...

    async def aclose(self) -> None: ...


def drift(ours: AccountingInvoice, theirs: RemoteInvoice) -> list[str]:
    """Human-readable differences between our invoice and the provider's copy; empty when in sync."""
    problems: list[str] = []
    if theirs.number != ours.number:
        problems.append(f"number: ours {ours.number}, theirs {theirs.number}")
    if theirs.currency.upper() != ours.currency.upper():
        problems.append(f"currency: ours {ours.currency}, theirs {theirs.currency}")
    for name in ("subtotal", "tax", "total"):
        mine, other = getattr(ours.totals, name), getattr(theirs, name)
        if mine != other:
            problems.append(f"{name}: ours {mine}, theirs {other}")
    if len(theirs.lines) != len(ours.lines):
        problems.append(f"lines: ours {len(ours.lines)}, theirs {len(theirs.lines)}")
    for index, (line, remote) in enumerate(zip(ours.lines, theirs.lines)):
        for name in ("description", "quantity", "unit_price", "line_amount"):
            mine, other = getattr(line, name), getattr(remote, name)
            if mine != other:
                problems.append(f"lines[{index}].{name}: ours {mine}, theirs {other}")
    return problems
