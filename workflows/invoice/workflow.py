"""InvoiceWorkflow: one durable process per invoice, from draft to paid, void or written off.

The workflow decides *what happens next and when*; activities do every side effect (database, PDF,
SMTP) and are idempotent by key, so a replayed or retried step never acts twice. Time comes only from
``workflow.now()``; the reminder plan is computed by the pure ``billing.reminders`` function inside the
issue activity (it needs the client's timezone database) and arrives here as fixed UTC instants.

Message handlers share one lock with the main loop: a payment, a void and a reminder never interleave
halfway, and a reminder is never sent after the lock holder settled the invoice.

The class holds the main line and every message handler; its parts sit beside it: ``approval`` (the gate),
``dunning`` (the clock), ``books`` (accounting sync), ``base`` (shared side effects), ``options``;
``resend`` holds its own Update (sending the invoice email again), which this module had no room for.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from billing.status import FINAL_STATUSES, InvoiceStatus
    from workflows.payloads import (
        AccountingAction,
        AccountingSyncRequest,
        ActivityName,
        ApplyPaymentRequest,
        ApprovalChain,
        ApproveInput,
        CreditNoteInput,
        CreditNoteOutcome,
        CreditNoteRenderRequest,
        CreditNoteRequest,
        DecisionInput,
        DraftChanges,
        EventRecord,
        HoldSpec,
        InvoiceResult,
        InvoiceState,
        InvoiceWorkflowInput,
        IssuedInvoice,
        PaymentInput,
        PaymentOutcome,
        PlaceHoldRequest,
        RefundInput,
        RefundOutcome,
        RefundRequest,
        ReleaseInput,
        RenderedPdf,
        SubmitInput,
        TimelineEntry,
        UncollectibleInput,
        VoidInput,
    )

from workflows.invoice.approval import ApprovalGate
from workflows.invoice.books import BooksSync
from workflows.invoice.dunning import DunningClock
from workflows.invoice.einvoice import EInvoiceGate
from workflows.invoice.issue import IssueStep
from workflows.invoice.ledger import LedgerRules
from workflows.invoice.options import (
    ACCOUNTING_SYNC_PATCH,
    BOOKS_REFUND_PATCH,
    CREDIT_NOTES_PATCH,
    DB_RETRY,
    DB_TIMEOUT,
    HOLDS_PATCH,
    LEAN_LIFE_PATCH,
    OPEN_STATES,
    REFUNDS_PATCH,
    RENDER_TIMEOUT,
    SIDE_EFFECT_RETRY,
)
from workflows.invoice.resend import ResendStep


@workflow.defn(name="InvoiceWorkflow")
class InvoiceWorkflow(
    IssueStep, ApprovalGate, DunningClock, BooksSync, LedgerRules, EInvoiceGate, ResendStep
):
    @workflow.init
    def __init__(self, input: InvoiceWorkflowInput) -> None:
        self._input = input
        self._status = InvoiceStatus.DRAFT
        self._issued: IssuedInvoice | None = None
        self._total: Decimal | None = None
        self._amount_paid = Decimal(0)
        self._credit = Decimal(0)
        self._credited = Decimal(0)  # sum of credit notes; stays 0 in histories from before credit notes
        self._past_due = False
        self._next_step = 0
        self._pdf_key: str | None = None
        self._timeline: list[TimelineEntry] = []
        self._approved = False
        self._revision = 0
        self._chain: ApprovalChain | None = None
        self._step = 0
        self._approvals: set[str] = set()
        self._rejection: tuple[str, str] | None = None
        self._escalated = False
        self._awaiting_submit = False
        self._lock = asyncio.Lock()
        self._sync_enabled = False
        self._sync_queue: list[AccountingSyncRequest] = []
        self._sync_status = ""  # "" (none yet) | pending | synced | skipped | sync_failed
        self._sync_error = ""
        self._sync_retry = False
        self._holds: dict[str, HoldSpec] = {}  # active dunning holds by id
        self._ended_holds: set[str] = set()
        self._held_since: datetime | None = None
        self._wake = False  # holds changed: recompute the next deadline
        self._next_fee = 0  # index into issued.late_fee_at
        self._einvoice_retry = False
        self._einvoice_errors: list[str] = []
        self._sent_attach: str | None = None  # what the invoice email attached (the resend attaches it)
        self._resends: set[str] = set()  # idempotency keys of the resends done
        if input.parked is None:
            # New invoices take the lean path (local database steps); older histories replay as they ran.
            self._lean = workflow.patched(LEAN_LIFE_PATCH)
        else:  # a parked invoice's continue-as-new (DunningClock._park)
            # Only code that has the lean path continues invoices as new: the run it starts takes that
            # path without a marker (a marker costs the woken run two events and a visibility write).
            self._lean = True
            self._unpark(input.parked)

    @workflow.run
    async def run(self, input: InvoiceWorkflowInput) -> InvoiceResult:
        if input.parked is None:
            self._note("created")
            await self._approval_gate()
            async with self._lock:
                if self._status not in FINAL_STATUSES:
                    await self._issue_and_send()
            if self._issued is not None and self._patched(ACCOUNTING_SYNC_PATCH):
                self._sync_enabled = True
                self._queue_sync(AccountingAction.INVOICE)
                if self._status == InvoiceStatus.VOID:  # voided while the first sync was being queued
                    self._queue_sync(AccountingAction.VOID)
        if self._sync_enabled:
            sync = asyncio.create_task(self._sync_loop())

        while self._status not in FINAL_STATUSES:
            deadline = self._next_deadline()
            self._wake = False  # only hold changes set it, so histories without holds wait as before
            await self._park(deadline)  # may continue as new: the run that wakes replays a short history
            if deadline is None:
                await workflow.wait_condition(lambda: self._status in FINAL_STATUSES or self._wake)
                if self._status in FINAL_STATUSES:
                    break
                continue
            remaining = deadline - workflow.now()
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._status in FINAL_STATUSES or self._wake, timeout=remaining
                    )
                except TimeoutError:
                    pass
            async with self._lock:
                await self._fire_due_steps()

        if self._status == InvoiceStatus.PAID:
            await self._send_email("payment_receipt", key=f"invoice:{input.invoice_id}:receipt")
            await self._tell_project_paid()
        if self._sync_enabled:
            # The books must hear about every payment and the void before this invoice's process ends;
            # a sync an operator has to fix keeps it open (and visible) until it goes through.
            await workflow.wait_condition(lambda: not self._sync_queue)
            sync.cancel()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return InvoiceResult(
            invoice_id=input.invoice_id,
            status=str(self._status),
            number=self._issued.number if self._issued else None,
            amount_paid=str(self._amount_paid),
            amount_due=str(self._amount_due()),
        )

    @workflow.update
    async def decide(self, decision: DecisionInput) -> InvoiceState:
        approver = decision.approver.strip().lower()
        step, revision = self._step, self._revision
        if decision.decision == "approve":
            self._approvals.add(approver)
        else:
            self._rejection = (approver, decision.comment)
        kind = "approval.approved" if decision.decision == "approve" else "approval.rejected"
        client = self._chain is not None and approver in self._chain.steps[step].client
        self._note(kind, f"{approver}{' (client)' if client else ''} (step {step + 1}, {decision.via})")
        data = {
            "step": str(step + 1),
            "revision": str(revision),
            "comment": decision.comment,
            "via": decision.via,
            "ip": decision.ip,
            "user_agent": decision.user_agent,
        }
        if client:  # the client's own sign-off (a purchase order, a timesheet), not the firm's
            data["party"] = "client"
        await self._db_step(
            ActivityName.RECORD_EVENT,
            EventRecord(
                invoice_id=self._input.invoice_id,
                kind=kind,
                actor=approver,
                data=data,
                dedupe_key=f"invoice:{self._input.invoice_id}:decision:r{revision}:s{step}:{approver}",
            ),
        )
        return self.state()

    @decide.validator
    def _validate_decide(self, decision: DecisionInput) -> None:
        self._check_decide(decision)

    @workflow.update
    async def edit_draft(self, changes: DraftChanges) -> InvoiceState:
        await self._await_draft()
        await self._revise(changes)
        self._note("draft.revised", f"revision {self._revision}")
        return self.state()

    @edit_draft.validator
    def _validate_edit(self, changes: DraftChanges) -> None:
        self._check_edit(changes)

    @workflow.update
    async def submit(self, request: SubmitInput) -> InvoiceState:
        await self._await_draft()
        self._awaiting_submit = False
        self._note("draft.submitted", request.actor)
        return self.state()

    @submit.validator
    def _validate_submit(self, request: SubmitInput) -> None:
        self._check_submit(request)

    @workflow.update
    async def approve(self, request: ApproveInput) -> InvoiceState:
        self._approved = True
        self._note("approved", f"{request.actor} {request.comment}".strip())
        await self._db_step(
            ActivityName.RECORD_EVENT,
            EventRecord(
                invoice_id=self._input.invoice_id,
                kind="approved",
                actor=request.actor,
                data={"comment": request.comment},
                dedupe_key=f"invoice:{self._input.invoice_id}:approved",
            ),
        )
        return self.state()

    @approve.validator
    def _validate_approve(self, request: ApproveInput) -> None:
        self._check_approve(request)

    @workflow.update
    async def hold(self, hold: HoldSpec) -> InvoiceState:
        """Pause dunning (a dispute, a payment in flight): no reminder goes out until the hold ends.
        Money is untouched; payments are still taken."""
        async with self._lock:
            if self._status in FINAL_STATUSES:
                raise ApplicationError(
                    f"invoice is {self._status}; there is no dunning to hold", type="InvoiceClosed"
                )
            if hold.hold_id in self._holds or hold.hold_id in self._ended_holds:
                return self.state()  # a repeated request (a redelivered webhook): already done
            self._patched(HOLDS_PATCH)
            await workflow.execute_activity(
                ActivityName.PLACE_DUNNING_HOLD,
                PlaceHoldRequest(invoice_id=self._input.invoice_id, hold=hold, at=workflow.now()),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="Place dunning hold",
            )
            if not self._holds:
                self._held_since = workflow.now()
            self._holds[hold.hold_id] = hold
            self._note("dunning.hold_placed", f"{hold.kind}: {hold.reason}".strip())
            self._wake = True
        return self.state()

    @hold.validator
    def _validate_hold(self, hold: HoldSpec) -> None:
        self._check_hold(hold)

    @workflow.update
    async def release(self, request: ReleaseInput) -> InvoiceState:
        """End holds (all of this invoice's own dispute holds when none is named)."""
        async with self._lock:
            ids = request.hold_ids or [
                h.hold_id for h in self._holds.values() if h.kind == "dispute" and not h.customer_wide
            ]
            if self._status not in FINAL_STATUSES:
                await self._end_holds(ids, actor=request.actor, reason=request.reason or "released")
        return self.state()

    @release.validator
    def _validate_release(self, request: ReleaseInput) -> None:
        self._check_release(request)

    @workflow.update
    async def record_payment(self, payment: PaymentInput) -> PaymentOutcome:
        async with self._lock:
            # State may have moved while this update waited for the lock.
            if self._status in FINAL_STATUSES:
                raise ApplicationError(
                    f"invoice is {self._status}; it takes no more payments", type="InvoiceClosed"
                )
            assert self._issued is not None
            outcome = await self._db_step(
                ActivityName.APPLY_PAYMENT,
                ApplyPaymentRequest(
                    invoice_id=self._input.invoice_id,
                    payment=payment,
                    past_due=self._past_due,
                    received_at=payment.received_at or workflow.now(),
                ),
                result_type=PaymentOutcome,
            )
            self._amount_paid = Decimal(outcome.amount_paid)
            self._credit = Decimal(outcome.credit)
            self._note(
                "payment.duplicate" if outcome.duplicate else "payment.recorded",
                f"{payment.amount} {self._input.currency} ({payment.method})",
            )
            if not outcome.duplicate:
                self._queue_sync(AccountingAction.PAYMENT, payment_id=outcome.payment_id)
            status = InvoiceStatus(outcome.status)
            if status != self._status:
                self._status = status
                self._note(f"status.{status}", "payment")
            if not (self._lean and outcome.duplicate):  # a repeated payment changed nothing to show
                self._publish()
            settled = [
                h.hold_id
                for h in self._holds.values()
                if h.payment_key and h.payment_key == payment.idempotency_key
            ]
            if settled and self._status not in FINAL_STATUSES:
                # The payment that was in flight arrived (in part): dunning resumes for what is left.
                await self._end_holds(settled, actor=payment.actor, reason="payment")
            return outcome

    @record_payment.validator
    def _validate_payment(self, payment: PaymentInput) -> None:
        self._check_payment(payment)

    @workflow.update
    async def void(self, request: VoidInput) -> InvoiceState:
        async with self._lock:
            if self._status in FINAL_STATUSES:
                raise ApplicationError(f"invoice is already {self._status}", type="InvoiceClosed")
            await self._close(InvoiceStatus.VOID, request.reason, request.actor)
        return self.state()

    @void.validator
    def _validate_void(self, request: VoidInput) -> None:
        self._check_void(request)

    @workflow.update
    async def mark_uncollectible(self, request: UncollectibleInput) -> InvoiceState:
        async with self._lock:
            if self._status not in OPEN_STATES:
                raise ApplicationError(f"invoice is {self._status}", type="InvoiceClosed")
            await self._close(InvoiceStatus.UNCOLLECTIBLE, request.reason, request.actor)
        return self.state()

    @mark_uncollectible.validator
    def _validate_uncollectible(self, request: UncollectibleInput) -> None:
        self._check_uncollectible(request)

    @workflow.update
    async def issue_credit_note(self, request: CreditNoteInput) -> CreditNoteOutcome:
        """Number and persist a credit note, reduce the amount due (settling the status: ``credited``
        when the whole total is credited, ``paid`` when the rest is paid), then render its PDF, email it
        to the client and queue its accounting sync. Duplicates (same key) change nothing."""
        self._patched(CREDIT_NOTES_PATCH)
        invoice_id = self._input.invoice_id
        async with self._lock:
            if self._status not in OPEN_STATES:
                raise ApplicationError(
                    f"invoice is {self._status}; it takes no credit notes", type="InvoiceClosed"
                )
            outcome = await workflow.execute_activity(
                ActivityName.ISSUE_CREDIT_NOTE,
                CreditNoteRequest(
                    invoice_id=invoice_id, credit_note=request, past_due=self._past_due, as_of=workflow.now()
                ),
                result_type=CreditNoteOutcome,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="Number and record credit note",
            )
            self._amount_paid = Decimal(outcome.amount_paid)
            self._credited = Decimal(outcome.amount_credited)
            self._credit = Decimal(outcome.credit)
            self._note(
                "credit_note.duplicate" if outcome.duplicate else "credit_note.issued",
                f"{outcome.number}: {outcome.total} {self._input.currency}",
            )
            if not outcome.duplicate:
                self._queue_sync(AccountingAction.CREDIT_NOTE, credit_note_id=outcome.credit_note_id)
            status = InvoiceStatus(outcome.status)
            if status != self._status:
                self._status = status
                self._note(f"status.{status}", f"credit note {outcome.number}")
            self._publish()
        if not outcome.duplicate:
            pdf = await workflow.execute_activity(
                ActivityName.RENDER_CREDIT_NOTE_PDF,
                CreditNoteRenderRequest(credit_note_id=outcome.credit_note_id),
                result_type=RenderedPdf,
                start_to_close_timeout=RENDER_TIMEOUT,
                retry_policy=SIDE_EFFECT_RETRY,
                summary="Render credit note PDF",
            )
            self._note("credit_note.pdf_rendered", pdf.key)
            await self._send_email(
                "credit_note",
                key=f"invoice:{invoice_id}:credit_note:{outcome.credit_note_id}",
                attach_pdf_key=pdf.key,
                credit_note_id=outcome.credit_note_id,
            )
        return outcome

    @issue_credit_note.validator
    def _validate_credit_note(self, request: CreditNoteInput) -> None:
        self._check_credit_note(request)

    @workflow.update
    async def record_refund(self, refund: RefundInput) -> RefundOutcome:
        """Money returned on an open invoice is owed again: the amount due rises and the status is
        settled again (e.g. partially paid → open). Refunds of closed invoices do not come here."""
        self._patched(REFUNDS_PATCH)
        async with self._lock:
            if self._status not in OPEN_STATES:
                raise ApplicationError(
                    f"invoice is {self._status}; refund it through its customer credit", type="InvoiceClosed"
                )
            outcome = await workflow.execute_activity(
                ActivityName.APPLY_REFUND,
                RefundRequest(invoice_id=self._input.invoice_id, refund=refund, past_due=self._past_due),
                result_type=RefundOutcome,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="Record refund",
            )
            self._amount_paid = Decimal(outcome.amount_paid)
            self._credit = Decimal(outcome.credit)
            self._note(
                "refund.duplicate" if outcome.duplicate else "refund.recorded",
                f"{refund.amount} {self._input.currency}",
            )
            if not outcome.duplicate and self._sync_enabled and self._patched(BOOKS_REFUND_PATCH):
                self._queue_sync(AccountingAction.REFUND, refund_id=outcome.refund_id)
            status = InvoiceStatus(outcome.status)
            if status != self._status:
                self._status = status
                self._note(f"status.{status}", "refund")
            self._publish()
            return outcome

    @record_refund.validator
    def _validate_refund(self, refund: RefundInput) -> None:
        self._check_refund(refund)

    @workflow.signal
    def retry_einvoice(self) -> None:
        """The data an invalid e-invoice lacked was fixed: build and validate it again now."""
        self._einvoice_retry = True

    @workflow.signal
    def retry_accounting(self) -> None:
        """An operator fixed what the accounting system refused (an account or tax code): try again."""
        self._sync_retry = True

    @workflow.query
    def state(self) -> InvoiceState:
        return self._snapshot()
