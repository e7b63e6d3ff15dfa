"""What the accounting sync reads and compares: the sync state row of an object, snapshots of our invoice
and payment as last sent, and the fingerprint that says whether an invoice changed since."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.exceptions import ApplicationError

from accounting.base import AccountingInvoice
from workflows.payloads import (
    ACCOUNTING_VALIDATION_ERROR,
)


def fingerprint(invoice: AccountingInvoice) -> str:
    """A digest of exactly what is sent (frozen dataclasses of Decimals and strings repr stably)."""
    return hashlib.sha256(repr(invoice).encode()).hexdigest()


def _refused(message: str) -> ApplicationError:
    """Non-retryable, and always of this one type: the invoice workflow parks its sync on it (until an
    operator's retry) instead of failing, whatever was wrong."""
    return ApplicationError(message, type=ACCOUNTING_VALIDATION_ERROR, non_retryable=True)


@dataclass(frozen=True)
class _SyncRow:
    status: str
    external_id: str | None
    remote_status: str
    revision: int | None
    fingerprint: str


@dataclass(frozen=True)
class _InvoiceSnapshot:
    invoice: AccountingInvoice
    revision: int
    customer_id: str
    row: _SyncRow | None


@dataclass(frozen=True)
class _PaymentSnapshot:
    payment_id: uuid.UUID
    amount: Any
    currency: str
    reference: str
    received_at: datetime
    row: _SyncRow | None
    invoice_row: _SyncRow | None
    books_id: str | None = None  # the provider's id when the payment was found in these books
