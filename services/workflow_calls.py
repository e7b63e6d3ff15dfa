"""Talking to a running invoice workflow: Updates, signals, and what their refusals mean.

A refused Update (the workflow's validator said no) or a workflow that has finished is a ``Conflict``
carrying the workflow's own reason; Temporal out of reach is ``Unavailable``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from services.errors import Conflict, Unavailable
from workflows.payloads import InvoiceState

FINISHED = "the invoice's workflow has finished; it takes no more changes"
#: How long a page waits for an invoice workflow's state before saying "try again".
STATE_TIMEOUT = timedelta(seconds=5)


def refusal(exc: Exception) -> Exception:
    """The domain error for a failed Update or signal (anything else is returned unchanged)."""
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        return Conflict(getattr(cause, "message", None) or str(cause))
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Conflict(FINISHED)
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return Unavailable(f"Temporal is unavailable: {exc.message}")
    return exc


async def run_update(
    temporal: Client, workflow_id: str, update: Any, arg: Any = None, *, update_id: str | None = None
) -> Any:
    """Send a workflow Update and return its result; a refusal becomes a ``Conflict``. The same
    ``update_id`` again gets the first one's outcome from Temporal instead of running it twice."""
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        if arg is None:
            return await handle.execute_update(update, id=update_id)
        return await handle.execute_update(update, arg, id=update_id)
    except (WorkflowUpdateFailedError, RPCError) as exc:
        raise refusal(exc) from exc


async def send_signal(temporal: Client, workflow_id: str, signal: Any, arg: Any = None) -> None:
    """Signal a workflow; a finished one is a ``Conflict``."""
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        await (handle.signal(signal) if arg is None else handle.signal(signal, arg))
    except RPCError as exc:
        raise refusal(exc) from exc


async def invoice_state(temporal: Client, workflow_id: str) -> InvoiceState | None:
    """The invoice workflow's state; None when Temporal knows no such workflow. Any other failure (a
    timeout under load, no worker polling) is ``Unavailable``: it says nothing about the invoice, so a
    page must not read it as "nothing to decide"."""
    from workflows.invoice import InvoiceWorkflow

    try:
        return await temporal.get_workflow_handle(workflow_id).query(
            InvoiceWorkflow.state, rpc_timeout=STATE_TIMEOUT
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise Unavailable(f"Temporal did not answer: {exc.message}") from exc
