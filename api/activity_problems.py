"""Failing steps of an invoice's workflow, shown where operators look: ``GET /invoices/{id}``.

Side-effect and database activities retry without limit (an outage must stall an invoice, never drop
it), so a failure that will not heal by itself (a bug, data the code cannot handle) used to be visible
only as a pending activity in the Temporal UI while the API still said ``draft``. Temporal keeps the
last failure and the attempt count of every pending activity (``DescribeWorkflowExecution``); this
module reads them, so every failing step surfaces with its error, attempt count and a retry action,
whichever activity it is and without any change to the workflow.

The retry action asks Temporal to reset the failing activities (``ResetActivity``): the next attempt
runs at once instead of after its backoff (up to ten minutes), which is what an operator wants after
fixing the cause. Nothing is re-run that succeeded: only pending activities are reset.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.api.workflowservice.v1 import ResetActivityRequest
from temporalio.client import Client
from temporalio.service import RPCError

DESCRIBE_TIMEOUT_S = 2.0
# One failed attempt can be a blip (a deploy, a lock timeout); from the second on it is worth showing.
MIN_ATTEMPTS = 2


@dataclass(frozen=True)
class ActivityProblem:
    """A pending activity that has failed ``attempt - 1`` times, the last time with ``error``."""

    activity: str
    activity_id: str
    attempt: int
    error: str
    error_type: str
    last_failed_at: datetime | None
    next_attempt_at: datetime | None


async def failing_activities(temporal: Client, workflow_id: str) -> list[ActivityProblem]:
    """The workflow's failing pending activities; empty when none fail or Temporal does not answer."""
    try:
        description = await asyncio.wait_for(
            temporal.get_workflow_handle(workflow_id).describe(), timeout=DESCRIBE_TIMEOUT_S
        )
    except (RPCError, TimeoutError):
        return []  # the invoice still shows; the problems come back with Temporal
    problems = []
    for pending in description.raw_description.pending_activities:
        if pending.attempt < MIN_ATTEMPTS or not pending.HasField("last_failure"):
            continue
        failure = pending.last_failure
        kind = failure.application_failure_info.type if failure.HasField("application_failure_info") else ""
        problems.append(
            ActivityProblem(
                activity=pending.activity_type.name,
                activity_id=pending.activity_id,
                attempt=pending.attempt,
                error=failure.message,
                error_type=kind,
                last_failed_at=pending.last_attempt_complete_time.ToDatetime(tzinfo=UTC)
                if pending.HasField("last_attempt_complete_time")
                else None,
                next_attempt_at=pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
                if pending.HasField("next_attempt_schedule_time")
                else None,
            )
        )
    return problems


async def retry_now(temporal: Client, workflow_id: str) -> list[ActivityProblem]:
    """Reset every failing pending activity so it runs again at once; returns the ones reset."""
    from temporalio.api.common.v1 import WorkflowExecution

    problems = await failing_activities(temporal, workflow_id)
    for problem in problems:
        await temporal.workflow_service.reset_activity(
            ResetActivityRequest(
                namespace=temporal.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id),
                id=problem.activity_id,
                identity="invoiceflow-api",
            )
        )
    return problems
