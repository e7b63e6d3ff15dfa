"""Dunning policies through the API on the dev server: policies as validated data, assignment
per customer and per invoice, the policy frozen at issue (a later edit changes nothing for issued
invoices), the reminder preview matching what the workflow waits for, dispute holds on an invoice and on
a customer, and Stripe payments in flight holding the reminders."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, customer_body, eventually
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

STRIPE_SECRET = "whsec_dunning_0123456789"


def policy_body(name: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "steps": [
            {"offset_days": -3, "template": "reminder", "tone": "friendly"},
            {
                "offset_days": 7,
                "template": "reminder",
                "tone": "firm",
                "recipients": ["client", "account_owner"],
            },
            {"offset_days": 30, "template": "reminder", "tone": "final"},
        ],
        "send_window": {"start": "09:00", "end": "17:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
        "escalation": {"after_days": 2, "recipients": ["account_owner", "finance_lead"]},
    }
    body.update(overrides)
    return body


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture
async def env(temporal_env, make_settings):  # type: ignore[no-untyped-def]
    settings = make_settings(
        temporal_env.client,
        stripe_webhook_secret=STRIPE_SECRET,
        finance_lead_email="finance-lead@firm.example.com",
    )
    async with build_worker(temporal_env.client, settings), api_client(settings, temporal_env.client) as api:
        yield api, temporal_env.client


async def open_invoice(api, customer_id: str, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    created = await api.post(
        "/invoices",
        json={
            "customer_id": customer_id,
            "lines": [{"description": "Support", "unit_price": "900.00"}],
            **extra,
        },
    )
    assert created.status_code == 201, created.text

    async def is_open():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{created.json()['id']}")).json()
        return body if body["status"] == "open" else None

    return await eventually(is_open, what="invoice open")


async def test_policies_are_validated_data(env) -> None:  # type: ignore[no-untyped-def]
    api, _ = env
    name = unique("Firm")
    bad_tone = policy_body(name, steps=[{"offset_days": 0, "template": "reminder", "tone": "angry"}])
    refused = await api.post("/dunning-policies", json=bad_tone)
    assert (
        refused.status_code == 422
        and "steps[0].tone: 'angry' is not one of friendly, firm, final" in refused.text
    )
    unordered = policy_body(
        name, steps=[{"offset_days": 7, "template": "reminder"}, {"offset_days": 0, "template": "reminder"}]
    )
    assert "steps[1].offset_days" in (await api.post("/dunning-policies", json=unordered)).text
    float_fee = policy_body(name, late_fee={"kind": "fixed", "value": 12.5, "after_days": 10})
    assert (await api.post("/dunning-policies", json=float_fee)).status_code == 422
    no_template = policy_body(name, steps=[{"offset_days": 0, "template": "reminder_v9"}])
    missing = await api.post("/dunning-policies", json=no_template)
    assert missing.status_code == 422 and "steps[0].template: no email template 'reminder_v9'" in missing.text
    assert (await api.get(f"/dunning-policies/{name}")).status_code == 404  # nothing half-written

    created = await api.post("/dunning-policies", json=policy_body(name))
    assert created.status_code == 201, created.text
    assert created.json()["policy"]["send_window"] == {
        "start": "09:00",
        "end": "17:00",
        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    }
    assert (await api.post("/dunning-policies", json=policy_body(name))).status_code == 409
    assert name in [p["name"] for p in (await api.get("/dunning-policies")).json()]

    renamed = await api.put(f"/dunning-policies/{name}", json=policy_body("Another name"))
    assert renamed.status_code == 422 and "cannot be renamed" in renamed.text
    edit = policy_body(name, steps=[{"offset_days": 1, "template": "reminder"}], escalation=None)
    del edit["name"]
    replaced = await api.put(f"/dunning-policies/{name}", json=edit)
    assert replaced.status_code == 200 and [s["offset_days"] for s in replaced.json()["policy"]["steps"]] == [
        1
    ]
    assert (await api.put(f"/dunning-policies/{name}", json={"steps": "no"})).status_code == 422
    assert (await api.put("/dunning-policies/nope-" + name, json=edit)).status_code == 404

    bad_customer = await api.post("/customers", json=customer_body(dunning_policy="no such policy"))
    assert bad_customer.status_code == 422 and "does not exist" in bad_customer.text
    customer = (await api.post("/customers", json=customer_body())).json()
    bad_invoice = await api.post(
        "/invoices",
        json={
            "customer_id": customer["id"],
            "dunning_policy": "no such policy",
            "lines": [{"description": "x", "unit_price": "1.00"}],
        },
    )
    assert bad_invoice.status_code == 422 and "does not exist" in bad_invoice.text


@pytest.mark.usefixtures("isolated_approval_rules")
async def test_policy_frozen_at_issue_and_previewed_exactly(env) -> None:  # type: ignore[no-untyped-def]
    api, client = env
    standard, override = unique("Standard"), unique("Override")
    assert (await api.post("/dunning-policies", json=policy_body(standard))).status_code == 201
    assert (
        await api.post(
            "/dunning-policies",
            json=policy_body(
                override, steps=[{"offset_days": 0, "template": "reminder", "tone": "firm"}], escalation=None
            ),
        )
    ).status_code == 201
    tz = "America/New_York"
    customer = (await api.post("/customers", json=customer_body(timezone=tz, dunning_policy=standard))).json()
    assert customer["dunning_policy"] == standard

    issued = await open_invoice(api, customer["id"])
    assert issued["dunning_policy"] == standard
    preview = (await api.get(f"/invoices/{issued['id']}/reminders")).json()
    assert preview["source"] == "frozen" and preview["policy"] == standard and preview["timezone"] == tz
    reminders = preview["reminders"]
    assert [r["step_index"] for r in reminders] == [0, 1, 2, 3]
    assert [r["tone"] for r in reminders] == ["friendly", "firm", "final", "final"]
    assert reminders[1]["recipients"] == ["client", "account_owner"]
    assert reminders[3]["kind"] == "escalation" and reminders[3]["recipients"] == [
        "account_owner",
        "finance_lead",
    ]
    assert all(r["status"] == "pending" for r in reminders)
    for r in reminders:  # the window start on a weekday, on the client's clock
        local = datetime.fromisoformat(r["local_time"])
        assert local.time() == time(9, 0) and local.weekday() < 5, r
        assert local == datetime.fromisoformat(r["send_at"]).astimezone(ZoneInfo(tz))
    # Exactly what the workflow waits for.
    handle = client.get_workflow_handle_for(InvoiceWorkflow.run, issued["workflow_id"])
    state = await handle.query(InvoiceWorkflow.state)
    assert [s.send_at for s in state.reminders] == [datetime.fromisoformat(r["send_at"]) for r in reminders]
    assert [s.template for s in state.reminders] == ["reminder", "reminder", "reminder", "escalation"]

    # The invoice's own policy wins over the customer's.
    own = await open_invoice(api, customer["id"], dunning_policy=override)
    assert own["dunning_policy"] == override
    assert [r["tone"] for r in (await api.get(f"/invoices/{own['id']}/reminders")).json()["reminders"]] == [
        "firm"
    ]

    # A draft (held for approval here) previews what it would get if it were issued now.
    tag = uuid.uuid4().hex[:10]
    rule = {
        "name": f"hold-{tag}",
        "match": {"client_tags": [tag]},
        "steps": [{"approvers": ["pm@firm.example.com"]}],
    }
    assert (await api.post("/approval-rules", json=rule)).status_code == 201
    waiting = (
        await api.post("/customers", json=customer_body(timezone=tz, dunning_policy=standard, tags=[tag]))
    ).json()
    draft = (
        await api.post(
            "/invoices",
            json={"customer_id": waiting["id"], "lines": [{"description": "x", "unit_price": "5.00"}]},
        )
    ).json()
    draft_handle = client.get_workflow_handle_for(InvoiceWorkflow.run, draft["workflow_id"])

    async def pending():  # type: ignore[no-untyped-def]
        return (await draft_handle.query(InvoiceWorkflow.state)).status == "pending_approval"

    await eventually(pending, what="draft waits for approval")
    draft_preview = (await api.get(f"/invoices/{draft['id']}/reminders")).json()
    assert draft_preview["source"] == "policy" and [r["step_index"] for r in draft_preview["reminders"]] == [
        0,
        1,
        2,
        3,
    ]

    # Editing the policy changes nothing for issued invoices; the draft follows the edit.
    edit = policy_body(
        standard, steps=[{"offset_days": 1, "template": "reminder", "tone": "final"}], escalation=None
    )
    assert (await api.put(f"/dunning-policies/{standard}", json=edit)).status_code == 200
    again = (await api.get(f"/invoices/{issued['id']}/reminders")).json()
    assert again["reminders"] == reminders
    assert [s.send_at for s in (await handle.query(InvoiceWorkflow.state)).reminders] == [
        s.send_at for s in state.reminders
    ]
    assert [r["tone"] for r in (await api.get(f"/invoices/{draft['id']}/reminders")).json()["reminders"]] == [
        "final"
    ]
    later = await open_invoice(api, customer["id"])
    assert [
        r["offset_days"] for r in (await api.get(f"/invoices/{later['id']}/reminders")).json()["reminders"]
    ] == [1]

    # The customer's policy changes through PATCH: invoices issued from then on follow it, issued ones
    # keep theirs; an unknown policy, a fixed field and a null required field are refused.
    for bad in ({"dunning_policy": "no such policy"}, {"currency": "EUR"}, {"name": None}, {"emails": []}):
        refused = await api.patch(f"/customers/{customer['id']}", json=bad)
        assert refused.status_code == 422, (bad, refused.text)
    assert (
        await api.patch(f"/customers/{uuid.uuid4()}", json={"dunning_policy": override})
    ).status_code == 404
    patched = await api.patch(
        f"/customers/{customer['id']}",
        json={"dunning_policy": override, "owner_email": "am@firm.example.com"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["dunning_policy"], patched.json()["owner_email"], patched.json()["name"]) == (
        override,
        "am@firm.example.com",
        customer["name"],
    )
    after_patch = await open_invoice(api, customer["id"])
    assert after_patch["dunning_policy"] == override
    assert (await api.get(f"/invoices/{issued['id']}/reminders")).json()["reminders"] == reminders
    cleared = (await api.patch(f"/customers/{customer['id']}", json={"dunning_policy": None})).json()
    assert cleared["dunning_policy"] is None

    # No policy anywhere: today's default offsets, unchanged.
    plain = (await api.post("/customers", json=customer_body(timezone=tz))).json()
    default = (await api.get(f"/invoices/{(await open_invoice(api, plain['id']))['id']}/reminders")).json()
    assert default["source"] == "default" and default["policy"] is None
    assert [(r["kind"], r["offset_days"]) for r in default["reminders"]][:5] == [
        ("reminder", o) for o in (-3, 0, 7, 14, 30)
    ]


async def test_dispute_hold_on_an_invoice_and_on_a_customer(env) -> None:  # type: ignore[no-untyped-def]
    api, client = env
    name = unique("Holds")
    assert (await api.post("/dunning-policies", json=policy_body(name))).status_code == 201
    customer = (await api.post("/customers", json=customer_body(dunning_policy=name))).json()
    first = await open_invoice(api, customer["id"])
    handle = client.get_workflow_handle_for(InvoiceWorkflow.run, first["workflow_id"])

    assert (
        await api.post(f"/invoices/{first['id']}/hold", json={})
    ).status_code == 422  # a reason is required
    assert (
        await api.post(f"/invoices/{first['id']}/hold", json={"reason": "x", "resume_on": "2001-01-01"})
    ).status_code == 422
    assert (await api.post(f"/invoices/{first['id']}/release")).status_code == 409  # nothing to release
    held = await api.post(f"/invoices/{first['id']}/hold", json={"reason": "client disputes line 2"})
    assert held.status_code == 201, held.text
    assert held.json()["active"] and held.json()["scope"] == "invoice" and held.json()["kind"] == "dispute"
    assert (await api.post(f"/invoices/{first['id']}/hold", json={"reason": "again"})).status_code == 409
    body = (await api.get(f"/invoices/{first['id']}")).json()
    assert [h["reason"] for h in body["holds"] if h["active"]] == ["client disputes line 2"]
    assert "dunning.hold_placed" in [e["kind"] for e in body["timeline"]]
    assert (await handle.query(InvoiceWorkflow.state)).holds[0].reason == "client disputes line 2"
    preview = (await api.get(f"/invoices/{first['id']}/reminders")).json()
    assert preview["held"] and {r["status"] for r in preview["reminders"]} == {"held"}

    # Money is untouched and payments still work while held.
    paid = await api.post(f"/invoices/{first['id']}/payments", json={"amount": "100.00"})
    assert paid.status_code == 201 and paid.json()["amount_due"] == "800.00"

    released = await api.post(f"/invoices/{first['id']}/release", json={"reason": "settled on a call"})
    assert released.status_code == 200, released.text
    assert [h["active"] for h in released.json()] == [False]
    assert (await handle.query(InvoiceWorkflow.state)).holds == []
    assert "dunning.hold_released" in [
        e["kind"] for e in (await api.get(f"/invoices/{first['id']}")).json()["timeline"]
    ]
    assert (await api.post(f"/invoices/{first['id']}/release")).status_code == 409

    # A customer-wide hold: its open invoices, and invoices issued while it lasts.
    second = await open_invoice(api, customer["id"])
    on_hold = await api.post(f"/customers/{customer['id']}/hold", json={"reason": "contract dispute"})
    assert on_hold.status_code == 201, on_hold.text
    assert sorted(on_hold.json()["invoices"]) == sorted([first["id"], second["id"]])
    assert (await api.post(f"/customers/{customer['id']}/hold", json={"reason": "twice"})).status_code == 409
    third = await open_invoice(api, customer["id"])
    for invoice in (first, second, third):
        state = await client.get_workflow_handle(invoice["workflow_id"]).query(InvoiceWorkflow.state)
        assert [h.reason for h in state.holds] == ["contract dispute"], invoice["id"]
        holds = (await api.get(f"/invoices/{invoice['id']}")).json()["holds"]
        assert [(h["scope"], h["active"]) for h in holds if h["reason"] == "contract dispute"] == [
            ("customer", True)
        ]
    # A customer-wide hold is released on the customer, not per invoice.
    assert (await api.post(f"/invoices/{third['id']}/release")).status_code == 409
    done = await api.post(f"/customers/{customer['id']}/release")
    assert done.status_code == 200 and not done.json()["hold"]["active"]
    assert sorted(done.json()["invoices"]) == sorted([first["id"], second["id"], third["id"]])
    for invoice in (first, second, third):
        assert (
            await client.get_workflow_handle(invoice["workflow_id"]).query(InvoiceWorkflow.state)
        ).holds == []
    assert (await api.post(f"/customers/{customer['id']}/release")).status_code == 409


async def test_stripe_payment_in_flight_holds_reminders(env) -> None:  # type: ignore[no-untyped-def]
    api, client = env
    customer = (await api.post("/customers", json=customer_body())).json()
    invoice = await open_invoice(api, customer["id"])
    handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])
    objects = send_as.stripe_payment_objects(invoice["id"], 40000)
    intent = objects["payment_intent.succeeded"]
    processing = {**intent, "status": "processing", "amount_received": 0}

    for _ in range(2):  # a redelivery changes nothing
        response = await send(
            api, send_as.stripe_event("payment_intent.processing", processing, STRIPE_SECRET)
        )
        assert response.status_code == 200 and response.json()["status"] == "held", response.text
    state = await handle.query(InvoiceWorkflow.state)
    [hold] = state.holds
    assert hold.kind == "payment" and hold.payment_key == f"stripe:{intent['id']}"
    assert hold.resume_at is not None  # the grace period ends it at the latest
    assert [
        h["kind"] for h in (await api.get(f"/invoices/{invoice['id']}")).json()["holds"] if h["active"]
    ] == ["payment"]

    failed = await send(
        api,
        send_as.stripe_event(
            "payment_intent.payment_failed", {**intent, "status": "requires_payment_method"}, STRIPE_SECRET
        ),
    )
    assert failed.json()["status"] == "released"
    assert (await handle.query(InvoiceWorkflow.state)).holds == []

    # An async Checkout (unpaid at completion) holds too; its payment arriving ends the hold.
    other = send_as.stripe_payment_objects(invoice["id"], 40000)
    session = {**other["checkout.session.completed"], "payment_status": "unpaid"}
    assert (
        await send(api, send_as.stripe_event("checkout.session.completed", session, STRIPE_SECRET))
    ).json()["status"] == "held"
    assert len((await handle.query(InvoiceWorkflow.state)).holds) == 1
    paid = await send(
        api,
        send_as.stripe_event(
            "checkout.session.async_payment_succeeded", {**session, "payment_status": "paid"}, STRIPE_SECRET
        ),
    )
    assert paid.json()["status"] == "recorded", paid.text
    state = await handle.query(InvoiceWorkflow.state)
    assert state.status == "partially_paid" and state.holds == []
    kinds = [e["kind"] for e in (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]]
    assert kinds.count("dunning.hold_placed") == 2 and kinds.count("dunning.hold_released") == 2
