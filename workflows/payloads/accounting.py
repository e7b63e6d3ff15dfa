"""Payloads of the books sync (QuickBooks Online, Xero, FreshBooks).

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

from dataclasses import dataclass


class AccountingAction:
    INVOICE = "invoice"  # the issued invoice with every line (create, or update to this revision)
    PAYMENT = "payment"  # one payment, linked to the synced invoice
    VOID = "void"
    CREDIT_NOTE = "credit_note"  # one credit note (credit_note_id) against the synced invoice
    REFUND = "refund"  # one refund (refund_id) of a synced payment
    WRITE_OFF = "write_off"  # the invoice was marked uncollectible: a bad-debt credit for what was due


@dataclass
class AccountingSyncRequest:
    invoice_id: str
    action: str  # AccountingAction
    payment_id: str | None = None
    credit_note_id: str | None = None
    refund_id: str | None = None


@dataclass
class AccountingSyncResult:
    status: str  # synced | skipped (no accounting provider configured)
    provider: str = ""
    external_id: str = ""
    detail: str = ""


ACCOUNTING_VALIDATION_ERROR = (
    "AccountingValidation"  # non-retryable: an operator fixes the mapping, then retries
)
