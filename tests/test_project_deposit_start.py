"""``start_on: deposit_paid`` on the time-skipping server with the real worker, PostgreSQL and SMTP: before
the deposit invoice is paid in full a milestone reported done bills nothing and the weekly T&M calendar has
no timer (a week passes, nothing is billed); the payment starts the project: the milestone done meanwhile
bills at once, the account owner gets one email, and the next week's end bills the time logged."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

from billing.time_materials import boundary_instant, period_end
from tests.support import api_client, customer_body, eventually, record_history, to, wait_mail
from tests.webhooks.test_receivers import uid
from worker import build_worker


async def test_billing_starts_when_the_deposit_is_paid(time_env, make_settings, mailbox) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(time_env.client)
    async with build_worker(time_env.client, settings), api_client(settings, time_env.client) as api:
        customer = (await api.post("/customers", json=customer_body(reminder_offsets=[]))).json()
        owner = f"pm-{uid()}@firm.example.com"
        response = await api.post(
            "/projects",
            json={
                "customer_id": customer["id"],
                "name": f"Portal {uid()}",
                "currency": "USD",
                "start_on": "deposit_paid",
                "owner_email": owner,
                "deposit": {"percent": "30"},
                "milestones": [
                    {"key": "m1", "name": "Design", "amount": "1000.00"},
                    {"key": "m2", "name": "Build", "amount": "2000.00"},
                ],
                "time_and_materials": {"rate": "100.00", "bill_every": "week"},
            },
        )
        assert response.status_code == 201, response.text
        pid = response.json()["id"]
        assert response.json()["start_on"] == "deposit_paid" and response.json()["started_at"] is None

        async def project(invoices: int) -> dict:  # type: ignore[type-arg]
            async def probe():  # type: ignore[no-untyped-def]
                body = (await api.get(f"/projects/{pid}")).json()
                return body if len(body["invoices"]) >= invoices else None

            return await eventually(probe, what=f"{invoices} invoice(s)")

        assert (await api.post(f"/projects/{pid}/contract-signed", json={})).status_code == 202
        [deposit] = (await project(1))["invoices"]
        assert deposit["total"] == "900.00"
        assert (await api.post(f"/projects/{pid}/milestones/m1/complete", json={})).status_code == 202
        today = (await time_env.get_current_time()).astimezone(ZoneInfo("UTC")).date()
        logged = await api.post(
            f"/projects/{pid}/time-entries",
            json={"person": "Ada", "date": today.isoformat(), "hours": "5", "description": "Build"},
        )
        assert logged.status_code == 201, logged.text

        # A week's end passes: no period timer runs before the deposit is paid, and m1 waits.
        await time_env.sleep(timedelta(days=8))
        body = (await api.get(f"/projects/{pid}")).json()
        assert [i["total"] for i in body["invoices"]] == ["900.00"]
        assert body["milestones"][0]["status"] == "pending" and body["started_at"] is None

        async def opened():  # type: ignore[no-untyped-def]
            return (await api.get(f"/invoices/{deposit['id']}")).json()["status"] in ("open", "overdue")

        await eventually(opened, what="deposit invoice issued")
        paid = await api.post(
            f"/invoices/{deposit['id']}/payments",
            json={"amount": "900.00", "reference": "WIRE-9"},
            headers={"Idempotency-Key": f"dep-{uid()}"},
        )
        assert paid.status_code == 201 and paid.json()["status"] == "paid", paid.text
        body = await project(2)
        assert [i["total"] for i in body["invoices"]] == ["900.00", "700.00"]  # m1 less 300.00 recouped
        assert body["started_at"] is not None
        assert [m["status"] for m in body["milestones"]] == ["billed", "pending"]
        [told] = await wait_mail(mailbox, 1, where=to(owner))
        assert "Deposit paid" in told.subject

        # From the start on, the weekly calendar runs: the first week's end bills the 5 h.
        started = (await time_env.get_current_time()).astimezone(ZoneInfo("UTC")).date()
        await time_env.sleep(
            boundary_instant(period_end("week", started), "UTC")
            + timedelta(minutes=1)
            - await time_env.get_current_time()
        )
        body = await project(3)
        assert [i["total"] for i in body["invoices"]] == ["900.00", "700.00", "500.00"]
        await asyncio.sleep(0.5)
        assert len([m for m in mailbox.store.list() if owner in m.rcpt_tos]) == 1  # told once
        await record_history(
            time_env.client.get_workflow_handle(body["workflow_id"]), "project_deposit_paid_start"
        )


async def test_deposit_paid_needs_a_deposit(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    async with api_client(settings, temporal_env.client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        response = await api.post(
            "/projects",
            json={
                "customer_id": customer["id"],
                "name": "P",
                "currency": "USD",
                "start_on": "deposit_paid",
                "milestones": [{"key": "m1", "name": "A", "amount": "100.00"}],
            },
        )
        assert response.status_code == 422 and "start_on" in response.text
