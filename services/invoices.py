"""Invoice use cases: create one (idempotently) and start its workflow; change it through its workflow.

Creation commits the draft first, then starts its workflow. The workflow id is derived from the invoice
id and started with ``REJECT_DUPLICATE``/``USE_EXISTING``, so repeating a request (same idempotency key)
after any crash converges on one invoice and one workflow. Every later change is a workflow Update, so
the workflow validates it against its own state; a refusal is a ``Conflict`` with the workflow's reason.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from billing.status import InvoiceStatus
from billing.totals import LineInput, compute_totals
from core.settings import Settings
from persistence import approval_rules as rules_repo
from persistence import dunning
from persistence import invoices as repo
from persistence.models import Customer
from services.db import Db
from services.errors import Conflict, Invalid, NotFound, Unavailable
from services.idempotency import create_once
from services.workflow_calls import FINISHED, run_update, send_signal
from workflows import search_attributes as sa
from workflows.invoice import InvoiceWorkflow
from workflows.invoice.resend import RESEND_ONLY
from workflows.payloads import (
    ApproveInput,
    DecisionInput,
    DraftChanges,
    InvoiceState,
    InvoiceWorkflowInput,
    ResendInput,
    SubmitInput,
    UncollectibleInput,
    VoidInput,
)

IDEMPOTENCY_SCOPE = "invoices.create"


@dataclass(frozen=True)
class InvoiceDraft:
    """What a caller asks for; unset terms and currency come from the customer."""

    customer_id: uuid.UUID
    lines: list[LineInput]
    currency: str | None = None
    payment_terms: str | None = None
    due_date: date | None = None
    notes: str = ""
    reminder_offsets: list[int] | None = None
    dunning_policy: str | None = None
    source: str = "api"
    actor: str | None = None  # the user who asked ("email (role)"); unset: the source
    line_extras: list[dict[str, Any]] | None = None  # e-invoice data per line (unit, VAT category, ...)
    references: dict[str, Any] | None = None  # purchase order, contract, project, invoicing period


@dataclass(frozen=True)
class CreatedInvoice:
    """The draft as committed, and whether an earlier request with the same key made it."""

    invoice_id: uuid.UUID
    workflow_id: str
    customer_id: uuid.UUID
    customer_name: str
    currency: str
    total: Decimal
    amount_due: Decimal
    replayed: bool = False
    approval_rules: int | None = None  # rules in force as the workflow starts (0: nothing to route)


def _created(invoice: Any, *, replayed: bool) -> CreatedInvoice:
    return CreatedInvoice(
        invoice_id=invoice.id,
        workflow_id=invoice.workflow_id,
        customer_id=invoice.customer_id,
        customer_name=invoice.customer.name,
        currency=invoice.currency,
        total=invoice.total,
        amount_due=invoice.amount_due,
        replayed=replayed,
    )


async def create_invoice(
    db: Db,
    temporal: Client,
    settings: Settings,
    draft: InvoiceDraft,
    *,
    idempotency_key: str | None,
    fingerprint: str,
) -> CreatedInvoice:
    """Commit the draft (once per idempotency key; the same key with another body is refused), then
    start its workflow. A workflow that cannot start leaves a saved draft and an ``Unavailable``."""

    def create(session: Session) -> uuid.UUID:
        customer = session.get(Customer, draft.customer_id)
        if customer is None:
            raise Invalid("customer_id", f"customer {draft.customer_id} does not exist")
        if draft.dunning_policy is not None and dunning.get_policy(session, draft.dunning_policy) is None:
            raise Invalid("dunning_policy", f"dunning policy {draft.dunning_policy!r} does not exist")
        # The configured maximum (INVOICEFLOW_MAX_AMOUNT), beside the hard ceiling compute_totals keeps.
        compute_totals(draft.lines, draft.currency or customer.currency, max_amount=settings.max_amount)
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer,
                currency=draft.currency or customer.currency,
                lines=draft.lines,
                payment_terms=draft.payment_terms or customer.payment_terms,
                due_date=draft.due_date,
                notes=draft.notes,
                source=draft.source,
                reminder_offsets=draft.reminder_offsets,
                dunning_policy=draft.dunning_policy,
                actor=draft.actor,
                line_extras=draft.line_extras,
                references=draft.references,
            ),
        )
        return invoice.id

    invoice_id, replayed = await create_once(db, IDEMPOTENCY_SCOPE, idempotency_key, fingerprint, create)
    found = await db.run(
        lambda s: replace(
            _created(repo.get_invoice(s, invoice_id), replayed=replayed),
            approval_rules=rules_repo.count(s),
        )
    )
    await start_invoice_workflow(temporal, settings, found)
    return found


async def start_invoice_workflow(temporal: Client, settings: Settings, invoice: CreatedInvoice) -> None:
    """Start the invoice's workflow (a no-op when it runs or ran already)."""
    try:
        await temporal.start_workflow(
            InvoiceWorkflow.run,
            InvoiceWorkflowInput(
                invoice_id=str(invoice.invoice_id),
                customer_id=str(invoice.customer_id),
                currency=invoice.currency,
                approval_rules=invoice.approval_rules,
            ),
            id=invoice.workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.INVOICE_STATUS, str(InvoiceStatus.DRAFT)),
                    SearchAttributePair(sa.CUSTOMER_ID, str(invoice.customer_id)),
                    SearchAttributePair(sa.CURRENCY, invoice.currency),
                    SearchAttributePair(sa.AMOUNT_DUE, float(invoice.amount_due)),
                ]
            ),
            memo={"customer_name": invoice.customer_name, "total": f"{invoice.total} {invoice.currency}"},
            static_summary=f"Invoice for {invoice.customer_name}: {invoice.total} {invoice.currency}",
        )
    except WorkflowAlreadyStartedError:
        pass  # a repeat of a request whose workflow already ran to completion: nothing to start
    except RPCError as exc:
        raise Unavailable(
            f"invoice {invoice.invoice_id} is saved as a draft but its workflow could not start "
            f"({exc.message}); repeat the request with the same Idempotency-Key to retry"
        ) from exc


