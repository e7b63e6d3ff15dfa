"""EstimateWorkflow: a quote waits for the client's answer until it expires.

It emails the client a signed link to the hosted estimate page, then waits for a decision (accept or
decline through the page, or an operator converting it) or for the end of its valid-until day. An
accepted estimate becomes an invoice with exactly its lines, discounts and tax, started as its own
InvoiceWorkflow (abandoned on close, with a deterministic id: accepting twice bills once). An estimate
created with a project plan becomes a project instead: its ProjectBillingWorkflow starts with the
acceptance as the signature, so the deposit is billed at once and the milestones wait for their events.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.invoice import start_invoice_child
    from workflows.payloads import (
        ActivityName,
        ConvertedEstimate,
        ConvertRequest,
        EmailRequest,
        EmailResult,
        EstimateDecisionInput,
        EstimateState,
        EstimateStatusChange,
        EstimateWorkflowInput,
        EventRecord,
        InvoiceWorkflowInput,
        ProjectTrigger,
        TriggerKind,
    )
    from workflows.project import start_project_child

DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["InvalidEstimate"],
)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["InvoiceNotFound"],
)


@workflow.defn(name="EstimateWorkflow")
class EstimateWorkflow:
    @workflow.init
    def __init__(self, input: EstimateWorkflowInput) -> None:
        self._input = input
        self._status = "draft"
        self._decision: EstimateDecisionInput | None = None
        self._invoice_id: str | None = None
        self._project_id: str | None = None

    @workflow.run
    async def run(self, input: EstimateWorkflowInput) -> EstimateState:
        await workflow.execute_activity(
            ActivityName.SEND_EMAIL,
            EmailRequest(
                invoice_id="",
                kind="estimate",
                key=f"estimate:{input.estimate_id}:sent",
                estimate_id=input.estimate_id,
            ),
            result_type=EmailResult,
            start_to_close_timeout=timedelta(minutes=1),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=SEND_RETRY,
        )
        if self._decision is None:  # a fast client may answer before this line
            await self._record("sent")
        remaining = input.expires_at - workflow.now()
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None, timeout=max(remaining, timedelta(0))
            )
        except TimeoutError:
            await self._record("expired", note="not answered before it expired")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state()

    async def _record(self, status: str, note: str = "") -> None:
        await workflow.execute_activity(
            ActivityName.RECORD_ESTIMATE_STATUS,
            EstimateStatusChange(estimate_id=self._input.estimate_id, status=status, note=note),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._status = status

    @workflow.update
    async def decide(self, decision: EstimateDecisionInput) -> EstimateState:
        self._decision = decision
        if decision.decision == "decline":
            await self._record("declined", note=decision.note)
            return self.state()
        converted = await workflow.execute_activity(
            ActivityName.CONVERT_ESTIMATE,
            ConvertRequest(estimate_id=self._input.estimate_id, actor=decision.actor, note=decision.note),
            result_type=ConvertedEstimate,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        if converted.project_id:
            # Only estimates created with a project plan reach this branch, and no estimate running on
            # older code has one, so recorded histories replay unchanged (tests/test_replay.py).
            await start_project_child(
                converted.project_id,
                ProjectTrigger(
                    event_key=f"estimate:{self._input.estimate_id}:accepted",
                    kind=TriggerKind.CONTRACT_SIGNED,
                    provider="estimate",
                    ref=self._input.estimate_id,
                    actor=decision.actor,
                ),
            )
            self._project_id, self._status = converted.project_id, "accepted"
            return self.state()
        await workflow.execute_activity(
            ActivityName.RECORD_EVENT,
            EventRecord(
                invoice_id=converted.invoice_id,
                kind="estimate.accepted",
                actor=decision.actor,
                data={
                    "via": decision.via,
                    "ip": decision.ip,
                    "user_agent": decision.user_agent,
                    "note": decision.note,
                },
                dedupe_key=f"estimate:{self._input.estimate_id}:accepted",
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        await start_invoice_child(
            InvoiceWorkflowInput(
                invoice_id=converted.invoice_id,
                customer_id=converted.customer_id,
                currency=converted.currency,
            )
        )
        self._invoice_id, self._status = converted.invoice_id, "accepted"
        return self.state()

    @decide.validator
    def _validate_decide(self, decision: EstimateDecisionInput) -> None:
        if self._status not in ("draft", "sent") or self._decision is not None:
            raise ValueError(f"estimate is {self._status}; it takes no more answers")
        if decision.decision not in ("accept", "decline"):
            raise ValueError("decision: 'accept' or 'decline'")

    @workflow.query
    def state(self) -> EstimateState:
        return EstimateState(
            estimate_id=self._input.estimate_id,
            status=self._status,
            invoice_id=self._invoice_id,
            project_id=self._project_id,
        )
