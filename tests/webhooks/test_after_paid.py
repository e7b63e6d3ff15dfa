"""Payment events as triggers, end to end on the dev server: a milestone with ``bill_on: after_paid`` is
invoiced once when the earlier invoice is paid in full, whichever source reports the payment and however
often, and not while that invoice is only partly paid."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, eventually
from tests.webhooks.test_receivers import PUBLIC_URL, SECRETS, new_project, settled, uid
from worker import build_worker

STRIPE_SECRET = "whsec_after_paid"


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, stripe_webhook_secret=STRIPE_SECRET, **SECRETS)
    async with build_worker(client, settings), api_client(settings, client) as live:
        yield live


async def _open(api, invoice_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["status"] == "open" else None

    return await eventually(probe, what="invoice open")


async def test_the_next_phase_bills_once_when_the_previous_invoice_is_paid_in_full(api) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(
        api,
        milestones=[
            {"key": "m1", "name": "Discovery", "amount": "1000.00"},
            {"key": "m2", "name": "Build", "amount": "3000.00", "bill_on": "after_paid", "after": "m1"},
        ],
    )
    pid = project["id"]
    assert [m["after"] for m in project["milestones"]] == [None, "m1"]
    done = send_as.generic_event(
        f"m1-{uid()}",
        "milestone.completed",
        SECRETS["generic_webhook_secret"],
        project_id=pid,
        milestone_key="m1",
    )
    assert (await send(api, done)).status_code == 200
    [m1_invoice] = (await settled(api, pid, invoices=1))["invoices"]
    invoice = await _open(api, m1_invoice["id"])
    assert invoice["total"] == "1000.00"

    # Part of it paid (a bank transfer recorded through the API): the next phase waits.
    part = await api.post(
        f"/invoices/{invoice['id']}/payments",
        json={"amount": "400.00", "reference": "WIRE-1"},
        headers={"Idempotency-Key": f"wire-{uid()}"},
    )
    assert part.status_code == 201 and part.json()["status"] == "partially_paid"

    # The rest through Stripe, its event delivered twice.
    rest = send_as.stripe_payment_objects(invoice["id"], 60000)["payment_intent.succeeded"]
    event = send_as.stripe_event("payment_intent.succeeded", rest, STRIPE_SECRET)
    for _ in range(2):
        assert (await send(api, event)).status_code == 200

    body = await settled(api, pid, invoices=2)
    assert sorted(i["total"] for i in body["invoices"]) == ["1000.00", "3000.00"]
    assert [m["status"] for m in body["milestones"]] == ["billed", "billed"]
    assert body["status"] == "completed"
    state = await api.get(f"/projects/{pid}")
    assert len(state.json()["invoices"]) == 2  # two Stripe deliveries, one invoice for the next phase


async def test_a_partly_paid_invoice_bills_nothing_after_it(api) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(
        api,
        deposit={"percent": "20"},
        milestones=[
            {"key": "m1", "name": "Build", "amount": "5000.00", "bill_on": "after_paid", "after": "deposit"}
        ],
    )
    pid = project["id"]
    signed = send_as.generic_event(
        f"sig-{uid()}", "contract.signed", SECRETS["generic_webhook_secret"], project_id=pid
    )
    assert (await send(api, signed)).status_code == 200
    [deposit] = (await settled(api, pid, invoices=1))["invoices"]
    invoice = await _open(api, deposit["id"])
    assert invoice["total"] == "1000.00"
    part = await api.post(
        f"/invoices/{invoice['id']}/payments",
        json={"amount": "999.99"},
        headers={"Idempotency-Key": f"p-{uid()}"},
    )
    assert part.json()["status"] == "partially_paid"
    body = (await api.get(f"/projects/{pid}")).json()
    assert len(body["invoices"]) == 1 and body["milestones"][0]["status"] == "pending"
    last = await api.post(
        f"/invoices/{invoice['id']}/payments",
        json={"amount": "0.01"},
        headers={"Idempotency-Key": f"p-{uid()}"},
    )
    assert last.json()["status"] == "paid"
    body = await settled(api, pid, invoices=2)
    # The deposit is recouped from the milestone it secured.
    assert sorted(i["total"] for i in body["invoices"]) == ["1000.00", "4000.00"]


async def test_after_must_name_the_plan(api) -> None:  # type: ignore[no-untyped-def]
    customer = (
        await api.post("/customers", json={"name": "X", "emails": ["x@example.com"], "currency": "USD"})
    ).json()
    base = {"customer_id": customer["id"], "name": "P", "currency": "USD"}
    cases = [
        [{"key": "m1", "name": "A", "amount": "1", "bill_on": "after_paid"}],
        [{"key": "m1", "name": "A", "amount": "1", "after": "m1", "bill_on": "after_paid"}],
        [{"key": "m1", "name": "A", "amount": "1", "bill_on": "after_paid", "after": "nope"}],
        [{"key": "m1", "name": "A", "amount": "1", "bill_on": "after_paid", "after": "deposit"}],
        [{"key": "m1", "name": "A", "amount": "1", "after": "m2"}, {"key": "m2", "name": "B", "amount": "1"}],
    ]
    for milestones in cases:
        response = await api.post("/projects", json={**base, "milestones": milestones})
        assert response.status_code == 422, (milestones, response.text)
        assert "after" in response.text
