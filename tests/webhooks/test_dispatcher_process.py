"""`invoiceflow dispatcher`: the inbox's hand-over in processes of their own (INVOICEFLOW_DISPATCHER_IN_API
false), against the real Temporal dev server and PostgreSQL. The API then only records and routes; a
receiver's NOTIFY wakes the dispatcher at commit; two dispatcher processes hand each event over once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable

from temporalio.api.enums.v1 import EventType

from api.webhooks import dispatcher_process
from persistence.db import session_scope
from persistence.models import WebhookEvent
from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, eventually
from tests.webhooks.test_receivers import PUBLIC_URL, SECRETS, new_project, settled
from worker import build_worker


def _statuses(url: str, ids: list[str]) -> dict[str, str]:
    with session_scope(url) as session:
        rows = session.query(WebhookEvent).filter(WebhookEvent.id.in_([uuid.UUID(i) for i in ids]))
        return {str(row.id): row.status for row in rows}


def _all(url: str, ids: list[str], status: str) -> Callable[[], Awaitable[bool | None]]:
    async def probe() -> bool | None:
        return set(_statuses(url, ids).values()) == {status} or None

    return probe


def _milestones(n: int) -> list[dict[str, str]]:
    return [{"key": f"m{i}", "name": f"Step {i}", "amount": "100.00"} for i in range(n)]


async def test_the_api_only_records_and_a_notify_wakes_the_dispatcher(  # type: ignore[no-untyped-def]
    temporal_env, make_settings
) -> None:
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, dispatcher_in_api=False, **SECRETS)
    url = settings.require_database_url()
    secret = SECRETS["generic_webhook_secret"]
    async with build_worker(client, settings), api_client(settings, client) as live:
        pid = (await new_project(live, milestones=_milestones(2)))["id"]
        first = await send(
            live,
            send_as.generic_event(
                f"a-{uuid.uuid4()}", "milestone.completed", secret, project_id=pid, milestone_key="m0"
            ),
        )
        [event] = first.json()["events"]
        assert first.status_code == 200 and event["status"] == "accepted"
        await asyncio.sleep(1.5)  # the API's own dispatcher would have handed it over by now
        assert _statuses(url, [event["event"]]) == {event["event"]: "received"}

        stop = asyncio.Event()
        # No sweep within the test: after the start-up pass only a NOTIFY can wake this dispatcher.
        task = asyncio.create_task(dispatcher_process.run(settings, stop, sweep_s=3600))
        try:
            await eventually(
                _all(url, [event["event"]], "dispatched"),
                what="the start-up pass hands the waiting event over",
            )
            second = await send(
                live,
                send_as.generic_event(
                    f"b-{uuid.uuid4()}", "milestone.completed", secret, project_id=pid, milestone_key="m1"
                ),
            )
            [later] = second.json()["events"]
            await eventually(
                _all(url, [later["event"]], "dispatched"),
                what="the NOTIFY at commit wakes the dispatcher",
            )
            await settled(live, pid, invoices=2)
        finally:
            stop.set()
            await task


async def test_two_dispatcher_processes_hand_each_event_over_once(  # type: ignore[no-untyped-def]
    temporal_env, make_settings
) -> None:
    """Each project's workflow is signalled exactly once per event (its history counts the signals),
    with two dispatcher processes racing for the rows; SIGTERM ends each cleanly."""
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, dispatcher_in_api=False, **SECRETS)
    url = settings.require_database_url()
    secret = SECRETS["generic_webhook_secret"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")} | {
        "INVOICEFLOW_DATABASE_URL": url,
        "INVOICEFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "INVOICEFLOW_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "INVOICEFLOW_TASK_QUEUE": settings.task_queue,
    }
    command = [sys.executable, "-m", "invoiceflow.cli", "dispatcher"]
    processes = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        async with build_worker(client, settings), api_client(settings, client) as live:
            projects = [(await new_project(live, milestones=_milestones(4)))["id"] for _ in range(3)]
            sent = [
                send(
                    live,
                    send_as.generic_event(
                        f"e-{uuid.uuid4()}",
                        "milestone.completed",
                        secret,
                        project_id=pid,
                        milestone_key=f"m{i}",
                    ),
                )
                for i in range(4)
                for pid in projects
            ]
            answers = await asyncio.gather(*sent)
            ids = [r.json()["events"][0]["event"] for r in answers]
            assert all(r.status_code == 200 for r in answers)
            await eventually(
                _all(url, ids, "dispatched"),
                what="every event handed over",
                timeout=60,
            )
            for pid in projects:
                await settled(live, pid, invoices=4)
                history = await client.get_workflow_handle(f"project-{pid}").fetch_history()
                signals = [
                    e
                    for e in history.events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
                ]
                assert len(signals) == 4, f"project {pid}: {len(signals)} hand-overs of 4 events"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in processes]
        logs = [process.stderr.read() if process.stderr else "" for process in processes]
    assert codes == [0, 0], logs
