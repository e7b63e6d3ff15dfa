"""The books sync: one accounting sync at a time, in order (the invoice before its payments, payments
before a void); a sync the provider refuses waits for an operator's retry.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.payloads import (
        ACCOUNTING_VALIDATION_ERROR,
        AccountingSyncRequest,
        AccountingSyncResult,
        ActivityName,
    )

from workflows.invoice.base import InvoiceBase
from workflows.invoice.options import (
    ACCOUNTING_HEARTBEAT,
    ACCOUNTING_RETRY,
    ACCOUNTING_TIMEOUT,
)


class BooksSync(InvoiceBase):
    def _queue_sync(
        self,
        action: str,
        payment_id: str | None = None,
        credit_note_id: str | None = None,
        refund_id: str | None = None,
    ) -> None:
        if self._sync_enabled:
            self._sync_queue.append(
                AccountingSyncRequest(
                    invoice_id=self._input.invoice_id,
                    action=action,
                    payment_id=payment_id,
                    credit_note_id=credit_note_id,
                    refund_id=refund_id,
                )
            )
            if self._sync_status != "sync_failed":
                self._sync_status = "pending"

    async def _sync_loop(self) -> None:
        """One sync at a time, in order (the invoice before its payments, payments before a void)."""
        while True:
            await workflow.wait_condition(lambda: bool(self._sync_queue))
            request = self._sync_queue[0]
            try:
                result = await workflow.execute_activity(
                    ActivityName.SYNC_ACCOUNTING,
                    request,
                    result_type=AccountingSyncResult,
                    start_to_close_timeout=ACCOUNTING_TIMEOUT,
                    heartbeat_timeout=ACCOUNTING_HEARTBEAT,
                    retry_policy=ACCOUNTING_RETRY,
                    summary=f"Accounting: {request.action}",
                )
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == ACCOUNTING_VALIDATION_ERROR):
                    raise
                self._sync_status, self._sync_error = "sync_failed", cause.message
                self._note("accounting.sync_failed", f"{request.action}: {cause.message}")
                workflow.set_current_details(
                    f"Accounting sync failed: {cause.message}. Fix the mapping, then retry."
                )
                await workflow.wait_condition(lambda: self._sync_retry)
                self._sync_retry, self._sync_status, self._sync_error = False, "pending", ""
                workflow.set_current_details("")
                continue
            self._sync_queue.pop(0)
            if result.status == "synced":
                self._note(
                    "accounting.synced", f"{request.action} → {result.provider} {result.external_id}".strip()
                )
            self._sync_status = result.status if not self._sync_queue else "pending"
