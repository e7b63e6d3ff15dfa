"""Payloads of credit notes and refunds.

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workflows.payloads.subscription import TermsLine


@dataclass
class CreditNoteInput:
    """``POST /invoices/{id}/credit-notes``: the whole invoice (``full``) or ``lines``, with a reason."""

    reason: str
    idempotency_key: str
    full: bool = False
    lines: list[TermsLine] = field(default_factory=list)
    actor: str = "api"
    request_hash: str = ""  # digest of the API body: the same key with another body is refused


@dataclass
class CreditNoteRequest:
    invoice_id: str
    credit_note: CreditNoteInput
    past_due: bool
    as_of: datetime  # workflow time: the credit note's date is this instant in the client's timezone
    closed: bool = False  # from ClosedInvoiceCreditNoteWorkflow: a paid invoice takes it too


@dataclass
class ClosedCreditNoteInput:
    """A credit note on an invoice whose own workflow has ended (paid): its short-lived workflow's input."""

    invoice_id: str
    credit_note: CreditNoteInput


@dataclass
class CreditNoteOutcome:
    credit_note_id: str
    number: str
    duplicate: bool
    total: str
    to_customer_credit: str
    status: str
    amount_paid: str
    amount_credited: str
    amount_due: str
    credit: str


@dataclass
class CreditNoteRenderRequest:
    credit_note_id: str


@dataclass
class RefundInput:
    """Money returned against one recorded payment (``POST /invoices/{id}/refunds``, Stripe refunds)."""

    payment_id: str
    amount: str
    idempotency_key: str
    reason: str = ""
    reference: str = ""
    actor: str = "api"


@dataclass
class RefundRequest:
    invoice_id: str
    refund: RefundInput
    past_due: bool


@dataclass
class RefundOutcome:
    refund_id: str
    duplicate: bool
    kind: str  # reopened (the amount is due again) | credit (the invoice's customer credit paid out)
    status: str
    amount_paid: str
    amount_due: str
    credit: str
