"""Credit notes on a paid invoice, whose own workflow has ended: started as their own short-lived
workflow (``workflows.closed_credit_note``), one per (invoice, idempotency key), so a repeated request
joins the run already under way and gets the same credit note."""

from __future__ import annotations

import uuid

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from core.settings import Settings
from services.workflow_calls import refusal
from workflows.closed_credit_note import ClosedInvoiceCreditNoteWorkflow, closed_credit_note_workflow_id
from workflows.payloads import ClosedCreditNoteInput, CreditNoteInput, CreditNoteOutcome


async def issue_on_closed_invoice(
    temporal: Client, settings: Settings, invoice_id: uuid.UUID, request: CreditNoteInput
) -> CreditNoteOutcome:
    """Start (or join) the credit note's workflow and wait until it is numbered; a refusal is a 409."""
    handle = await temporal.start_workflow(
        ClosedInvoiceCreditNoteWorkflow.run,
        ClosedCreditNoteInput(invoice_id=str(invoice_id), credit_note=request),
        id=closed_credit_note_workflow_id(str(invoice_id), request.idempotency_key),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    try:
        return await handle.execute_update(ClosedInvoiceCreditNoteWorkflow.issued)
    except (WorkflowUpdateFailedError, RPCError) as exc:
        raise refusal(exc) from exc
