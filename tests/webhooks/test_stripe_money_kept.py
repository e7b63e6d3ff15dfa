"""Money that arrives through Stripe is never dropped: a payment for an invoice that is already paid
becomes the client's credit, one for a void invoice waits in the inbox for an operator with the reason;
neither is a 4xx that Stripe would give up on, and each is kept once however often it is delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, customer_body, eventually
from tests.webhooks.test_stripe import SECRET, open_invoice
from worker import build_worker


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, stripe_webhook_secret=SECRET)
    async with (
        build_worker(temporal_env.client, settings),
        api_client(settings, temporal_env.client) as client,
    ):
        yield client


async def pay(api, invoice_id: str, minor: int, *, intent: str | None = None) -> list[Any]:  # type: ignore[no-untyped-def]
    """Deliver one Stripe payment as all three event types report it, each twice; the answers."""
    objects = send_as.stripe_payment_objects(invoice_id, minor, intent=intent)
    answers = []
    for _ in range(2):
        for kind, obj in objects.items():
            answers.append(await send(api, send_as.stripe_event(kind, obj, SECRET)))
    return answers


async def test_a_second_payment_of_a_paid_invoice_becomes_customer_credit_once(api) -> None:  # type: ignore[no-untyped-def]
    invoice = await open_invoice(api, "100.00")
    assert all(r.status_code == 200 for r in await pay(api, invoice["id"], 10000))
    assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "paid"

    again = await pay(api, invoice["id"], 10000, intent="pi_twice0000000000000000000")
    assert all(r.status_code < 300 for r in again), [r.text for r in again]
    assert again[0].json()["status"] == "credited", again[0].text
    body = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert body["status"] == "paid"
    assert sorted(p["amount"] for p in body["payments"]) == ["100.00", "100.00"]
    assert body["credit"] == "100.00"
    customer = (await api.get(f"/customers/{invoice['customer_id']}")).json()
    assert customer["credit"] == {"USD": "100.00"}
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds.count("credit.created") == 1, kinds


async def test_a_payment_of_a_void_invoice_waits_for_an_operator_with_the_reason(api) -> None:  # type: ignore[no-untyped-def]
    invoice = await open_invoice(api, "40.00")
    voided = await api.post(f"/invoices/{invoice['id']}/void", json={"reason": "sent twice"})
    assert voided.status_code == 200, voided.text
    await eventually(
        lambda: _status_is(api, invoice["id"], "void"),
        what="invoice void",
    )
    answers = await pay(api, invoice["id"], 4000, intent="pi_onvoid00000000000000000")
    assert all(r.status_code == 202 for r in answers), [r.text for r in answers]
    kept = [
        e for e in (await api.get("/webhooks/unmatched")).json() if e["ref"] == "pi_onvoid00000000000000000"
    ]
    assert len(kept) == 1, kept
    assert "void" in kept[0]["note"] and kept[0]["kind"] == "payment"
    assert kept[0]["summary"]["amount"] == "40.00" and kept[0]["summary"]["currency"] == "USD"
    body = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert body["payments"] == [] and body["status"] == "void"


async def test_a_payment_in_another_currency_is_kept_not_refused(api) -> None:  # type: ignore[no-untyped-def]
    invoice = await open_invoice(api, "10.00")
    obj = send_as.stripe_payment_objects(
        invoice["id"], 1000, currency="eur", intent="pi_ineur0000000000000000000"
    )
    answer = await send(
        api, send_as.stripe_event("payment_intent.succeeded", obj["payment_intent.succeeded"], SECRET)
    )
    assert answer.status_code == 202, answer.text
    kept = [
        e for e in (await api.get("/webhooks/unmatched")).json() if e["ref"] == "pi_ineur0000000000000000000"
    ]
    assert len(kept) == 1 and "EUR" in kept[0]["note"], kept


async def _status_is(api, invoice_id: str, status: str) -> bool | None:  # type: ignore[no-untyped-def]
    return (await api.get(f"/invoices/{invoice_id}")).json()["status"] == status or None


async def test_a_payment_before_issue_is_kept_then_applied_by_an_operators_replay(
    temporal_env, make_settings
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, stripe_webhook_secret=SECRET)
    async with api_client(settings, temporal_env.client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        invoice = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Ops", "unit_price": "25.00"}],
                },
            )
        ).json()
        # No worker yet: the invoice is still a draft when the client pays.
        obj = send_as.stripe_payment_objects(invoice["id"], 2500, intent="pi_early0000000000000000000")
        early = await send(
            api, send_as.stripe_event("payment_intent.succeeded", obj["payment_intent.succeeded"], SECRET)
        )
        assert early.status_code == 202, early.text
        [kept] = [
            e
            for e in (await api.get("/webhooks/unmatched")).json()
            if e["ref"] == "pi_early0000000000000000000"
        ]
        assert "not issued yet" in kept["note"], kept
        async with build_worker(temporal_env.client, settings):
            await eventually(lambda: _status_is(api, invoice["id"], "open"), what="invoice open")
            replayed = await api.post(f"/webhooks/events/{kept['id']}/replay")
            assert replayed.status_code == 200 and replayed.json()["status"] == "dispatched", replayed.text
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert body["status"] == "paid" and [p["amount"] for p in body["payments"]] == ["25.00"]
            again = await api.post(f"/webhooks/events/{kept['id']}/replay")
            assert again.status_code == 200
            assert len((await api.get(f"/invoices/{invoice['id']}")).json()["payments"]) == 1
        assert all(
            e["ref"] != "pi_early0000000000000000000" for e in (await api.get("/webhooks/unmatched")).json()
        )
