"""Starting and feeding each organisation's BooksInboundWorkflow (worker start-up, dev stack, the
webhook inbox's dispatcher)."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from accounting.tokens import ConnectionProblem, resolve_tenant
from core.settings import Settings
from workflows.books import BooksEvent, BooksInboundInput, BooksInboundWorkflow, books_workflow_id


def books_input(settings: Settings, provider: str, tenant_id: str) -> BooksInboundInput:
    return BooksInboundInput(provider, tenant_id, poll_seconds=settings.accounting_poll_minutes * 60)


async def ensure_books_workflow(client: Client, settings: Settings) -> str | None:
    """Start the configured organisation's workflow unless it runs; None when no connection exists."""
    provider = settings.accounting_provider
    if provider == "none":
        return None
    try:
        tenant_id = await asyncio.to_thread(resolve_tenant, settings)
    except ConnectionProblem:
        return None
    workflow_id = books_workflow_id(provider, tenant_id)
    await client.start_workflow(
        BooksInboundWorkflow.run,
        books_input(settings, provider, tenant_id),
        id=workflow_id,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return workflow_id


async def hand_over(
    client: Client, settings: Settings, provider: str, tenant_id: str, event: BooksEvent
) -> None:
    """Signal-with-start: the organisation's workflow gets the event whether or not it is running."""
    await client.start_workflow(
        BooksInboundWorkflow.run,
        books_input(settings, provider, tenant_id),
        id=books_workflow_id(provider, tenant_id),
        task_queue=settings.task_queue,
        start_signal="books_event",
        start_signal_args=[event],
    )
