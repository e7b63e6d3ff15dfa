"""Sending the invoice email again (the client says it never arrived): a workflow Update, so the
workflow decides from its own state whether the invoice is one a client should get again.

Exactly once per resend: the request's ``idempotency_key`` is this resend's name. It is the email's
outbox key (the email activity sends once per key, whatever the retries) and the timeline event's dedupe
key, and the workflow remembers the keys it has served, so the same resend asked again (a double click,
a retried Update with another Update id) sends nothing more. The service also uses it as the Update id,
which Temporal itself deduplicates.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from billing.status import InvoiceStatus
    from workflows.payloads import ActivityName, EventRecord, InvoiceState, ResendInput

from workflows.invoice.base import InvoiceBase
from workflows.invoice.options import DB_RETRY, DB_TIMEOUT, OPEN_STATES, RESEND_PATCH

RESEND_ONLY = "only an open, overdue or partially paid invoice is sent again"


class ResendStep(InvoiceBase):
    def _resend_refusal(self) -> str | None:
        if self._issued is None or self._status not in OPEN_STATES:
            if self._status == InvoiceStatus.EINVOICE_INVALID:
                return (
                    "invoice is einvoice_invalid; it was never sent: fix its e-invoice data and it goes "
                    "out by itself"
                )
            return f"invoice is {self._status}; {RESEND_ONLY}"
        return None

    def _check_resend(self, request: ResendInput) -> None:
        if not request.idempotency_key.strip():
            raise ValueError("idempotency_key is required")
        if request.idempotency_key in self._resends:
            return  # the same resend asked again: the handler answers without sending
        refusal = self._resend_refusal()
        if refusal is not None:
            raise ValueError(refusal)

    @workflow.update
    async def resend(self, request: ResendInput) -> InvoiceState:
        workflow.patched(RESEND_PATCH)
        invoice_id = self._input.invoice_id
        async with self._lock:
            if request.idempotency_key in self._resends:
                return self._snapshot()
            refusal = self._resend_refusal()  # the state may have moved while this waited for the lock
            if refusal is not None:
                raise ApplicationError(refusal, type="InvoiceClosed")
            self._resends.add(request.idempotency_key)
            key = f"invoice:{invoice_id}:resend:{request.idempotency_key}"
            await workflow.execute_activity(
                ActivityName.RECORD_EVENT,
                EventRecord(
                    invoice_id=invoice_id,
                    kind="invoice.resent",
                    actor=request.actor,
                    data={"reason": request.reason, "key": request.idempotency_key},
                    dedupe_key=key,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="Record resend",
            )
            self._note("invoice.resent", f"{request.actor} {request.reason}".strip())
            await self._send_email("invoice", key=key, attach_pdf_key=self._sent_attach or self._pdf_key)
        return self._snapshot()

    @resend.validator
    def _validate_resend(self, request: ResendInput) -> None:
        self._check_resend(request)
