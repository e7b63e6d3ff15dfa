"""A parked invoice continues as new (``DunningClock._park``): the run that wakes for a reminder holds a few
events, not the whole issue, and everything the invoice answers still works on it: the state query with its
whole timeline, a payment Update, the reminder (sent once), the receipt and the result. Time-skipping server,
real activities, PostgreSQL and SMTP.

A plain invoice's first wait comes before ``PARK_AFTER_EVENTS`` (there is little to save), so the policy
sends a friendly reminder three days before the due date: the run that sent it is long enough to park."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.support import (
    api_client,
    eventually,
    every_run,
    kind_of,
    record_history,
    settled_query,
    to,
    wait_mail,
)
from tests.test_dunning_timers import local, open_invoice, setup, sleep_until
from worker import build_worker
from workflows.invoice import InvoiceWorkflow
from workflows.invoice.options import PARK_AFTER_EVENTS


async def runs_of(client: Client, workflow_id: str) -> list[list[EventType.ValueType]]:
    """Event types of each run of the workflow, first run first."""
    return [[e.event_type for e in run.events] for run in await every_run(client, workflow_id)]


async def test_a_parked_invoice_wakes_on_a_short_history(time_env, make_settings, mailbox) -> None:
    client, tz = time_env.client, "Europe/Berlin"
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = await setup(
            api,
            tz,
            {
                "name": "Parked",
                "steps": [
                    {"offset_days": -3, "template": "reminder", "tone": "friendly"},
                    {"offset_days": 2, "template": "reminder"},
                ],
            },
        )
        today = (await time_env.get_current_time()).astimezone(ZoneInfo(tz)).date()
        due = today + timedelta(days=10)
        invoice, handle = await open_invoice(api, client, customer, due)
        client_mail = customer["emails"][0]
        await sleep_until(time_env, local(due - timedelta(days=3), tz) + timedelta(hours=1))
        await wait_mail(mailbox, 2, where=to(client_mail))  # the invoice and the friendly reminder

        async def parked() -> list[list[EventType.ValueType]] | None:
            runs = await runs_of(client, handle.id)
            return runs if len(runs) == 2 else None

        first, woken = await eventually(parked, what="the invoice continued as new once parked")
        assert first[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        assert (
            len(first) >= PARK_AFTER_EVENTS and first.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) >= 3
        )
        # The run that waits starts with its start, one workflow task and the timer: nothing of the issue.
        assert EventType.EVENT_TYPE_TIMER_STARTED in woken, woken
        until_timer = woken[: woken.index(EventType.EVENT_TYPE_TIMER_STARTED) + 1]
        assert len(until_timer) <= 6 and EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in until_timer, (
            woken
        )

        state = await settled_query(handle, InvoiceWorkflow.state)
        kinds = [e.kind for e in state.timeline]
        assert kinds[0] == "created" and "issued" in kinds and "email.invoice" in kinds
        assert kinds.count("email.reminder") == 1
        assert (state.status, state.total, state.amount_due) == ("open", "2400.00", "2400.00")
        assert [r.offset_days for r in state.reminders] == [-3, 2] and state.reminders_sent == 1

        # An Update on the parked run: a part payment.
        part = await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": "400.00"})
        assert part.json()["status"] == "partially_paid", part.text

        send_at = local(due + timedelta(days=2), tz)
        await sleep_until(time_env, send_at + timedelta(hours=1))
        messages = await wait_mail(mailbox, 3, where=to(client_mail))
        assert [kind_of(m) for m in messages].count("dunning") == 2
        state = await settled_query(handle, InvoiceWorkflow.state)
        assert state.reminders_sent == 2 and state.amount_due == "2000.00"
        assert [e.kind for e in state.timeline].count("email.reminder") == 2

        paid = await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": "2000.00"})
        assert paid.json()["status"] == "paid", paid.text
        result = await handle.result()  # follows the runs to the last one
        assert (result.status, result.amount_due) == ("paid", "0.00")
        await wait_mail(mailbox, 4, where=to(client_mail))  # the invoice, two reminders, the receipt
        assert [kind_of(m) for m in mailbox.store.list() if client_mail in m.rcpt_tos].count("receipt") == 1
        runs = await runs_of(client, handle.id)
        assert runs[-1][-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
        await record_history(client.get_workflow_handle(handle.id, run_id=None), "parked_then_paid")
        first_run = (await client.get_workflow_handle(handle.id).describe()).raw_description
        await record_history(
            client.get_workflow_handle(handle.id, run_id=first_run.workflow_execution_info.first_run_id),
            "parked_continued_as_new",
        )
