"""Receiving a payment: an operator's (``record_payment``, the API route) and any source's
(``receive_payment``, webhooks): money that arrives is recorded, never dropped.

A payment reaches an invoice through its workflow (Update ``record_payment``) while the invoice is open.
When the workflow refuses it, what happens depends on who sent it:

- an **operator call** (``keep=None``) gets ``PaymentRefused``, which the API answers 409: the operator
  sees the reason at once and decides;
- a **provider webhook** (``keep`` names its inbox entry) must not get a 4xx: the provider would retry
  for a while and then give up, and the money would exist only at the provider. So:

  - a payment for an invoice already **paid or credited** becomes the client's **credit**
    (``persistence.closed_payments``), applied to their next invoice in that currency;
  - anything else (a void or written-off invoice, a draft not issued yet, another currency, an
    invoice we do not know) is **kept in the webhook inbox** as ``unmatched`` with the reason and the
    normalised payment, visible in ``GET /webhooks/unmatched``; ``replay_kept`` applies it once an
    operator has fixed what stood in the way.

Every path is once per payment key: the same money reported by several events, or delivered again,
is one payment, one credit entry or one inbox entry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from billing.errors import MoneyError
from billing.limits import amount_limit, check_amount
from billing.payments import payment_amount, payment_currency
from billing.status import FINAL_STATUSES
from persistence import invoices as repo
from persistence import webhook_inbox as inbox
from persistence.closed_payments import CREDITABLE_STATUSES, credit_closed_payment
from persistence.invoices import InvalidInvoiceOperation
from persistence.models import Invoice, Payment, WebhookEvent
from persistence.webhook_inbox import InboundEvent
from services.db import Db
from services.errors import Conflict, Invalid, NotFound
from services.workflow_calls import run_update
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import PaymentInput, PaymentOutcome

KEPT_KIND = "payment"


class PaymentRefused(Exception):
    """The invoice takes no payment now (operator calls only; webhooks keep the money instead)."""


class TemporalUnavailable(Exception):
    """The invoice's workflow could not be reached; nothing was recorded, the sender should retry."""


@dataclass(frozen=True)
class ReceivedPayment:
    """Money a source reports for one of our invoices, normalised (Decimal at the currency's units)."""

    invoice_id: uuid.UUID | None
    amount: Decimal
    currency: str
    key: str  # the payment's idempotency key, e.g. ``stripe:pi_...``
    method: str
    reference: str
    actor: str
    received_at: datetime | None = None
    invoice_ref: str = ""  # what the source named as our invoice (metadata), even when it is no id of ours

    def as_input(self) -> PaymentInput:
        return PaymentInput(
            amount=str(self.amount),
            idempotency_key=self.key,
            method=self.method,
            reference=self.reference,
            currency=self.currency,
            received_at=self.received_at,
            actor=self.actor,
        )

    def summary(self) -> dict[str, str]:
        """What the inbox keeps, enough to apply the payment later without the provider's payload."""
        return {
            "amount": str(self.amount),
            "currency": self.currency,
            "key": self.key,
            "method": self.method,
            "reference": self.reference,
            "actor": self.actor,
            "invoice_id": str(self.invoice_id) if self.invoice_id else "",
            "invoice_ref": self.invoice_ref,
            "received_at": self.received_at.isoformat() if self.received_at else "",
        }

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> ReceivedPayment:
        return cls(
            invoice_id=uuid.UUID(summary["invoice_id"]) if summary.get("invoice_id") else None,
            amount=Decimal(summary["amount"]),
            currency=summary["currency"],
            key=summary["key"],
            method=summary["method"],
            reference=summary["reference"],
            actor=summary["actor"],
            invoice_ref=summary.get("invoice_ref", ""),
            received_at=datetime.fromisoformat(summary["received_at"])
            if summary.get("received_at")
            else None,
        )


@dataclass(frozen=True)
class Keep:
    """Where a webhook's payment is kept when it cannot be applied: the provider and its delivery."""

    provider: str
    event_type: str
    payload: Any
    system: str = ""


@dataclass
class Receipt:
    """What became of a payment: ``recorded`` | ``duplicate`` | ``credited`` | ``kept``."""

    status: str
    invoice_id: uuid.UUID | None = None
    invoice_status: str = ""
    outcome: PaymentOutcome | None = None
    note: str = ""
    inbox_id: uuid.UUID | None = None
    extra: dict[str, str] = field(default_factory=dict)


