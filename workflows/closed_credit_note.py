"""A credit note on an invoice that is already paid: its own short-lived workflow.

A paid invoice's ``InvoiceWorkflow`` has ended (or is about to), so it cannot take the
``issue_credit_note`` Update. Rather than keep every invoice workflow open for credit notes that rarely
come (and change its main line, which recorded histories replay), a credit note on a paid invoice runs
here: numbered and recorded by the same activity (all of it becomes the customer's credit, the invoice
stays paid), its PDF rendered and emailed with the same idempotency keys the invoice workflow uses, then
synced to the books (where it stays as unallocated credit on the customer, applied to their next invoice
like ours). The workflow id is per (invoice, idempotency key), so a repeated request joins the same run.
The ``issued`` Update answers as soon as the credit note is numbered, or with the reason it was refused.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.payloads import (
        ACCOUNTING_VALIDATION_ERROR,
        AccountingAction,
        AccountingSyncRequest,
        AccountingSyncResult,
        ActivityName,
        ClosedCreditNoteInput,
        CreditNoteOutcome,
        CreditNoteRenderRequest,
        CreditNoteRequest,
        EmailRequest,
        EmailResult,
        RenderedPdf,
    )

from workflows.invoice.options import (
    ACCOUNTING_RETRY,
    ACCOUNTING_TIMEOUT,
    DB_RETRY,
    DB_TIMEOUT,
    EMAIL_HEARTBEAT,
    EMAIL_TIMEOUT,
    RENDER_TIMEOUT,
    SIDE_EFFECT_RETRY,
)


def closed_credit_note_workflow_id(invoice_id: str, idempotency_key: str) -> str:
    return f"credit-note:{invoice_id}:{idempotency_key}"


@workflow.defn(name="ClosedInvoiceCreditNoteWorkflow")
class ClosedInvoiceCreditNoteWorkflow:
    def __init__(self) -> None:
        self._outcome: CreditNoteOutcome | None = None
        self._refused = ""
        self._retry = False
        self.accounting_status = ""

    @workflow.run
    async def run(self, input: ClosedCreditNoteInput) -> CreditNoteOutcome | None:
        try:
            outcome = await workflow.execute_activity(
                ActivityName.ISSUE_CREDIT_NOTE,
                CreditNoteRequest(
                    invoice_id=input.invoice_id,
                    credit_note=input.credit_note,
                    past_due=False,  # nothing is due on a paid invoice; its status stays paid (or credited)
                    as_of=workflow.now(),
                    closed=True,
                ),
                result_type=CreditNoteOutcome,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="Number and record credit note",
            )
        except ActivityError as err:
            self._refused = getattr(err.cause, "message", None) or str(err.cause or err)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return None
        self._outcome = outcome
        if not outcome.duplicate:
            pdf = await workflow.execute_activity(
                ActivityName.RENDER_CREDIT_NOTE_PDF,
                CreditNoteRenderRequest(credit_note_id=outcome.credit_note_id),
                result_type=RenderedPdf,
                start_to_close_timeout=RENDER_TIMEOUT,
                retry_policy=SIDE_EFFECT_RETRY,
                summary="Render credit note PDF",
            )
            await workflow.execute_activity(
                ActivityName.SEND_EMAIL,
                EmailRequest(
                    invoice_id=input.invoice_id,
                    kind="credit_note",
                    key=f"invoice:{input.invoice_id}:credit_note:{outcome.credit_note_id}",
                    attach_pdf_key=pdf.key,
                    credit_note_id=outcome.credit_note_id,
                ),
                result_type=EmailResult,
                start_to_close_timeout=EMAIL_TIMEOUT,
                heartbeat_timeout=EMAIL_HEARTBEAT,
                retry_policy=SIDE_EFFECT_RETRY,
                summary="Email: credit_note",
            )
        await self._sync(
            AccountingSyncRequest(
                invoice_id=input.invoice_id,
                action=AccountingAction.CREDIT_NOTE,
                credit_note_id=outcome.credit_note_id,
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _sync(self, request: AccountingSyncRequest) -> None:
        """The books sync, as the invoice workflow runs it: a refusal waits for an operator's retry."""
        while True:
            try:
                result = await workflow.execute_activity(
                    ActivityName.SYNC_ACCOUNTING,
                    request,
                    result_type=AccountingSyncResult,
                    start_to_close_timeout=ACCOUNTING_TIMEOUT,
                    retry_policy=ACCOUNTING_RETRY,
                    summary="Accounting: credit_note",
                )
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == ACCOUNTING_VALIDATION_ERROR):
                    raise
                self.accounting_status = "sync_failed"
                workflow.set_current_details(f"Accounting sync failed: {cause.message}. Fix, then retry.")
                await workflow.wait_condition(lambda: self._retry)
                self._retry = False
                continue
            self.accounting_status = result.status
            return

    @workflow.update
    async def issued(self) -> CreditNoteOutcome:
        """The credit note once it is numbered; refused (``InvoiceClosed``) with the activity's reason."""
        await workflow.wait_condition(lambda: self._outcome is not None or bool(self._refused))
        if self._outcome is None:
            raise ApplicationError(self._refused, type="InvoiceClosed")
        return self._outcome

    @workflow.signal
    def retry_accounting(self) -> None:
        self._retry = True
