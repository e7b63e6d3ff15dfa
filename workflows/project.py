"""ProjectBillingWorkflow: one per project, it turns business events into invoices.

Webhook receivers (deal won, contract signed, milestone done) and operators signal-with-start it with a
`ProjectTrigger`. It handles triggers one at a time: an activity decides and records what the event
bills (deposit, milestones) in one transaction, and each invoice starts as its own InvoiceWorkflow child
(abandoned on close, id derived from the invoice id). So a project's billing history is one place in
the Temporal UI, and duplicates collapse twice over: the workflow skips an event key it has seen, and
the activity bills each deposit and milestone once whatever it is told.

A won deal that no project knows starts this workflow with a `DealSource`: its first step fetches the
deal (and its line items) from the CRM and builds the project from the configured default plan.

A time & materials project that bills on a calendar (``bill_every``) also has a durable timer here: at
each period end (00:00 in the client's timezone, `billing.time_materials`) the workflow queues a
``tm_period`` trigger keyed by the period, so a period is billed once even across continue-as-new.
Behind the ``project-tm-timer-v1`` patch: histories recorded before it replay without the timer.

A ``start_on: deposit_paid`` project has no period timer until its deposit is paid: the schedule says
``started=False`` and the billing outcome of the deposit's payment says ``started``, from which moment
the first period is counted. Emails a billing decision asks for (the account owner told the deposit is
paid, a change order's approvers asked) are sent by an activity, one per outbox key, behind the
``project-emails-v1`` patch.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from billing.time_materials import boundary_instant, first_period_end, period_end
    from workflows.invoice import start_invoice_child
    from workflows.payloads import (
        ActivityName,
        BillOutcome,
        BillTriggerRequest,
        ProjectEmail,
        ProjectFromDealRequest,
        ProjectReady,
        ProjectState,
        ProjectTrigger,
        ProjectWorkflowInput,
        TmSchedule,
        TriggerKind,
        project_workflow_id,
    )

DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["ProjectNotFound"],
)
# A CRM outage or a bad token must not lose a won deal: retry for as long as it takes, at most every 10 min.
CRM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["CrmNotFound"],
)
MAX_OUTCOMES = 50
MAX_SEEN = 2000
TM_TIMER_PATCH = "project-tm-timer-v1"
PROJECT_EMAIL_PATCH = "project-emails-v1"
EMAIL_TIMEOUT = timedelta(minutes=2)
EMAIL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10))


@workflow.defn(name="ProjectBillingWorkflow")
class ProjectBillingWorkflow:
    @workflow.init
    def __init__(self, input: ProjectWorkflowInput) -> None:
        self._input = input
        self._seen: list[str] = list(input.seen)
        self._queue: list[ProjectTrigger] = list(input.initial)
        self._outcomes: list[str] = []
        self._status = "active"
        self._processed = 0
        self._schedule: TmSchedule | None = None
        self._next_period: str | None = input.tm_next_period

    @workflow.run
    async def run(self, input: ProjectWorkflowInput) -> ProjectState:
        if input.deal is not None:
            ready = await workflow.execute_activity(
                ActivityName.CREATE_PROJECT_FROM_DEAL,
                ProjectFromDealRequest(project_id=input.project_id, deal=input.deal),
                result_type=ProjectReady,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=CRM_RETRY,
            )
            if not ready.created:
                self._status = "not_created"
                self._outcomes.append(ready.detail)
                return self.state()
        if workflow.patched(TM_TIMER_PATCH):
            self._schedule = await workflow.execute_activity(
                ActivityName.LOAD_TM_SCHEDULE,
                input.project_id,
                result_type=TmSchedule,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
        while self._status == "active":
            await self._wait_for_trigger()
            trigger = self._queue.pop(0)
            outcome = await workflow.execute_activity(
                ActivityName.BILL_PROJECT_TRIGGER,
                BillTriggerRequest(project_id=input.project_id, trigger=trigger),
                result_type=BillOutcome,
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            for invoice in outcome.invoices:
                await start_invoice_child(invoice)
            if outcome.started and self._schedule is not None:
                self._schedule.started = True  # the deposit is paid: the T&M calendar starts now
            if outcome.emails and workflow.patched(PROJECT_EMAIL_PATCH):
                for email in outcome.emails:
                    await self._send(email)
            self._seen = (self._seen + [trigger.event_key])[-MAX_SEEN:]
            self._processed += 1
            self._outcomes = (
                self._outcomes + [f"{trigger.event_key}: {outcome.outcome} {outcome.detail}".strip()]
            )[-MAX_OUTCOMES:]
            if outcome.project_done:
                self._status = "completed"
            elif not self._queue and workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    ProjectWorkflowInput(
                        project_id=input.project_id, seen=self._seen, tm_next_period=self._next_period
                    )
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state()

    async def _wait_for_trigger(self) -> None:
        """Until a trigger is queued; on a T&M calendar, the period's end queues its own."""
        schedule = self._schedule
        if schedule is None or schedule.bill_every is None or not schedule.started:
            await workflow.wait_condition(lambda: bool(self._queue))
            return
        if self._next_period is None:
            self._next_period = first_period_end(
                schedule.bill_every, workflow.now(), schedule.timezone
            ).isoformat()
        end = date.fromisoformat(self._next_period)
        wait = boundary_instant(end, schedule.timezone) - workflow.now()
        if wait > timedelta(0):
            try:
                await workflow.wait_condition(lambda: bool(self._queue), timeout=wait)
                return
            except TimeoutError:
                pass
        key = f"tm-period:{self._next_period}"
        self._next_period = period_end(schedule.bill_every, end).isoformat()
        if key not in self._seen:
            self._queue.append(
                ProjectTrigger(
                    event_key=key,
                    kind=TriggerKind.TM_PERIOD,
                    provider="calendar",
                    ref=end.isoformat(),
                    actor="calendar",
                )
            )

    async def _send(self, email: ProjectEmail) -> None:
        await workflow.execute_activity(
            ActivityName.SEND_PROJECT_EMAIL,
            email,
            start_to_close_timeout=EMAIL_TIMEOUT,
            retry_policy=EMAIL_RETRY,
            summary=f"Email {email.kind}",
        )

    @workflow.signal
    def trigger(self, trigger: ProjectTrigger) -> None:
        if trigger.event_key in self._seen or any(q.event_key == trigger.event_key for q in self._queue):
            return
        self._queue.append(trigger)

    @workflow.query
    def state(self) -> ProjectState:
        return ProjectState(
            project_id=self._input.project_id,
            status=self._status,
            processed=self._processed,
            pending_triggers=len(self._queue),
            outcomes=list(self._outcomes),
        )


async def start_project_child(project_id: str, trigger: ProjectTrigger) -> None:
    """Start a project's workflow from another workflow (an accepted estimate), abandoned on close; its
    id derives from the project, so a second start is a no-op."""
    try:
        await workflow.start_child_workflow(
            ProjectBillingWorkflow.run,
            ProjectWorkflowInput(project_id=project_id, initial=[trigger]),
            id=project_workflow_id(project_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
