"""Refunds on the Temporal dev server with PostgreSQL: through the API (an open invoice owes the money
again, through its workflow; a paid invoice pays out only the credit it created) and from Stripe refund
events, each refund recorded once whichever events report it and however often."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, customer_body, eventually, record_history
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

SECRET = "whsec_refunds_0123456789"


@pytest_asyncio.fixture
async def env(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, stripe_webhook_secret=SECRET)
    async with build_worker(temporal_env.client, settings), api_client(settings, temporal_env.client) as api:
        yield api, temporal_env.client


async def _open(api, amount: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    customer = (await api.post("/customers", json=customer_body())).json()
    invoice = (
        await api.post(
            "/invoices",
            json={"customer_id": customer["id"], "lines": [{"description": "Work", "unit_price": amount}]},
        )
    ).json()

    async def is_open():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice['id']}")).json()
        return body if body["status"] == "open" else None

    return await eventually(is_open, what="invoice open")


async def _pay(api, invoice: dict[str, Any], amount: str, key: str) -> str:  # type: ignore[no-untyped-def]
    paid = await api.post(
        f"/invoices/{invoice['id']}/payments", json={"amount": amount}, headers={"Idempotency-Key": key}
    )
    assert paid.status_code == 201, paid.text
    return paid.json()["payment_id"]


async def test_a_refund_on_an_open_invoice_makes_the_amount_due_again(env) -> None:  # type: ignore[no-untyped-def]
    api, client = env
    invoice = await _open(api, "1000.00")
    payment_id = await _pay(api, invoice, "600.00", f"r1-{invoice['id']}")
    url = f"/invoices/{invoice['id']}/refunds"

    refund = await api.post(
        url,
        json={
            "payment_id": payment_id,
            "amount": "200.00",
            "reason": "disputed hours",
            "idempotency_key": "r-1",
        },
    )
    assert refund.status_code == 201, refund.text
    body = refund.json()
    assert (body["kind"], body["status"], body["amount_paid"], body["amount_due"]) == (
        "reopened",
        "partially_paid",
        "400.00",
        "600.00",
    )
    again = await api.post(url, json={"payment_id": payment_id, "amount": "200.00", "idempotency_key": "r-1"})
    assert (
        again.status_code == 200
        and again.json()["duplicate"] is True
        and again.json()["refund_id"] == body["refund_id"]
    )

    too_much = await api.post(
        url, json={"payment_id": payment_id, "amount": "400.01", "idempotency_key": "r-2"}
    )
    assert too_much.status_code == 422 and "400.00 USD still refundable" in too_much.text
    for bad, expected in (
        ({"amount": "-1"}, "greater than 0"),
        ({"amount": "1.001"}, "decimal"),
        ({"amount": 1.5}, "float"),
    ):
        refused = await api.post(url, json={"payment_id": payment_id, "idempotency_key": "r-3", **bad})
        assert refused.status_code == 422 and expected in refused.text, refused.text
    stranger = await api.post(
        url, json={"payment_id": invoice["id"], "amount": "1.00", "idempotency_key": "r-4"}
    )
    assert stranger.status_code == 422 and "has no payment" in stranger.text

    rest = await api.post(url, json={"payment_id": payment_id, "amount": "400.00", "idempotency_key": "r-5"})
    assert rest.status_code == 201 and (rest.json()["status"], rest.json()["amount_due"]) == (
        "open",
        "1000.00",
    )
    state = await client.get_workflow_handle(invoice["workflow_id"]).query(InvoiceWorkflow.state)
    assert (state.status, state.amount_paid, state.amount_due) == ("open", "0.00", "1000.00")
    shown = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert [(r["amount"], r["kind"]) for r in shown["refunds"]] == [
        ("200.00", "reopened"),
        ("400.00", "reopened"),
    ]

    await _pay(api, invoice, "1000.00", f"r2-{invoice['id']}")
    assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "paid"
    handle = client.get_workflow_handle(invoice["workflow_id"])
    await asyncio.wait_for(handle.result(), timeout=30)
    await record_history(handle, "partially_paid_refunded_then_paid")


async def test_a_paid_invoice_refunds_only_the_credit_it_created(env) -> None:  # type: ignore[no-untyped-def]
    api, _ = env
    invoice = await _open(api, "100.00")
    payment_id = await _pay(api, invoice, "130.00", f"o-{invoice['id']}")
    url = f"/invoices/{invoice['id']}/refunds"
    beyond = await api.post(url, json={"payment_id": payment_id, "amount": "30.01", "idempotency_key": "c-1"})
    assert beyond.status_code == 409 and "unused customer credit of 30.00 USD" in beyond.text
    refund = await api.post(url, json={"payment_id": payment_id, "amount": "30.00", "idempotency_key": "c-2"})
    assert refund.status_code == 201, refund.text
    assert (refund.json()["kind"], refund.json()["status"], refund.json()["credit"]) == (
        "credit",
        "paid",
        "0.00",
    )
    customer = (await api.get(f"/customers/{invoice['customer_id']}")).json()
    assert customer["credit"] == {}


async def test_stripe_refund_events_record_each_refund_once(env) -> None:  # type: ignore[no-untyped-def]
    api, _ = env
    invoice = await _open(api, "1000.00")
    objects = send_as.stripe_payment_objects(invoice["id"], 60000)
    intent = objects["payment_intent.succeeded"]["id"]
    assert (
        await send(
            api, send_as.stripe_event("payment_intent.succeeded", objects["payment_intent.succeeded"], SECRET)
        )
    ).status_code == 200

    pending = send_as.stripe_refund_objects(intent, 25000, status="pending")["refund.created"]
    assert (await send(api, send_as.stripe_event("refund.created", pending, SECRET))).json()[
        "status"
    ] == "ignored"
    refund = send_as.stripe_refund_objects(intent, 25000, refund_id=pending["id"])
    deliveries = [
        send_as.stripe_event("refund.updated", refund["refund.created"], SECRET),
        send_as.stripe_event("charge.refunded", refund["charge.refunded"], SECRET),
    ]
    for delivery in deliveries + deliveries:
        response = await send(api, delivery)
        assert response.status_code == 200, response.text
    body = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert [(r["amount"], r["reference"]) for r in body["refunds"]] == [("250.00", pending["id"])]
    assert (body["status"], body["amount_paid"], body["amount_due"]) == ("partially_paid", "350.00", "650.00")

    stray = send_as.stripe_refund_objects("pi_not_ours", 100)["refund.created"]
    unmatched = await send(api, send_as.stripe_event("refund.created", stray, SECRET))
    assert unmatched.status_code == 202 and unmatched.json()["refunds"][0]["status"] == "unmatched"
