"""The e-invoice gate: before the invoice email, the e-invoice in the customer's format is built and
validated with the official rules (in an activity; the document never travels, only its key). An invalid
one stops the invoice in ``einvoice_invalid`` with the failed rules on the timeline until the data is
fixed (``retry_einvoice``, or the periodic recheck); the lock is released meanwhile so that the invoice
can still be voided."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from billing.status import FINAL_STATUSES, InvoiceStatus
    from workflows.payloads.einvoice import (
        EINVOICE_RECHECK,
        EINVOICE_TIMEOUT,
        PRODUCE_EINVOICE,
        EInvoiceRequest,
        EInvoiceResult,
    )

from workflows.invoice.base import InvoiceBase
from workflows.invoice.options import SIDE_EFFECT_RETRY


class EInvoiceGate(InvoiceBase):
    async def _einvoice(self, pdf_key: str) -> str | None:
        """Returns the key the email attaches (the Factur-X PDF or the plain one); None once voided."""
        while True:
            result = await workflow.execute_activity(
                PRODUCE_EINVOICE,
                EInvoiceRequest(invoice_id=self._input.invoice_id, pdf_key=pdf_key),
                result_type=EInvoiceResult,
                start_to_close_timeout=EINVOICE_TIMEOUT,
                retry_policy=SIDE_EFFECT_RETRY,
                summary="E-invoice: build and validate",
            )
            if result.status != "invalid":
                self._einvoice_errors = []
                if result.status == "valid":
                    self._note("einvoice.valid", f"{result.format} {result.key}")
                return result.attach_key or pdf_key
            self._einvoice_errors = list(result.errors)
            self._note("einvoice.invalid", result.summary)
            self._status = InvoiceStatus.EINVOICE_INVALID  # written by the activity
            self._publish()
            self._einvoice_retry = False
            self._lock.release()
            try:
                await workflow.wait_condition(
                    lambda: self._einvoice_retry or self._status in FINAL_STATUSES, timeout=EINVOICE_RECHECK
                )
            except TimeoutError:
                pass
            finally:
                await self._lock.acquire()
            if self._status in FINAL_STATUSES:
                return None
