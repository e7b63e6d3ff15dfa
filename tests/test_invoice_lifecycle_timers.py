"""The whole 45-day life of an invoice under the time-skipping test server, with the real activities,
PostgreSQL and SMTP server: every reminder, the overdue switch, a partial payment, the escalation to
the account owner, the final payment, the receipt, and nothing after that."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from tests.support import (
    api_client,
    customer_body,
    eventually,
    kind_of,
    record_history,
    settled_query,
    to,
    wait_mail,
)
from worker import build_worker
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import InvoiceState


def reminder_offsets(messages) -> list[int]:  # type: ignore[no-untyped-def]
    return sorted(
        int((m.header("X-Invoiceflow-Key") or "").rsplit(":", 1)[1])
        for m in messages
        if kind_of(m) == "reminder"
    )


async def test_forty_five_days_of_an_invoice(time_env, make_settings, mailbox) -> None:
    client = time_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body(payment_terms="net_14"))).json()
        client_mail, owner_mail = customer["emails"][0], customer["owner_email"]
        invoice = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Support", "unit_price": "1000.00"}],
                },
            )
        ).json()
        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])

        async def state() -> InvoiceState:
            return await settled_query(handle, InvoiceWorkflow.state)

        async def status_is(expected: str):  # type: ignore[no-untyped-def]
            current = await state()
            return current if current.status == expected else None

        opened = await eventually(lambda: status_is("open"), what="open")
        start = await time_env.get_current_time()
        due = date.fromisoformat(opened.due_date or "")
        assert due == start.date() + timedelta(days=14)
        await wait_mail(mailbox, 1, where=to(client_mail))

        # Day 15, 12:00 UTC: reminders at -3 and 0 went out, the invoice is overdue.
        await time_env.sleep(_until(start, due + timedelta(days=1), 12))
        await eventually(lambda: status_is("overdue"), what="overdue")
        assert reminder_offsets(await wait_mail(mailbox, 3, where=to(client_mail))) == [-3, 0]

        partial = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "400.00"},
            headers={"Idempotency-Key": "p1"},
        )
        assert partial.status_code == 201, partial.text
        assert partial.json()["amount_due"] == "600.00"
        assert partial.json()["status"] == "overdue"  # an overdue partial payment stays overdue

        # Day 45: reminders +7, +14, +30 and, after the last one, the escalation to the owner.
        await time_env.sleep(_until(await time_env.get_current_time(), due + timedelta(days=31), 0))
        assert reminder_offsets(await wait_mail(mailbox, 6, where=to(client_mail))) == [-3, 0, 7, 14, 30]
        [escalation] = await wait_mail(mailbox, 1, where=to(owner_mail))
        assert kind_of(escalation) == "escalation" and opened.number in escalation.subject

        done = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "600.00"},
            headers={"Idempotency-Key": "p2"},
        )
        assert done.json()["status"] == "paid"
        result = await asyncio.wait_for(handle.result(), timeout=30)
        assert result.status == "paid" and result.amount_due == "0.00"
        await record_history(handle, "lean_forty_five_days_partial_then_paid")

        final = await wait_mail(mailbox, 7, where=to(client_mail))
        assert sorted(kind_of(m) for m in final) == [
            "receipt",
            "reminder",
            "reminder",
            "reminder",
            "reminder",
            "reminder",
            "sent",
        ]
        timeline = (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]
        statuses = [e["kind"] for e in timeline if e["kind"].startswith("status.")]
        assert statuses == ["status.open", "status.overdue", "status.paid"]


async def test_no_reminder_after_payment(time_env, make_settings, mailbox) -> None:
    client = time_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        invoice = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Audit", "unit_price": "250"}],
                },
            )
        ).json()
        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])
        await eventually(lambda: _status(handle, "open"), what="open")
        paid = await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": "250.00"})
        assert paid.json()["status"] == "paid"
        await asyncio.wait_for(handle.result(), timeout=30)
        await time_env.sleep(timedelta(days=60))
        kinds = sorted(kind_of(m) for m in mailbox.store.list() if customer["emails"][0] in m.rcpt_tos)
        assert kinds == ["receipt", "sent"]


async def test_void_and_write_off(time_env, make_settings, mailbox) -> None:
    client = time_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        lines = {"customer_id": customer["id"], "lines": [{"description": "Work", "unit_price": "100"}]}
        first = (await api.post("/invoices", json=lines)).json()
        second = (await api.post("/invoices", json=lines)).json()
        for inv in (first, second):
            await eventually(
                lambda inv=inv: _status(client.get_workflow_handle(inv["workflow_id"]), "open"), what="open"
            )

        assert (await api.post(f"/invoices/{first['id']}/void", json={"reason": ""})).status_code == 422
        voided = await api.post(
            f"/invoices/{first['id']}/void", json={"reason": "duplicate of another invoice"}
        )
        assert voided.status_code == 200 and voided.json()["status"] == "void"
        assert voided.json()["number"]  # a voided invoice keeps its number
        again = await api.post(f"/invoices/{first['id']}/payments", json={"amount": "10.00"})
        assert again.status_code == 409

        await api.post(f"/invoices/{second['id']}/payments", json={"amount": "30.00"})
        refused = await api.post(f"/invoices/{second['id']}/void", json={"reason": "oops"})
        assert refused.status_code == 409 and "credit note" in refused.text
        written = await api.post(
            f"/invoices/{second['id']}/uncollectible", json={"reason": "client insolvent"}
        )
        assert written.status_code == 200 and written.json()["status"] == "uncollectible"
        events = [e for e in written.json()["timeline"] if e["kind"] == "status.uncollectible"]
        assert events[0]["data"]["written_off"] == "70.00"

        await time_env.sleep(timedelta(days=60))
        kinds = [kind_of(m) for m in mailbox.store.list() if customer["emails"][0] in m.rcpt_tos]
        assert kinds == ["sent", "sent"]  # no reminders for closed invoices
        await record_history(client.get_workflow_handle(first["workflow_id"]), "lean_voided")
        await record_history(
            client.get_workflow_handle(second["workflow_id"]), "partially_paid_then_written_off"
        )


async def _status(handle, expected: str):  # type: ignore[no-untyped-def]
    current = await settled_query(handle, InvoiceWorkflow.state)
    return current if current.status == expected else None


def _until(now: datetime, day: date, hour: int) -> timedelta:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - now