async def workflow_id_of(db: Db, invoice_id: uuid.UUID) -> str:
    """The invoice's workflow id, or ``NotFound``."""

    def tx(session: Session) -> str:
        try:
            return repo.get_invoice(session, invoice_id).workflow_id
        except repo.InvoiceNotFound:
            raise NotFound(f"invoice {invoice_id} does not exist") from None

    return await db.run(tx)


async def _update(db: Db, temporal: Client, invoice_id: uuid.UUID, update: Any, arg: Any) -> InvoiceState:
    return await run_update(temporal, await workflow_id_of(db, invoice_id), update, arg)


async def void(db: Db, temporal: Client, invoice_id: uuid.UUID, *, reason: str, actor: str) -> InvoiceState:
    return await _update(
        db, temporal, invoice_id, InvoiceWorkflow.void, VoidInput(reason=reason, actor=actor)
    )


async def write_off(
    db: Db, temporal: Client, invoice_id: uuid.UUID, *, reason: str, actor: str
) -> InvoiceState:
    request = UncollectibleInput(reason=reason, actor=actor)
    return await _update(db, temporal, invoice_id, InvoiceWorkflow.mark_uncollectible, request)


async def approve(
    db: Db, temporal: Client, invoice_id: uuid.UUID, *, actor: str, comment: str = ""
) -> InvoiceState:
    """Operator approval of an invoice waiting in ``pending_approval``: it is issued and sent at once."""
    request = ApproveInput(actor=actor, comment=comment)
    return await _update(db, temporal, invoice_id, InvoiceWorkflow.approve, request)


async def decide(db: Db, temporal: Client, invoice_id: uuid.UUID, decision: DecisionInput) -> InvoiceState:
    """An approver's decision; the workflow refuses a wrong approver, a settled step, a bare rejection."""
    return await _update(db, temporal, invoice_id, InvoiceWorkflow.decide, decision)


async def edit_draft(db: Db, temporal: Client, invoice_id: uuid.UUID, changes: DraftChanges) -> InvoiceState:
    """Edit a rejected draft; every approval link issued before is superseded."""
    return await _update(db, temporal, invoice_id, InvoiceWorkflow.edit_draft, changes)


async def submit(db: Db, temporal: Client, invoice_id: uuid.UUID, *, actor: str) -> InvoiceState:
    """Send a rejected (and usually edited) draft through approval again."""
    return await _update(db, temporal, invoice_id, InvoiceWorkflow.submit, SubmitInput(actor=actor))


def resend_key(idempotency_key: str) -> str:
    """A resend's name in the outbox, on the timeline and as the Update id: short whatever the caller's
    key (up to 200 characters), and the same for the same key."""
    return hashlib.sha256(f"resend:{idempotency_key}".encode()).hexdigest()[:32]


async def resend(
    db: Db, temporal: Client, invoice_id: uuid.UUID, *, idempotency_key: str, actor: str, reason: str = ""
) -> InvoiceState:
    """Send the invoice email to the client again, once per ``idempotency_key``; the workflow refuses
    an invoice that is not open, overdue or partially paid (a draft, a paid or a void one)."""
    key = resend_key(idempotency_key)
    request = ResendInput(idempotency_key=key, actor=actor, reason=reason)
    workflow_id = await workflow_id_of(db, invoice_id)
    try:
        return await run_update(
            temporal, workflow_id, InvoiceWorkflow.resend, request, update_id=f"resend-{key}"
        )
    except Conflict as exc:
        if exc.message != FINISHED:
            raise
        # A paid, void or written-off invoice's workflow has ended: say so in the validator's words.
        status = await db.run(lambda s: repo.get_invoice(s, invoice_id).status)
        raise Conflict(f"invoice is {status}; {RESEND_ONLY}") from None


async def retry_accounting(db: Db, temporal: Client, invoice_id: uuid.UUID) -> None:
    """After fixing what the accounting system refused (an account or tax code), sync again."""
    await send_signal(temporal, await workflow_id_of(db, invoice_id), InvoiceWorkflow.retry_accounting)
