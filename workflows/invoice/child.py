"""Starting an invoice from another workflow (subscription cycle, accepted estimate, project trigger)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from billing.status import InvoiceStatus
    from workflows import search_attributes as sa
    from workflows.payloads import (
        InvoiceWorkflowInput,
        invoice_workflow_id,
    )

from workflows.invoice.workflow import InvoiceWorkflow


async def start_invoice_child(input: InvoiceWorkflowInput) -> None:
    """Start an invoice from another workflow (subscription cycle, accepted estimate). The child is
    abandoned on close, so the invoice outlives its parent, and its id derives from the invoice id,
    so a second start (a retry, a replay) is a no-op."""
    try:
        await workflow.start_child_workflow(
            InvoiceWorkflow.run,
            input,
            id=invoice_workflow_id(input.invoice_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.INVOICE_STATUS, str(InvoiceStatus.DRAFT)),
                    SearchAttributePair(sa.CUSTOMER_ID, input.customer_id),
                    SearchAttributePair(sa.CURRENCY, input.currency),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        pass  # this invoice already runs (or ran): nothing to do