async def receive_payment(
    db: Any,
    temporal: Client,
    payment: ReceivedPayment,
    *,
    keep: Keep | None,
    max_amount: Decimal | None = None,
) -> Receipt:
    """Record ``payment`` (see the module docstring). Raises ``PaymentRefused`` (operator calls only)
    and ``TemporalUnavailable`` (nothing recorded; retry). An amount above the maximum is not recorded
    on an invoice (it would be a 10^18 USD payment) but kept for an operator like any other refusal."""
    found = await db.run(lambda s: _already(s, payment))
    if found is not None:
        return found
    limit = amount_limit(max_amount)
    if payment.amount > limit:
        why = (
            f"amount {payment.amount} {payment.currency} is above the maximum {limit}: check it at the source"
        )
        return await _refuse_or_keep(db, payment, keep, why)
    invoice = await db.run(lambda s: s.get(Invoice, payment.invoice_id) if payment.invoice_id else None)
    if invoice is None:
        named = payment.invoice_ref or (str(payment.invoice_id) if payment.invoice_id else "")
        why = f"no invoice {named!r} of ours" if named else "the payment names no invoice of ours"
        return await _refuse_or_keep(db, payment, keep, why)
    if payment.currency != invoice.currency:
        return await _refuse_or_keep(
            db,
            payment,
            keep,
            f"the payment is in {payment.currency}, "
            f"invoice {invoice.number or invoice.id} in {invoice.currency}",
        )
    status = invoice.status
    if status not in FINAL_STATUSES and invoice.number is not None:
        try:
            outcome = await temporal.get_workflow_handle(invoice.workflow_id).execute_update(
                InvoiceWorkflow.record_payment, payment.as_input()
            )
        except WorkflowUpdateFailedError as exc:
            refusal = getattr(exc.cause, "message", None) or str(exc.cause)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise TemporalUnavailable(str(exc)) from None
            refusal = "the invoice's workflow has finished; it takes no more payments"
        except RuntimeError as exc:
            raise TemporalUnavailable(str(exc)) from None
        else:
            return Receipt(
                "duplicate" if outcome.duplicate else "recorded",
                invoice.id,
                outcome.status,
                outcome,
            )
        # Refused: most often closed meanwhile (paid by a concurrent payment). Read where it stands now.
        invoice = await db.run(lambda s: s.get(Invoice, invoice.id))
        status = invoice.status
    else:
        refusal = (
            f"invoice is {status}; it takes no more payments"
            if status in FINAL_STATUSES
            else f"invoice is {status}, not issued yet; it takes no payments"
        )
    if keep is None:
        raise PaymentRefused(refusal)
    if status in CREDITABLE_STATUSES:
        received_at = payment.received_at or datetime.now(UTC)
        try:
            outcome = await db.run(
                lambda s: credit_closed_payment(s, invoice.id, payment.as_input(), received_at=received_at)
            )
        except InvalidInvoiceOperation as exc:
            return await _keep(db, payment, keep, str(exc))
        return Receipt(
            "duplicate" if outcome.duplicate else "credited",
            invoice.id,
            outcome.status,
            outcome,
            note=f"invoice {invoice.number} was already {status}: kept as the client's credit",
        )
    return await _keep(db, payment, keep, f"invoice {invoice.number or invoice.id}: {refusal}")


async def replay_kept(db: Any, temporal: Client, row: WebhookEvent) -> Receipt:
    """Apply a payment the inbox kept (an operator fixed what stood in the way); still refused, it stays
    kept with the new reason."""
    payment = ReceivedPayment.from_summary(row.summary)
    receipt = await receive_payment(
        db, temporal, payment, keep=Keep(row.provider, str(row.summary.get("type", "")), row.payload)
    )
    if receipt.status in ("recorded", "credited", "duplicate"):
        note = f"applied by an operator's replay: {receipt.status} on invoice {receipt.invoice_id}"
        await db.run(lambda s: inbox.mark(s, row.id, "dispatched", note=note))
    return receipt


