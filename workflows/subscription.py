"""SubscriptionWorkflow: one long-running workflow per subscription that bills each cycle exactly once.

Why a workflow rather than a Temporal Schedule:

- the calendar is ours (anchor day 31 clamping to the month's end, 29 February, the client's timezone
  and send time), computed by the same pure ``billing.recurrence`` function the API preview shows; a
  cron spec cannot say "the 31st, or the month's last day";
- the catch-up policy (bill all missed cycles, only the latest, or none) is decided per cycle after an
  outage or a pause, with the decision written to the history; a Schedule's catch-up window cannot
  express "only the latest";
- pause with a resume date, terms that change from the next cycle, cancel at period end are state
  that belongs next to the schedule, changed through Updates with validators;
- it runs on the time-skipping test server (which has no Schedules), so two simulated years are tested
  in seconds.

History is bounded by continue-as-new every ``CYCLES_PER_RUN`` billed cycles (or when the server
suggests it); the state crosses over in the input.

Each cycle's invoice has a deterministic id (subscription, cycle) both in PostgreSQL (unique) and as
the child InvoiceWorkflow id (``REJECT_DUPLICATE``), so no replay, retry or restart bills it twice. The
children are abandoned on close: an invoice lives on after its subscription ends.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from billing.errors import MoneyError
    from billing.recurrence import Cycle, cycle, decide_catch_up, due_cycles, local_date, local_midnight
    from billing.totals import compute_totals, parse_lines
    from workflows.invoice import start_invoice_child
    from workflows.payloads import (
        ActivityName,
        CancelInput,
        CycleInvoice,
        CycleInvoiceRequest,
        InvoiceWorkflowInput,
        PauseInput,
        SubscriptionEvent,
        SubscriptionState,
        SubscriptionWorkflowInput,
        TermsChange,
        TermsUpdateInput,
        recurrence_from_spec,
    )

CYCLES_PER_RUN = 12
DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["InvalidSubscription"],
)


@workflow.defn(name="SubscriptionWorkflow")
class SubscriptionWorkflow:
    @workflow.init
    def __init__(self, input: SubscriptionWorkflowInput) -> None:
        self._input = input
        self._rec = recurrence_from_spec(input.recurrence)
        self._next = input.next_cycle
        self._terms_version = input.terms_version
        self._paused = input.paused
        self._resume_on = input.resume_on
        self._end_at = input.end_at_cycle
        self._canceled = False
        self._ended = False
        self._dirty = False
        self._billed: list[int] = []
        self._skipped: list[int] = []
        self._events = 0
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, input: SubscriptionWorkflowInput) -> SubscriptionState:
        billed_this_run = 0
        while not self._canceled:
            if self._paused:
                await self._wait_while_paused()
                continue
            async with self._lock:
                billed_this_run += await self._bill_due_cycles()
            upcoming = cycle(self._rec, self._next)
            if self._end_at is not None and self._next >= self._end_at:
                # Cancelled at period end: the current period runs out at the next cycle date.
                await self._wait_until(upcoming.send_at if upcoming else None)
                if not self._canceled:  # a "cancel now" during the wait already recorded itself
                    self._canceled = True
                    await self._record("canceled", detail={"at": "period end"})
                break
            if upcoming is None:
                self._ended = True
                await self._record("ended")
                break
            if billed_this_run >= CYCLES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry_over())
            await self._wait_until(upcoming.send_at)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state()

    async def _wait_until(self, at: datetime | None) -> None:
        """Sleep until ``at`` unless an Update changes the plan first."""
        self._dirty = False
        if at is None:
            await workflow.wait_condition(lambda: self._dirty or self._canceled)
            return
        remaining = at - workflow.now()
        if remaining <= timedelta(0):
            return
        try:
            await workflow.wait_condition(lambda: self._dirty or self._canceled, timeout=remaining)
        except TimeoutError:
            pass

    async def _wait_while_paused(self) -> None:
        self._dirty = False
        timeout = None
        if self._resume_on is not None:
            resume_at = local_midnight(self._rec, date.fromisoformat(self._resume_on))
            timeout = max(resume_at - workflow.now(), timedelta(0))
        try:
            await workflow.wait_condition(
                lambda: not self._paused or self._canceled or self._dirty, timeout=timeout
            )
        except TimeoutError:
            async with self._lock:
                self._paused, self._resume_on = False, None
                await self._record("resumed", detail={"by": "resume date"})

    async def _bill_due_cycles(self) -> int:
        now = workflow.now()
        due = due_cycles(self._rec, from_index=self._next, now=now)
        if self._end_at is not None:
            due = [c for c in due if c.index < self._end_at]
        decision = decide_catch_up(due, self._input.catch_up, now=now)
        billed = 0
        for current in due:
            if current in decision.bill:
                await self._bill(current)
                billed += 1
            else:
                self._next = current.index + 1
                self._skipped.append(current.index)
                await self._record(
                    "cycle.skipped",
                    cycle=current.index,
                    detail={
                        "period": current.date.isoformat(),
                        "reason": f"missed; catch_up={self._input.catch_up}",
                    },
                )
        return billed

    async def _bill(self, current: Cycle) -> None:
        made = await workflow.execute_activity(
            ActivityName.CREATE_CYCLE_INVOICE,
            CycleInvoiceRequest(
                subscription_id=self._input.subscription_id,
                cycle=current.index,
                period_date=current.date.isoformat(),
            ),
            result_type=CycleInvoice,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"Invoice for cycle {current.index} ({current.date.isoformat()})",
        )
        await start_invoice_child(
            InvoiceWorkflowInput(
                invoice_id=made.invoice_id,
                customer_id=made.customer_id,
                currency=made.currency,
                requires_approval=made.requires_approval,
            )
        )
        self._next = current.index + 1
        self._billed.append(current.index)
        await self._record(
            "cycle.billed",
            cycle=current.index,
            detail={"period": current.date.isoformat(), "invoice_id": made.invoice_id, "total": made.total},
        )

    async def _record(
        self, kind: str, *, cycle: int | None = None, detail: dict[str, str] | None = None
    ) -> None:
        self._events += 1
        key_part = f"cycle:{cycle}" if cycle is not None else f"{workflow.info().run_id}:{self._events}"
        await workflow.execute_activity(
            ActivityName.RECORD_SUBSCRIPTION_EVENT,
            SubscriptionEvent(
                subscription_id=self._input.subscription_id,
                kind=kind,
                status=self._status(),
                next_cycle=self._next,
                cycle=cycle,
                detail=detail or {},
                paused_until=self._resume_on,
                dedupe_key=f"subscription:{self._input.subscription_id}:{kind}:{key_part}",
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )

    def _carry_over(self) -> SubscriptionWorkflowInput:
        return SubscriptionWorkflowInput(
            subscription_id=self._input.subscription_id,
            customer_id=self._input.customer_id,
            currency=self._input.currency,
            recurrence=self._input.recurrence,
            catch_up=self._input.catch_up,
            next_cycle=self._next,
            terms_version=self._terms_version,
            paused=self._paused,
            resume_on=self._resume_on,
            end_at_cycle=self._end_at,
        )

    def _status(self) -> str:
        if self._canceled:
            return "canceled"
        if self._ended:
            return "ended"
        if self._end_at is not None:
            return "canceling"
        return "paused" if self._paused else "active"

    def _today(self) -> date:
        return local_date(self._rec, workflow.now())

    # ------------------------------------------------------------------ operator updates

    @workflow.update
    async def pause(self, request: PauseInput) -> SubscriptionState:
        async with self._lock:
            self._paused, self._resume_on, self._dirty = True, request.resume_on, True
            await self._record("paused", detail={"resume_on": request.resume_on or ""})
        return self.state()

    @pause.validator
    def _validate_pause(self, request: PauseInput) -> None:
        if self._status() != "active":
            raise ValueError(f"subscription is {self._status()}; only an active subscription can be paused")
        if request.resume_on is not None:
            try:
                resume_on = date.fromisoformat(request.resume_on)
            except ValueError:
                raise ValueError(f"resume_on: {request.resume_on!r} is not a date (YYYY-MM-DD)") from None
            if resume_on <= self._today():
                raise ValueError("resume_on: must be in the future")

    @workflow.update
    async def resume(self) -> SubscriptionState:
        async with self._lock:
            self._paused, self._resume_on, self._dirty = False, None, True
            await self._record("resumed", detail={"by": "operator"})
        return self.state()

    @resume.validator
    def _validate_resume(self) -> None:
        if not self._paused or self._canceled:
            raise ValueError(f"subscription is {self._status()}; only a paused subscription can be resumed")

    @workflow.update
    async def update_terms(self, request: TermsUpdateInput) -> SubscriptionState:
        async with self._lock:
            version = self._terms_version + 1
            await workflow.execute_activity(
                ActivityName.ADD_SUBSCRIPTION_TERMS,
                TermsChange(
                    subscription_id=self._input.subscription_id,
                    version=version,
                    effective_from_cycle=self._next,
                    lines=request.lines,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            self._terms_version = version
            await self._record(
                "terms.updated", detail={"version": str(version), "from_cycle": str(self._next)}
            )
        return self.state()

    @update_terms.validator
    def _validate_terms(self, request: TermsUpdateInput) -> None:
        if self._status() in ("canceled", "ended", "canceling"):
            raise ValueError(f"subscription is {self._status()}; its terms can no longer change")
        try:
            compute_totals(parse_lines(request.lines), self._input.currency)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None

    @workflow.update
    async def cancel(self, request: CancelInput) -> SubscriptionState:
        async with self._lock:
            if request.at_period_end:
                self._end_at = self._next
                await self._record("canceling", detail={"last_cycle": str(self._next - 1)})
            else:
                self._canceled = True
                await self._record("canceled", detail={"at": "now"})
            self._dirty = True
        return self.state()

    @cancel.validator
    def _validate_cancel(self, request: CancelInput) -> None:
        if self._status() in ("canceled", "ended"):
            raise ValueError(f"subscription is already {self._status()}")
        if request.at_period_end and self._end_at is not None:
            raise ValueError("subscription is already canceling at period end")

    # ------------------------------------------------------------------ query

    @workflow.query
    def state(self) -> SubscriptionState:
        return SubscriptionState(
            subscription_id=self._input.subscription_id,
            status=self._status(),
            next_cycle=self._next,
            terms_version=self._terms_version,
            resume_on=self._resume_on,
            billed_cycles=list(self._billed),
            skipped_cycles=list(self._skipped),
        )
