"""The dunning clock: the due date, reminder steps, late fees and holds, as deadlines the main loop waits for.
Where a reminder is scheduled: ``DunningClock._next_deadline`` picks the next instant, ``_fire_due_steps``
sends what is due.

An open invoice waits days between deadlines and is evicted from the worker's cache meanwhile, so each
wake replays its run's history. Before a long wait, ``_park`` continues as new (same workflow id, the
state in ``ParkedInvoice``): the run that wakes holds a few events instead of the whole issue.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from billing.status import FINAL_STATUSES, InvoiceStatus
    from workflows.payloads import (
        AccountingAction,
        ActivityName,
        HoldSpec,
        LateFeeOutcome,
        LateFeeRequest,
        ParkedInvoice,
        ReleaseHoldsRequest,
        ReleaseInput,
        ReleasePlan,
        ReminderPlanStep,
        reminder_email_key,
        reminder_step_id,
    )

from workflows.invoice.base import InvoiceBase
from workflows.invoice.options import (
    DB_RETRY,
    DB_TIMEOUT,
    LATE_FEE_PATCH,
    PARK_AFTER_EVENTS,
    PARK_MIN_WAIT,
    PARK_PATCH,
)


class DunningClock(InvoiceBase):
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

    # ------------------------------------------------------------------ parking (continue-as-new)

    async def _park(self, deadline: datetime | None) -> None:
        """Before a long wait on the clock, continue as new once nothing is in flight (no handler, no
        books sync queued or waiting for an operator): returns when the run goes on waiting instead
        (a short wait or history, a handler or hold change, the deadline reached first)."""
        if (
            self._issued is None
            or self._status in FINAL_STATUSES
            or workflow.info().get_current_history_length() < PARK_AFTER_EVENTS
            or (deadline is not None and deadline - workflow.now() < PARK_MIN_WAIT)
            or not workflow.patched(PARK_PATCH)
        ):
            return
        if not self._idle():
            try:
                await workflow.wait_condition(
                    lambda: self._idle() or self._status in FINAL_STATUSES or self._wake,
                    timeout=None if deadline is None else deadline - workflow.now(),
                )
            except TimeoutError:
                return  # e.g. a books sync waiting for an operator: the deadline comes first
            if not self._idle() or self._status in FINAL_STATUSES or self._wake:
                return
        workflow.continue_as_new(dataclasses.replace(self._input, parked=self._parked_state()))

    def _idle(self) -> bool:
        return not self._sync_queue and not self._lock.locked() and workflow.all_handlers_finished()

    def _parked_state(self) -> ParkedInvoice:
        assert self._issued is not None and self._total is not None
        return ParkedInvoice(
            status=str(self._status),
            issued=self._issued,
            total=str(self._total),
            amount_paid=str(self._amount_paid),
            credit=str(self._credit),
            credited=str(self._credited),
            past_due=self._past_due,
            next_step=self._next_step,
            next_fee=self._next_fee,
            pdf_key=self._pdf_key,
            timeline=list(self._timeline),
            sync_enabled=self._sync_enabled,
            sync_status=self._sync_status,
            sync_error=self._sync_error,
            holds=list(self._holds.values()),
            ended_holds=sorted(self._ended_holds),
            held_since=self._held_since,
            approved=self._approved,
            revision=self._revision,
            chain=self._chain,
            step=self._step,
            approvals=sorted(self._approvals),
            rejection=list(self._rejection) if self._rejection else None,
            escalated=self._escalated,
            einvoice_errors=list(self._einvoice_errors),
            sent_attach=self._sent_attach,
            resends=sorted(self._resends),
        )

    def _unpark(self, parked: ParkedInvoice) -> None:
        """The state a parked invoice carried over (``InvoiceWorkflow.__init__`` of the run it started)."""
        self._status = InvoiceStatus(parked.status)
        self._issued = parked.issued
        self._total = Decimal(parked.total)
        self._amount_paid = Decimal(parked.amount_paid)
        self._credit = Decimal(parked.credit)
        self._credited = Decimal(parked.credited)
        self._past_due = parked.past_due
        self._next_step = parked.next_step
        self._next_fee = parked.next_fee
        self._pdf_key = parked.pdf_key
        self._timeline = list(parked.timeline)
        self._sync_enabled = parked.sync_enabled
        self._sync_status = parked.sync_status
        self._sync_error = parked.sync_error
        self._holds = {h.hold_id: h for h in parked.holds}
        self._ended_holds = set(parked.ended_holds)
        self._held_since = parked.held_since
        self._approved = parked.approved
        self._revision = parked.revision
        self._chain = parked.chain
        self._step = parked.step
        self._approvals = set(parked.approvals)
        self._rejection = (parked.rejection[0], parked.rejection[1]) if parked.rejection else None
        self._escalated = parked.escalated
        self._einvoice_errors = list(parked.einvoice_errors)
        self._sent_attach = parked.sent_attach
        self._resends = set(parked.resends)

    # ------------------------------------------------------------------ what the handlers accept

    def _check_hold(self, hold: HoldSpec) -> None:
        if self._issued is None:
            raise ValueError("invoice is not issued yet; dunning holds apply to open invoices")
        if self._status in FINAL_STATUSES:
            raise ValueError(f"invoice is {self._status}; there is no dunning to hold")
        if hold.kind not in ("dispute", "payment"):
            raise ValueError(f"kind: 'dispute' or 'payment', got {hold.kind!r}")

    def _check_release(self, request: ReleaseInput) -> None:
        if request.hold_ids:
            if not any(i in self._holds for i in request.hold_ids):
                raise ValueError("no such active hold on this invoice")
        elif not any(h.kind == "dispute" and not h.customer_wide for h in self._holds.values()):
            raise ValueError(
                "this invoice has no dispute hold of its own (a customer-wide hold is released on the "
                "customer)"
            )