def _already(session: Session, payment: ReceivedPayment) -> Receipt | None:
    row = session.scalars(select(Payment).where(Payment.idempotency_key == payment.key)).first()
    if row is not None:
        invoice = session.get(Invoice, row.invoice_id)
        return Receipt("duplicate", row.invoice_id, invoice.status if invoice else "")
    return None


async def _refuse_or_keep(db: Any, payment: ReceivedPayment, keep: Keep | None, why: str) -> Receipt:
    if keep is None:
        raise PaymentRefused(why)
    return await _keep(db, payment, keep, why)


async def _keep(db: Any, payment: ReceivedPayment, keep: Keep, why: str) -> Receipt:
    """The money waits for an operator in the inbox, once per payment key (not per delivery or event)."""
    note = f"payment of {payment.amount} {payment.currency} kept for an operator: {why}"[:2000]

    def record(session: Session) -> uuid.UUID:
        row = inbox.record(
            session,
            InboundEvent(
                keep.provider,
                payment.key,
                KEPT_KIND,
                keep.system or keep.provider,
                payment.reference,
                summary=payment.summary() | {"type": keep.event_type},
            ),
            keep.payload,
        )
        if row.status != "dispatched":
            inbox.mark(session, row.id, "unmatched", note=note)
        return row.id

    inbox_id = await db.run(record)
    return Receipt("kept", payment.invoice_id, note=note, inbox_id=inbox_id)


# --- an operator's payment (the API route) --------------------------------------------------------


@dataclass(frozen=True)
class PaymentRecorded:
    payment_id: uuid.UUID
    duplicate: bool
    status: str
    amount_paid: str
    amount_due: str
    credit: str


@dataclass(frozen=True)
class PaymentRequest:
    """An operator's payment for one invoice (the API route); ``idempotency_key`` namespaced by the caller."""

    amount: Decimal
    idempotency_key: str
    method: str = "bank_transfer"
    reference: str = ""
    currency: str | None = None
    received_at: datetime | None = None
    actor: str = "api"


async def record_payment(
    db: Db,
    temporal: Client,
    invoice_id: uuid.UUID,
    payment: PaymentRequest,
    *,
    max_amount: Decimal | None = None,
) -> PaymentRecorded:
    def check(session: Session) -> tuple[str, PaymentRecorded | None]:
        try:
            invoice = repo.get_invoice(session, invoice_id)
        except repo.InvoiceNotFound:
            raise NotFound(f"invoice {invoice_id} does not exist") from None
        for name, rule in (
            ("amount", lambda: payment_amount(payment.amount, invoice.currency)),
            ("currency", lambda: payment_currency(payment.currency, invoice.currency)),
            ("amount", lambda: check_amount(payment.amount, "amount", max_amount, invoice.currency)),
        ):
            try:
                rule()
            except MoneyError as exc:
                raise Invalid(name, str(exc)) from None
        if payment.received_at is not None and payment.received_at.tzinfo is None:
            raise Invalid("received_at", "received_at needs a timezone, e.g. 2026-11-25T10:00:00Z")
        prior = session.scalars(
            select(Payment).where(Payment.idempotency_key == payment.idempotency_key)
        ).one_or_none()
        if prior is None:
            return invoice.workflow_id, None
        if prior.invoice_id != invoice_id:
            raise Conflict("this Idempotency-Key recorded a payment on another invoice")
        return invoice.workflow_id, PaymentRecorded(
            payment_id=prior.id,
            duplicate=True,
            status=invoice.status,
            amount_paid=str(invoice.amount_paid),
            amount_due=str(invoice.amount_due),
            credit=str(invoice.credit_amount),
        )

    workflow_id, prior = await db.run(check)
    if prior is not None:
        return prior
    outcome = await run_update(
        temporal,
        workflow_id,
        InvoiceWorkflow.record_payment,
        PaymentInput(
            amount=str(payment.amount),
            idempotency_key=payment.idempotency_key,
            method=payment.method,
            reference=payment.reference,
            currency=payment.currency,
            received_at=payment.received_at,
            actor=payment.actor,
        ),
    )
    return PaymentRecorded(
        payment_id=uuid.UUID(outcome.payment_id),
        duplicate=outcome.duplicate,
        status=outcome.status,
        amount_paid=outcome.amount_paid,
        amount_due=outcome.amount_due,
        credit=outcome.credit,
    )
