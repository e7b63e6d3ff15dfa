"""Helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from pypdf import PdfReader
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from api.main import create_app
from core.settings import Settings
from invoiceflow.mailbox import StoredMessage

T = TypeVar("T")


@asynccontextmanager
async def api_client(settings: Settings, temporal: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The API in this process, with its lifespan (so the webhook inbox dispatcher runs, as in uvicorn)."""
    app = create_app(settings, temporal)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://invoiceflow.test",
            headers={"Authorization": f"Bearer {settings.api_token}"},
        ) as client,
    ):
        yield client


def customer_body(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    body: dict[str, Any] = {
        "name": f"Globex {tag}",
        "emails": [f"ap-{tag}@client.example.com"],
        "currency": "USD",
        "timezone": "UTC",
        "payment_terms": "net_14",
        "owner_email": f"owner-{tag}@firm.example.com",
        "tags": ["enterprise"],
    }
    body.update(overrides)
    return body


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll an async probe until it returns something truthy (visibility and projections lag a little)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


_BUSY_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
}


async def settled_query(handle: WorkflowHandle[Any, Any], query: Any, *, timeout: float = 30.0) -> Any:
    """A query asked once the workflow's latest run is quiet: no workflow task in flight and no activity
    pending. On the time-skipping test server a query that arrives while a task is in flight is queued
    behind it, and when that task continues the workflow as new the query is never answered and holds
    time skipping locked, so every later ``env.sleep`` hangs. Tests there hold time still between sleeps,
    so a run found quiet stays quiet until the query is answered."""

    async def quiet() -> bool:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return description.status is not None  # ended: queries are answered from its history
        if description.raw_description.pending_activities:
            return False
        last = None
        async for event in handle.fetch_history_events():
            last = event
        return last is not None and last.event_type not in _BUSY_EVENTS

    await eventually(quiet, timeout=timeout, what=f"workflow {handle.id} quiet")
    return await handle.query(query)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)


def to(address: str) -> Callable[[StoredMessage], bool]:
    return lambda m: address in m.rcpt_tos


def kind_of(message: StoredMessage) -> str:
    key = message.header("X-Invoiceflow-Key") or ""
    return key.split(":")[2] if key.count(":") >= 2 else ""


HISTORIES = __import__("pathlib").Path(__file__).parent / "histories"


async def record_history(handle, name: str) -> None:  # type: ignore[no-untyped-def]
    """With INVOICEFLOW_RECORD_HISTORIES=1, keep this run's history for the replay test.

    Record a new history whenever the workflow gains a code path worth guarding; never edit or delete
    old ones: they stand for invoices running in production on older code."""
    import os

    if os.environ.get("INVOICEFLOW_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())


async def every_run(client: Client, workflow_id: str) -> list[Any]:
    """The history of each run of a workflow, first run first: a parked invoice continues as new
    (``DunningClock._park``), so the latest run alone no longer holds its issue and first syncs."""
    runs: list[Any] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.insert(0, history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return runs


async def wait_mail(mailbox, count: int = 1, *, where=None, timeout: float = 30.0) -> list[StoredMessage]:  # type: ignore[no-untyped-def]
    """Like ``MailStore.wait_for`` but yields to the event loop: the in-process worker that sends the
    mail runs on the same loop, so a blocking wait would starve it."""

    async def found():  # type: ignore[no-untyped-def]
        messages = [m for m in mailbox.store.list() if where is None or where(m)]
        return messages if len(messages) >= count else None

    return await eventually(found, timeout=timeout, what=f"{count} email(s)")
