"""Stripe payments end to end on the dev server: signed events, delivered several times and out of order,
record each payment once; partial payments; async Checkout waits for its success event; bad input refused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from standins import webhooks as send_as
from standins.webhooks import Delivery, send
from tests.support import api_client, customer_body, eventually
from worker import build_worker

SECRET = "whsec_test_0123456789"


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, stripe_webhook_secret=f"whsec_old,{SECRET}")
    async with (
        build_worker(temporal_env.client, settings),
        api_client(settings, temporal_env.client) as client,
    ):
        yield client


async def open_invoice(api, amount: str = "1200.00") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    customer = (await api.post("/customers", json=customer_body())).json()
    invoice = (
        await api.post(
            "/invoices",
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "Retainer", "unit_price": amount}],
            },
        )
    ).json()

    async def is_open():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice['id']}")).json()
        return body if body["status"] == "open" else None

    return await eventually(is_open, what="invoice open")


async def test_one_payment_reported_by_three_event_types_three_times_is_recorded_once(api) -> None:  # type: ignore[no-untyped-def]
    invoice = await open_invoice(api)
    objects = send_as.stripe_payment_objects(invoice["id"], 120000)
    deliveries = [send_as.stripe_event(kind, obj, SECRET) for kind, obj in objects.items()]
    # Out of order (invoice.paid first) and each delivered three times.
    for delivery in [
        deliveries[2],
        deliveries[0],
        deliveries[2],
        deliveries[1],
        deliveries[0],
        deliveries[1],
        deliveries[2],
    ]:
        response = await send(api, delivery)
        assert response.status_code == 200, response.text
    body = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert body["status"] == "paid" and body["amount_due"] == "0.00"
    assert [(p["amount"], p["method"]) for p in body["payments"]] == [("1200.00", "stripe")]


async def test_partial_payments_then_the_rest(api) -> None:  # type: ignore[no-untyped-def]
    invoice = await open_invoice(api, "1000.00")
    first = send_as.stripe_payment_objects(invoice["id"], 40001)["payment_intent.succeeded"]
    assert (
        await send(api, send_as.stripe_event("payment_intent.succeeded", first, SECRET))
    ).status_code == 200
    body = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert body["status"] == "partially_paid" and body["amount_due"] == "599.99"
    rest = send_as.stripe_payment_objects(invoice["id"], 59999)["payment_intent.succeeded"]
    assert (
        await send(api, send_as.stripe_event("payment_intent.succeeded", rest, SECRET))
    ).status_code == 200
    assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "paid"


async def test_async_checkout_waits_for_its_success_event(api) -> None:  # type: ignore[no-untyped-def]
    invoice = await open_invoice(api, "50.00")
    session = send_as.stripe_payment_objects(invoice["id"], 5000)["checkout.session.completed"]
    pending = await send(
        api,
        send_as.stripe_event("checkout.session.completed", session | {"payment_status": "unpaid"}, SECRET),
    )
    assert pending.json()["status"] == "held"  # no payment yet; its reminders wait for it
    assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "open"
    done = await send(api, send_as.stripe_event("checkout.session.async_payment_succeeded", session, SECRET))
    assert done.status_code == 200 and done.json()["status"] == "recorded"
    assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "paid"


async def test_bad_signature_stale_malformed_unmatched(api) -> None:  # type: ignore[no-untyped-def]
    invoice = await open_invoice(api, "10.00")
    obj = send_as.stripe_payment_objects(invoice["id"], 1000)["payment_intent.succeeded"]
    good = send_as.stripe_event("payment_intent.succeeded", obj, SECRET)
    assert (await send(api, good.with_body(good.body.replace(b"1000", b"9000", 1)))).status_code == 401
    assert (
        await send(api, send_as.stripe_event("payment_intent.succeeded", obj, "whsec_wrong"))
    ).status_code == 401
    stale = await send(
        api, send_as.stripe_event("payment_intent.succeeded", obj, SECRET, now=time.time() - 301)
    )
    assert stale.status_code == 401 and (
        "stale" in stale.text.lower() or "tolerance" in stale.text.lower()
    ), stale.text
    rotated = await send(
        api, send_as.stripe_event("payment_intent.succeeded", obj, "whsec_old")
    )  # either secret verifies
    assert rotated.status_code == 200
    for bad in ({"amount_received": 12.5}, {"currency": 7}, {"amount_received": -5}):
        malformed = await send(api, send_as.stripe_event("payment_intent.succeeded", obj | bad, SECRET))
        assert malformed.status_code == 422 and malformed.json()["detail"][0]["msg"], malformed.text
    stray = send_as.stripe_payment_objects("not-ours", 1000)["payment_intent.succeeded"]
    unmatched = await send(api, send_as.stripe_event("payment_intent.succeeded", stray, SECRET))
    assert unmatched.status_code == 202
    kept = [e for e in (await api.get("/webhooks/unmatched")).json() if e["ref"] == stray["id"]]
    assert len(kept) == 1 and "not-ours" in kept[0]["note"]
    assert (await send(api, Delivery("stripe", "/webhooks/stripe", b"{}", {}))).status_code == 401
    ignored = await send(
        api, send_as.stripe_event("customer.created", {"id": "cus_1", "object": "customer"}, SECRET)
    )
    assert ignored.json()["status"] == "ignored"
