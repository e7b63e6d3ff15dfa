"""InvoiceWorkflow: one durable process per invoice, from draft to paid, void or written off.

The workflow decides *what happens next and when*; activities do every side effect (database, PDF,
SMTP) and are idempotent by key, so a replayed or retried step never acts twice. Time comes only from
``workflow.now()``; the reminder plan is computed by the pure ``billing.reminders`` function inside the
issue activity (it needs the client's timezone database) and arrives here as fixed UTC instants.

Message handlers share one lock with the main loop: a payment, a void and a reminder never interleave
halfway, and a reminder is never sent after the lock holder settled the invoice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from billing.credits import CreditRefused, check_credit_amount
    from billing.currency import normalize_currency
    from billing.errors import MoneyError
    from billing.money import parse_decimal, require_minor_units
    from billing.status import FINAL_STATUSES, InvoiceStatus, settle_status
    from billing.totals import compute_totals, parse_lines
    from workflows import search_attributes as sa
    from workflows.contracts import (
        ACCOUNTING_VALIDATION_ERROR,
        AccountingAction,
        AccountingSyncRequest,
        AccountingSyncResult,
        ActivityName,
        ApplyPaymentRequest,
        ApprovalChain,
        ApprovalLinkSpec,
        ApprovalStepSpec,
        ApproveInput,
        CloseRequest,
        CreditNoteInput,
        CreditNoteOutcome,
        CreditNoteRenderRequest,
        CreditNoteRequest,
        DecisionInput,
        DraftChanges,
        EmailRequest,
        EmailResult,
        EventRecord,
        HoldSpec,
        InvoiceResult,
        InvoiceState,
        InvoiceWorkflowInput,
        IssuedInvoice,
        IssueRequest,
        LateFeeOutcome,
        LateFeeRequest,
        PaymentInput,
        PaymentOutcome,
        PlaceHoldRequest,
        RefundInput,
        RefundOutcome,
        RefundRequest,
        ReleaseHoldsRequest,
        ReleaseInput,
        ReleasePlan,
        ReminderPlanStep,
        RenderedPdf,
        RenderRequest,
        RevisionRequest,
        RouteRequest,
        StatusChange,
        SubmitInput,
        TimelineEntry,
        UncollectibleInput,
        VoidInput,
        invoice_workflow_id,
        reminder_email_key,
        reminder_step_id,
    )

# Database steps: a PostgreSQL outage should stall the invoice, never fail it, so retry without limit.
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["InvoiceNotFound", "InvalidInvoice"],
)
# Rendering and email can fail on things an operator fixes (a template, SMTP credentials): keep retrying,
# slowly, and the pending activity shows the error in the Temporal UI meanwhile.
SIDE_EFFECT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["InvoiceNotFound"],
)
DB_TIMEOUT = timedelta(seconds=30)
RENDER_TIMEOUT = timedelta(minutes=2)
EMAIL_TIMEOUT = timedelta(minutes=1)
EMAIL_HEARTBEAT = timedelta(seconds=10)

OPEN_STATES = (InvoiceStatus.OPEN, InvoiceStatus.OVERDUE, InvoiceStatus.PARTIALLY_PAID)
# Marks histories that route approvals through rules; older ones replay without it.
APPROVAL_ROUTING_PATCH = "approval-routing-v1"
# Marks histories that sync to accounting; invoices started before keep running without it.
ACCOUNTING_SYNC_PATCH = "accounting-sync-v1"
# Accounting APIs: 429s wait for the provider's Retry-After (the activity sets next_retry_delay), 5xx and
# timeouts back off; a validation error is final until an operator fixes the mapping and retries.
ACCOUNTING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    non_retryable_error_types=[ACCOUNTING_VALIDATION_ERROR, "InvoiceNotFound"],
)
ACCOUNTING_TIMEOUT = timedelta(minutes=2)
# Marks histories that issued a credit note (the Update is new; the marker documents the code path).
CREDIT_NOTES_PATCH = "credit-notes-v1"
# Marks histories that recorded a refund of an open invoice's payment.
REFUNDS_PATCH = "refunds-v1"
# Marks histories in which a dunning hold (dispute, payment in flight) paused the reminders.
HOLDS_PATCH = "dunning-holds-v1"
# Marks histories that charge a dunning policy's late fee.
LATE_FEE_PATCH = "dunning-late-fee-v1"
# Marks histories in which an edit or resubmission arrived while a rejection was still returning the
# invoice to draft (it waited instead of being refused).
EDIT_AFTER_REJECTION_PATCH = "edit-after-rejection-v1"


@workflow.defn(name="InvoiceWorkflow")
class InvoiceWorkflow:
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

    # ------------------------------------------------------------------ main line

    @workflow.run
    async def run(self, input: InvoiceWorkflowInput) -> InvoiceResult:
        self._note("created")
        await self._approval_gate()
        async with self._lock:
            if self._status not in FINAL_STATUSES:
                await self._issue_and_send()
        if self._issued is not None and workflow.patched(ACCOUNTING_SYNC_PATCH):
            self._sync_enabled = True
            self._queue_sync(AccountingAction.INVOICE)
            if self._status == InvoiceStatus.VOID:  # voided while the first sync was being queued
                self._queue_sync(AccountingAction.VOID)
            sync = asyncio.create_task(self._sync_loop())

        while self._status not in FINAL_STATUSES:
            deadline = self._next_deadline()
            self._wake = False  # only hold changes set it, so histories without holds wait as before
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

    async def _approval_gate(self) -> None:
        """Nothing is issued before sign-off. Approval rules pick a chain of steps (any/all approvers,
        delegates); each approver gets a signed link; an undecided step is reminded, then escalated
        to its delegate; a rejection sends the invoice back to draft until it is submitted again.
        Without a matching rule, only ``requires_approval`` invoices wait, for an operator."""
        if not workflow.patched(APPROVAL_ROUTING_PATCH):
            # Invoices started before approval routing existed keep the behaviour they started with.
            await self._operator_gate()
            return
        while self._status not in FINAL_STATUSES:
            chain = await workflow.execute_activity(
                ActivityName.ROUTE_APPROVAL,
                RouteRequest(invoice_id=self._input.invoice_id),
                result_type=ApprovalChain,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary="Route approval",
            )
            self._revision = chain.revision
            if not chain.steps:
                await self._operator_gate()
                return
            self._note("approval.routed", f"{chain.rule}: {len(chain.steps)} step(s)")
            if await self._run_chain(chain) != "rejected":
                return
            await self._back_to_draft()

    async def _operator_gate(self) -> None:
        if not self._input.requires_approval:
            return
        await self._persist_status(InvoiceStatus.PENDING_APPROVAL, event="awaiting_approval")
        await workflow.wait_condition(lambda: self._approved or self._status in FINAL_STATUSES)

    async def _run_chain(self, chain: ApprovalChain) -> str:
        self._chain = chain
        await self._persist_status(
            InvoiceStatus.PENDING_APPROVAL, event=f"awaiting_approval.r{chain.revision}"
        )
        for index, step in enumerate(chain.steps):
            self._step, self._approvals, self._rejection, self._escalated = index, set(), None, False
            workflow.set_current_details(
                f"Approval step {index + 1}/{len(chain.steps)}: {', '.join(step.approvers)} ({step.mode})"
            )
            workflow.upsert_search_attributes([sa.APPROVAL_STEP.value_set(f"{index + 1}/{len(chain.steps)}")])
            await self._ask(chain, index, step.approvers, reminder=False)
            started, reminded = workflow.now(), False
            while not self._step_settled(step):
                deadlines = []
                if not reminded:
                    deadlines.append(started + timedelta(seconds=chain.remind_after_s))
                if step.delegate and not self._escalated:
                    deadlines.append(started + timedelta(seconds=chain.escalate_after_s))
                timeout = (min(deadlines) - workflow.now()) if deadlines else None
                try:
                    await workflow.wait_condition(
                        lambda step=step: self._step_settled(step),  # type: ignore[misc]
                        timeout=max(timeout, timedelta(0)) if timeout is not None else None,
                    )
                except TimeoutError:
                    now = workflow.now()
                    if not reminded and now >= started + timedelta(seconds=chain.remind_after_s):
                        reminded = True
                        undecided = [a for a in step.approvers if a not in self._approvals]
                        await self._ask(chain, index, undecided, reminder=True)
                    if (
                        step.delegate
                        and not self._escalated
                        and now >= started + timedelta(seconds=chain.escalate_after_s)
                    ):
                        self._escalated = True
                        self._note("approval.escalated", f"step {index + 1} to {step.delegate}")
                        await self._ask(chain, index, [step.delegate], reminder=False)
            if self._status in FINAL_STATUSES or self._rejection is not None:
                workflow.upsert_search_attributes([sa.APPROVAL_STEP.value_unset()])
                return "closed" if self._status in FINAL_STATUSES else "rejected"
        workflow.upsert_search_attributes([sa.APPROVAL_STEP.value_unset()])
        workflow.set_current_details("")
        self._chain = None
        return "approved"

    def _step_settled(self, step: ApprovalStepSpec) -> bool:
        if self._status in FINAL_STATUSES or self._rejection is not None:
            return True
        if self._escalated and step.delegate in self._approvals:
            return True  # the delegate decides for the whole step
        if step.mode == "all":
            return set(step.approvers) <= self._approvals
        return bool(self._approvals)

    async def _ask(self, chain: ApprovalChain, index: int, approvers: list[str], *, reminder: bool) -> None:
        for approver in approvers:
            suffix = ":reminder" if reminder else ""
            await self._send_email(
                "approval_request",
                key=f"invoice:{self._input.invoice_id}:approval:r{chain.revision}:s{index}:{approver}{suffix}",
                to=[approver],
                approval=ApprovalLinkSpec(
                    revision=chain.revision,
                    step=index,
                    approver=approver,
                    reminder=reminder,
                    of_steps=len(chain.steps),
                ),
            )

    async def _back_to_draft(self) -> None:
        """A rejection: back to draft with the comment to the account owner; every outstanding link is
        superseded (new revision); wait for the draft to be submitted again (or voided)."""
        assert self._rejection is not None
        approver, comment = self._rejection
        await self._persist_status(InvoiceStatus.DRAFT, event=f"rejected.r{self._revision}")
        await self._revise(DraftChanges(actor="workflow"))
        await self._send_email(
            "approval_rejected",
            key=f"invoice:{self._input.invoice_id}:rejected:r{self._revision}",
            comment=comment,
            approval=ApprovalLinkSpec(revision=self._revision, step=self._step, approver=approver),
        )
        self._chain, self._rejection, self._awaiting_submit = None, None, True
        workflow.set_current_details("Rejected: waiting for the draft to be edited and submitted")
        await workflow.wait_condition(lambda: not self._awaiting_submit or self._status in FINAL_STATUSES)

    async def _revise(self, changes: DraftChanges) -> None:
        revision = self._revision + 1
        await workflow.execute_activity(
            ActivityName.REVISE_DRAFT,
            RevisionRequest(invoice_id=self._input.invoice_id, revision=revision, changes=changes),
            result_type=int,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._revision = revision

    @workflow.update
    async def decide(self, decision: DecisionInput) -> InvoiceState:
        approver = decision.approver.strip().lower()
        step, revision = self._step, self._revision
        if decision.decision == "approve":
            self._approvals.add(approver)
        else:
            self._rejection = (approver, decision.comment)
        kind = "approval.approved" if decision.decision == "approve" else "approval.rejected"
        self._note(kind, f"{approver} (step {step + 1}, {decision.via})")
        await workflow.execute_activity(
            ActivityName.RECORD_EVENT,
            EventRecord(
                invoice_id=self._input.invoice_id,
                kind=kind,
                actor=approver,
                data={
                    "step": str(step + 1),
                    "revision": str(revision),
                    "comment": decision.comment,
                    "via": decision.via,
                    "ip": decision.ip,
                    "user_agent": decision.user_agent,
                },
                dedupe_key=f"invoice:{self._input.invoice_id}:decision:r{revision}:s{step}:{approver}",
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return self.state()

    @decide.validator
    def _validate_decide(self, decision: DecisionInput) -> None:
        chain = self._chain
        if self._status != InvoiceStatus.PENDING_APPROVAL or chain is None:
            raise ValueError(f"invoice is {self._status}; it is not waiting for an approval decision")
        if decision.decision not in ("approve", "reject"):
            raise ValueError("decision: 'approve' or 'reject'")
        if decision.revision is not None and decision.revision != self._revision:
            raise ValueError("superseded: the invoice changed since this approval was requested")
        if decision.step is not None and decision.step != self._step:
            raise ValueError("superseded: this approval step is no longer the current one")
        step = chain.steps[self._step]
        approver = decision.approver.strip().lower()
        eligible = set(step.approvers) | ({step.delegate} if self._escalated and step.delegate else set())
        if approver not in eligible:
            raise ValueError(f"{approver} is not an approver of step {self._step + 1}")
        if approver in self._approvals or self._rejection is not None or self._step_settled(step):
            raise ValueError("already decided")
        if decision.decision == "reject" and not decision.comment.strip():
            raise ValueError("comment: a rejection needs a reason")

    def _rejection_pending(self) -> bool:
        """A rejection is accepted but the return to draft is still under way (the status may already
        say draft): edits and a resubmission wait for it instead of being refused."""
        return self._rejection is not None and not self._awaiting_submit

    async def _await_draft(self) -> None:
        if self._awaiting_submit:
            return
        workflow.patched(EDIT_AFTER_REJECTION_PATCH)
        await workflow.wait_condition(lambda: self._awaiting_submit or self._status in FINAL_STATUSES)
        if not self._awaiting_submit:
            raise ApplicationError(
                f"invoice is {self._status}; it is no longer a draft", type="InvoiceClosed"
            )

    @workflow.update
    async def edit_draft(self, changes: DraftChanges) -> InvoiceState:
        await self._await_draft()
        await self._revise(changes)
        self._note("draft.revised", f"revision {self._revision}")
        return self.state()

    @edit_draft.validator
    def _validate_edit(self, changes: DraftChanges) -> None:
        if not self._awaiting_submit and not self._rejection_pending():
            raise ValueError(f"invoice is {self._status}; only a rejected draft can be edited")
        if changes.lines is not None:
            try:
                compute_totals(parse_lines(changes.lines), self._input.currency)
            except MoneyError as exc:
                raise ValueError(str(exc)) from None
        if changes.due_date is not None:
            try:
                date.fromisoformat(changes.due_date)
            except ValueError:
                raise ValueError(f"due_date: {changes.due_date!r} is not a date") from None

    @workflow.update
    async def submit(self, request: SubmitInput) -> InvoiceState:
        await self._await_draft()
        self._awaiting_submit = False
        self._note("draft.submitted", request.actor)
        return self.state()

    @submit.validator
    def _validate_submit(self, request: SubmitInput) -> None:
        if not self._awaiting_submit and not self._rejection_pending():
            raise ValueError(f"invoice is {self._status}; only a rejected draft can be submitted again")

    @workflow.update
    async def approve(self, request: ApproveInput) -> InvoiceState:
        self._approved = True
        self._note("approved", f"{request.actor} {request.comment}".strip())
        await workflow.execute_activity(
            ActivityName.RECORD_EVENT,
            EventRecord(
                invoice_id=self._input.invoice_id,
                kind="approved",
                actor=request.actor,
                data={"comment": request.comment},
                dedupe_key=f"invoice:{self._input.invoice_id}:approved",
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return self.state()

    @approve.validator
    def _validate_approve(self, request: ApproveInput) -> None:
        if self._status != InvoiceStatus.PENDING_APPROVAL or self._approved:
            raise ValueError(f"invoice is {self._status}; only an invoice pending approval can be approved")
        if self._chain is not None:
            raise ValueError(
                "this invoice waits for its approval chain; approvers decide (POST /invoices/{id}/decisions)"
            )

    async def _issue_and_send(self) -> None:
        invoice_id = self._input.invoice_id
        issued = await workflow.execute_activity(
            ActivityName.ISSUE_INVOICE,
            IssueRequest(invoice_id=invoice_id, as_of=workflow.now()),
            result_type=IssuedInvoice,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Allocate number, fix due date",
        )
        self._issued = issued
        if issued.holds and workflow.patched(HOLDS_PATCH):
            # Issued while its customer is on hold: no reminder until that hold ends.
            self._held_since = workflow.now()
            for hold in issued.holds:
                self._holds[hold.hold_id] = hold
                self._note("dunning.hold_placed", f"{hold.kind}: {hold.reason} (customer)".strip())
        self._total = Decimal(issued.total)
        self._amount_paid = Decimal(issued.amount_paid)
        self._past_due = workflow.now() >= issued.overdue_at
        self._note("issued", f"{issued.number}, due {issued.due_date}")
        workflow.upsert_memo(
            {"customer_name": issued.customer_name, "total": f"{issued.total} {issued.currency}"}
        )
        self._publish()

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

        await self._send_email("invoice", key=f"invoice:{invoice_id}:sent", attach_pdf_key=pdf.key)
        await self._settle(event="sent")

    # ------------------------------------------------------------------ timers

    def _amount_due(self) -> Decimal:
        if self._total is None:
            return Decimal(0)
        return max(self._total - self._amount_paid - self._credited, Decimal(0))

    def _next_deadline(self) -> datetime | None:
        if self._issued is None:
            return None
        candidates: list[datetime] = []
        if not self._past_due:
            candidates.append(self._issued.overdue_at)
        if self._holds:
            # Held: no reminder and no late fee is due, only the end of a hold that has a resume date.
            candidates += [h.resume_at for h in self._holds.values() if h.resume_at is not None]
        else:
            if self._next_step < len(self._issued.reminders):
                candidates.append(self._issued.reminders[self._next_step].send_at)
            if self._next_fee < len(self._issued.late_fee_at):
                candidates.append(self._issued.late_fee_at[self._next_fee])
        return min(candidates) if candidates else None

    async def _fire_due_steps(self) -> None:
        assert self._issued is not None
        now = workflow.now()
        if not self._past_due and now >= self._issued.overdue_at:
            self._past_due = True
            if self._status not in FINAL_STATUSES:
                await self._settle(event="due_date_passed")
        if self._holds:
            ended = [
                h.hold_id for h in self._holds.values() if h.resume_at is not None and h.resume_at <= now
            ]
            if ended and self._status not in FINAL_STATUSES:
                await self._end_holds(ended, actor="workflow", reason="resume_on")
            if self._holds:
                return  # still held: nothing goes out
        await self._charge_due_fees(now)
        steps = self._issued.reminders
        while self._next_step < len(steps) and steps[self._next_step].send_at <= now:
            step = steps[self._next_step]
            self._next_step += 1
            if self._status in FINAL_STATUSES:
                break
            if step.template:
                await self._send_policy_step(step)
                continue
            await self._send_email(
                step.kind,
                key=f"invoice:{self._input.invoice_id}:{step.kind}:{step.offset_days}",
                offset_days=step.offset_days,
            )

    async def _charge_due_fees(self, now: datetime) -> None:
        """The policy's late fee, once per planned assessment (the activity charges each sequence once
        and charges nothing when nothing is outstanding); before a reminder due at the same time, so
        the reminder states the new amount."""
        assert self._issued is not None
        fees = self._issued.late_fee_at
        while (
            self._next_fee < len(fees) and fees[self._next_fee] <= now and self._status not in FINAL_STATUSES
        ):
            workflow.patched(LATE_FEE_PATCH)
            self._next_fee += 1
            outcome = await workflow.execute_activity(
                ActivityName.APPLY_LATE_FEE,
                LateFeeRequest(
                    invoice_id=self._input.invoice_id, sequence=self._next_fee, past_due=self._past_due
                ),
                result_type=LateFeeOutcome,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary=f"Late fee {self._next_fee}",
            )
            if not outcome.applied:
                self._note("late_fee.skipped", outcome.detail)
                continue
            self._total = Decimal(outcome.total)
            self._note("late_fee.applied", f"{outcome.amount} {self._input.currency} (#{outcome.sequence})")
            status = InvoiceStatus(outcome.status)
            if status != self._status:
                self._status = status
                self._note(f"status.{status}", "late_fee")
            self._queue_sync(AccountingAction.INVOICE)  # the books get the fee line
            self._publish()

    async def _send_policy_step(self, step: ReminderPlanStep) -> None:
        """A dunning policy step: the client gets the step's template (with the hosted link); internal
        recipients get an internal notice (the escalation's own template), never the client's text."""
        invoice_id = self._input.invoice_id
        internal = [r for r in step.recipients if r != "client"]
        assert self._issued is not None
        # How late it really is when it goes out (a Saturday step sent on Monday is two days overdue).
        days = step.offset_days
        if step.local_date:
            days = (date.fromisoformat(step.local_date) - date.fromisoformat(self._issued.due_date)).days
        common = dict(offset_days=days, template=step.template, tone=step.tone, step_index=step.step_index)
        if "client" in step.recipients:
            await self._send_email(
                "reminder",
                key=reminder_email_key(invoice_id, step, "client"),
                audience="client",
                recipients=["client"],
                **common,  # type: ignore[arg-type]
            )
        if internal:
            await self._send_email(
                "escalation" if step.kind == "escalation" else "dunning_notice",
                key=reminder_email_key(invoice_id, step, "internal"),
                audience="internal",
                recipients=list(step.recipients),
                **common,  # type: ignore[arg-type]
            )

    # ------------------------------------------------------------------ dunning holds

    async def _end_holds(self, hold_ids: list[str], *, actor: str, reason: str) -> None:
        """Holds end (released, resume date reached, payment resolved). When the last one ends, the
        reminders they held back follow ``reminders_after_hold`` (the release activity decides)."""
        assert self._issued is not None
        ending = [i for i in hold_ids if i in self._holds]
        if not ending:
            return
        for hold_id in ending:
            del self._holds[hold_id]
            self._ended_holds.add(hold_id)
        held_from = self._held_since or workflow.now()
        still_held = bool(self._holds)
        plan = await workflow.execute_activity(
            ActivityName.RELEASE_DUNNING_HOLDS,
            ReleaseHoldsRequest(
                invoice_id=self._input.invoice_id,
                hold_ids=ending,
                held_from=held_from,
                held_until=workflow.now(),
                remaining=[] if still_held else list(self._issued.reminders[self._next_step :]),
                actor=actor,
                reason=reason,
            ),
            result_type=ReleasePlan,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary="Release dunning hold",
        )
        if still_held:
            self._note("dunning.hold_released", f"{', '.join(ending)} ({reason}); still held")
        else:
            self._issued.reminders = self._issued.reminders[: self._next_step] + plan.send
            self._held_since = None
            skipped = ", ".join(reminder_step_id(s) for s in plan.skipped)
            self._note("dunning.hold_released", f"{reason}; skipped: {skipped or 'none'}")
        self._wake = True

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
            workflow.patched(HOLDS_PATCH)
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
        if self._issued is None:
            raise ValueError("invoice is not issued yet; dunning holds apply to open invoices")
        if self._status in FINAL_STATUSES:
            raise ValueError(f"invoice is {self._status}; there is no dunning to hold")
        if hold.kind not in ("dispute", "payment"):
            raise ValueError(f"kind: 'dispute' or 'payment', got {hold.kind!r}")

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
        if request.hold_ids:
            if not any(i in self._holds for i in request.hold_ids):
                raise ValueError("no such active hold on this invoice")
        elif not any(h.kind == "dispute" and not h.customer_wide for h in self._holds.values()):
            raise ValueError(
                "this invoice has no dispute hold of its own (a customer-wide hold is released on the customer)"
            )

    # ------------------------------------------------------------------ side effects

    async def _send_email(
        self,
        kind: str,
        *,
        key: str,
        offset_days: int = 0,
        attach_pdf_key: str | None = None,
        to: list[str] | None = None,
        approval: ApprovalLinkSpec | None = None,
        comment: str = "",
        credit_note_id: str | None = None,
        template: str = "",
        tone: str = "",
        audience: str = "",
        recipients: list[str] | None = None,
        step_index: int | None = None,
    ) -> EmailResult:
        result = await workflow.execute_activity(
            ActivityName.SEND_EMAIL,
            EmailRequest(
                invoice_id=self._input.invoice_id,
                kind=kind,
                key=key,
                offset_days=offset_days,
                attach_pdf_key=attach_pdf_key,
                to=to,
                approval=approval,
                comment=comment,
                credit_note_id=credit_note_id,
                template=template,
                tone=tone,
                audience=audience,
                recipients=list(recipients or []),
                step_index=step_index,
            ),
            result_type=EmailResult,
            start_to_close_timeout=EMAIL_TIMEOUT,
            heartbeat_timeout=EMAIL_HEARTBEAT,
            retry_policy=SIDE_EFFECT_RETRY,
            summary=f"Email: {kind}",
        )
        self._note(f"email.{kind}", f"{result.status} {result.detail}".strip())
        return result

    async def _settle(self, *, event: str) -> None:
        """Recompute the status from money and time, persist it if it changed, publish it."""
        assert self._total is not None
        status = settle_status(
            total=self._total,
            amount_paid=self._amount_paid,
            past_due=self._past_due,
            amount_credited=self._credited,
        )
        if status != self._status:
            await self._persist_status(status, event=event)

    async def _persist_status(self, status: InvoiceStatus, *, event: str, actor: str = "workflow") -> None:
        await workflow.execute_activity(
            ActivityName.SET_STATUS,
            StatusChange(
                invoice_id=self._input.invoice_id,
                status=str(status),
                actor=actor,
                event=event,
                dedupe_key=f"invoice:{self._input.invoice_id}:status:{status}:{event}",
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._status = status
        self._note(f"status.{status}", event)
        self._publish()

    def _publish(self) -> None:
        """Search attributes for the Temporal UI: ids, status and amounts only, never names."""
        updates = [
            sa.INVOICE_STATUS.value_set(str(self._status)),
            sa.CUSTOMER_ID.value_set(self._input.customer_id),
            sa.CURRENCY.value_set(self._input.currency),
        ]
        if self._issued is not None:
            due = date.fromisoformat(self._issued.due_date)
            updates += [
                sa.INVOICE_NUMBER.value_set(self._issued.number),
                # Double for filtering and sorting in the UI; the exact amount lives in PostgreSQL.
                sa.AMOUNT_DUE.value_set(float(self._amount_due())),
                sa.DUE_DATE.value_set(datetime(due.year, due.month, due.day, tzinfo=UTC)),
            ]
        workflow.upsert_search_attributes(updates)

    def _note(self, kind: str, detail: str = "") -> None:
        self._timeline.append(TimelineEntry(at=workflow.now(), kind=kind, detail=detail))

    # ------------------------------------------------------------------ payments

    @workflow.update
    async def record_payment(self, payment: PaymentInput) -> PaymentOutcome:
        async with self._lock:
            # State may have moved while this update waited for the lock.
            if self._status in FINAL_STATUSES:
                raise ApplicationError(
                    f"invoice is {self._status}; it takes no more payments", type="InvoiceClosed"
                )
            assert self._issued is not None
            outcome = await workflow.execute_activity(
                ActivityName.APPLY_PAYMENT,
                ApplyPaymentRequest(
                    invoice_id=self._input.invoice_id,
                    payment=payment,
                    past_due=self._past_due,
                    received_at=payment.received_at or workflow.now(),
                ),
                result_type=PaymentOutcome,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
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
        if self._issued is None:
            raise ValueError("invoice is not issued yet; payments are accepted once it is open")
        if self._status in FINAL_STATUSES:
            raise ValueError(f"invoice is {self._status}; it takes no more payments")
        if not payment.idempotency_key:
            raise ValueError("payment.idempotency_key is required")
        try:
            amount = require_minor_units(
                parse_decimal(payment.amount, field="amount"), self._input.currency, field="amount"
            )
            if payment.currency is not None and normalize_currency(payment.currency) != self._input.currency:
                raise ValueError(
                    f"currency: payment is in {payment.currency}, the invoice in {self._input.currency}"
                )
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
        if amount <= 0:
            raise ValueError("amount: must be greater than 0")

    # ------------------------------------------------------------------ void / write-off

    @workflow.update
    async def void(self, request: VoidInput) -> InvoiceState:
        async with self._lock:
            if self._status in FINAL_STATUSES:
                raise ApplicationError(f"invoice is already {self._status}", type="InvoiceClosed")
            await self._close(InvoiceStatus.VOID, request.reason, request.actor)
        return self.state()

    @void.validator
    def _validate_void(self, request: VoidInput) -> None:
        if not request.reason.strip():
            raise ValueError("reason: say why the invoice is voided")
        if self._status in FINAL_STATUSES:
            raise ValueError(f"invoice is already {self._status}")
        if self._amount_paid > 0:
            raise ValueError(
                f"invoice has payments of {self._amount_paid} {self._input.currency}; "
                "refund them or issue a credit note instead of voiding"
            )
        if self._credited > 0:
            raise ValueError(
                f"invoice has credit notes for {self._credited} {self._input.currency}; "
                "credit the rest with a credit note instead of voiding"
            )

    @workflow.update
    async def mark_uncollectible(self, request: UncollectibleInput) -> InvoiceState:
        async with self._lock:
            if self._status not in OPEN_STATES:
                raise ApplicationError(f"invoice is {self._status}", type="InvoiceClosed")
            await self._close(InvoiceStatus.UNCOLLECTIBLE, request.reason, request.actor)
        return self.state()

    @mark_uncollectible.validator
    def _validate_uncollectible(self, request: UncollectibleInput) -> None:
        if self._status not in OPEN_STATES:
            raise ValueError(
                f"only an open, overdue or partially paid invoice can be written off; this one is {self._status}"
            )

    async def _close(self, status: InvoiceStatus, reason: str, actor: str) -> None:
        await workflow.execute_activity(
            ActivityName.CLOSE_INVOICE,
            CloseRequest(invoice_id=self._input.invoice_id, status=str(status), reason=reason, actor=actor),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._status = status
        self._note(f"status.{status}", reason)
        self._publish()
        if status == InvoiceStatus.VOID:
            self._queue_sync(AccountingAction.VOID)

    # ------------------------------------------------------------------ credit notes

    @workflow.update
    async def issue_credit_note(self, request: CreditNoteInput) -> CreditNoteOutcome:
        """Number and persist a credit note, reduce the amount due (settling the status: ``credited``
        when the whole total is credited, ``paid`` when the rest is paid), then render its PDF, email it
        to the client and queue its accounting sync. Duplicates (same key) change nothing."""
        workflow.patched(CREDIT_NOTES_PATCH)
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
        if self._issued is None or self._total is None:
            raise ValueError("invoice is not issued yet; credit notes are issued against issued invoices")
        if self._status not in OPEN_STATES:
            raise ValueError(
                f"invoice is {self._status}; credit notes are issued on open, overdue or partially paid invoices"
            )
        if not request.reason.strip():
            raise ValueError("reason: say why the invoice is credited")
        if not request.idempotency_key:
            raise ValueError("idempotency_key is required")
        if request.full == bool(request.lines):
            raise ValueError('give either "full": true or "lines", not both and not neither')
        try:
            amount = (
                self._total
                if request.full
                else compute_totals(parse_lines(request.lines), self._input.currency).total
            )
            check_credit_amount(
                amount,
                total=self._total,
                credited=self._credited,
                currency=self._input.currency,
                number=self._issued.number,
                full=request.full,
            )
        except (MoneyError, CreditRefused) as exc:
            raise ValueError(str(exc)) from None

    # ------------------------------------------------------------------ refunds

    @workflow.update
    async def record_refund(self, refund: RefundInput) -> RefundOutcome:
        """Money returned on an open invoice is owed again: the amount due rises and the status is
        settled again (e.g. partially paid → open). Refunds of closed invoices do not come here."""
        workflow.patched(REFUNDS_PATCH)
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
            status = InvoiceStatus(outcome.status)
            if status != self._status:
                self._status = status
                self._note(f"status.{status}", "refund")
            self._publish()
            return outcome

    @record_refund.validator
    def _validate_refund(self, refund: RefundInput) -> None:
        if self._issued is None or self._status not in OPEN_STATES:
            raise ValueError(
                f"invoice is {self._status}; only payments of an open invoice are refunded through it"
            )
        if not refund.idempotency_key:
            raise ValueError("idempotency_key is required")
        try:
            amount = require_minor_units(
                parse_decimal(refund.amount, field="amount"), self._input.currency, field="amount"
            )
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
        if amount <= 0:
            raise ValueError("amount: must be greater than 0")
        if amount > self._amount_paid:
            raise ValueError(
                f"amount: {amount} {self._input.currency} is more than the {self._amount_paid} paid on this invoice"
            )

    # ------------------------------------------------------------------ accounting sync

    def _queue_sync(
        self, action: str, payment_id: str | None = None, credit_note_id: str | None = None
    ) -> None:
        if self._sync_enabled:
            self._sync_queue.append(
                AccountingSyncRequest(
                    invoice_id=self._input.invoice_id,
                    action=action,
                    payment_id=payment_id,
                    credit_note_id=credit_note_id,
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

    @workflow.signal
    def retry_accounting(self) -> None:
        """An operator fixed what the accounting system refused (an account or tax code): try again."""
        self._sync_retry = True

    # ------------------------------------------------------------------ query

    @workflow.query
    def state(self) -> InvoiceState:
        next_at = None
        if self._issued is not None and self._status not in FINAL_STATUSES:
            next_at = self._next_deadline()
        return InvoiceState(
            invoice_id=self._input.invoice_id,
            status=str(self._status),
            number=self._issued.number if self._issued else None,
            currency=self._input.currency,
            total=str(self._total) if self._total is not None else None,
            amount_paid=str(self._amount_paid),
            amount_due=str(self._amount_due()) if self._total is not None else None,
            credit=str(self._credit),
            due_date=self._issued.due_date if self._issued else None,
            next_reminder_at=next_at,
            timeline=list(self._timeline),
            revision=self._revision,
            approval_rule=self._chain.rule if self._chain else None,
            approval_step=self._step + 1 if self._chain else None,
            approval_steps=len(self._chain.steps) if self._chain else None,
            awaiting_approvers=self._awaiting_approvers(),
            accounting_status=self._sync_status,
            accounting_error=self._sync_error,
            amount_credited=str(self._credited),
            holds=list(self._holds.values()),
            reminders=list(self._issued.reminders) if self._issued else [],
            reminders_sent=self._next_step,
        )

    def _awaiting_approvers(self) -> list[str]:
        if self._chain is None or self._status != InvoiceStatus.PENDING_APPROVAL:
            return []
        step = self._chain.steps[self._step]
        waiting = [a for a in step.approvers if a not in self._approvals]
        if self._escalated and step.delegate:
            waiting.append(step.delegate)
        return waiting


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
