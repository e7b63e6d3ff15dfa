"""Issuing an invoice: number and due date, the PDF, the e-invoice where the customer takes one, the
invoice email; then the status follows from money and time."""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.payloads import (
        ActivityName,
        IssuedInvoice,
        IssueRequest,
        RenderedPdf,
        RenderRequest,
    )
    from workflows.payloads.einvoice import EINVOICE_PATCH

from workflows.invoice.einvoice import EInvoiceGate
from workflows.invoice.options import (
    HOLDS_PATCH,
    RENDER_TIMEOUT,
    SIDE_EFFECT_RETRY,
)


class IssueStep(EInvoiceGate):
    async def _issue_and_send(self) -> None:
        invoice_id = self._input.invoice_id
        issued = await self._db_step(
            ActivityName.ISSUE_INVOICE,
            IssueRequest(invoice_id=invoice_id, as_of=workflow.now()),
            result_type=IssuedInvoice,
            summary="Allocate number, fix due date",
        )
        self._issued = issued
        if issued.holds and self._patched(HOLDS_PATCH):
            # Issued while its customer is on hold: no reminder until that hold ends.
            self._held_since = workflow.now()
            for hold in issued.holds:
                self._holds[hold.hold_id] = hold
                self._note("dunning.hold_placed", f"{hold.kind}: {hold.reason} (customer)".strip())
        self._total = Decimal(issued.total)
        self._amount_paid = Decimal(issued.amount_paid)
        self._past_due = workflow.now() >= issued.overdue_at
        self._note("issued", f"{issued.number}, due {issued.due_date}")
        memo = {"customer_name": issued.customer_name, "total": f"{issued.total} {issued.currency}"}
        if not self._lean:
            workflow.upsert_memo(memo)
            self._publish()
        elif any(workflow.memo_value(k, default=None, type_hint=str) != v for k, v in memo.items()):
            # The API's start already set this memo; only a start without one (or with other totals)
            # gets it here. The search attributes follow with the status change in ``_settle``.
            workflow.upsert_memo(memo)

        pdf = await workflow.execute_activity(
            ActivityName.RENDER_INVOICE_PDF,
            RenderRequest(invoice_id=invoice_id),
            result_type=RenderedPdf,
            start_to_close_timeout=RENDER_TIMEOUT,
            retry_policy=SIDE_EFFECT_RETRY,
            summary="Render PDF",
        )
        self._pdf_key = pdf.key
        self._note("pdf.rendered", pdf.key)

        attach: str | None = pdf.key
        if self._lean and issued.einvoice_format == "none":
            pass  # the customer takes PDFs only (known at issue): there is no e-invoice to build
        elif self._patched(EINVOICE_PATCH):
            attach = await self._einvoice(pdf.key)
            if attach is None:  # voided while its e-invoice waited for a fix
                return
        self._sent_attach = attach
        await self._send_email("invoice", key=f"invoice:{invoice_id}:sent", attach_pdf_key=attach)
        before = self._status
        await self._settle(event="sent")
        if self._lean and self._status == before:
            self._publish()  # the number, due date and amount issued, for the Temporal UI
