"""Everything that moves money on an invoice reaches the books, through the real InvoiceWorkflow (Temporal
dev server, API, PostgreSQL, SMTP) into each provider's stand-in over HTTP, and afterwards ``reconcile``
(lines, totals, money paid, amount still due, void state, read back through each provider's API) finds
no difference: a refund of an open invoice's payment, a write-off, a credit note on a paid invoice and
that credit applied to the customer's next invoice."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from accounting.reconcile import reconcile
from tests.accounting.books_env import Books, books
from tests.support import api_client, customer_body, record_history
from worker import build_worker
from workflows.closed_credit_note import closed_credit_note_workflow_id

PROVIDERS = ["xero", "qbo", "freshbooks"]


async def _customer(api) -> str:  # type: ignore[no-untyped-def]
    return (await api.post("/customers", json=customer_body(currency="USD"))).json()["id"]


async def _issue(api, customer_id: str, quantity: str, unit_price: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    created = await api.post(
        "/invoices",
        json={
            "customer_id": customer_id,
            "lines": [{"description": "Managed services", "quantity": quantity, "unit_price": unit_price}],
        },
    )
    assert created.status_code == 201, created.text
    return created.json()


async def _pay(api, invoice_id: str, amount: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    key = uuid.uuid4().hex
    paid = await api.post(
        f"/invoices/{invoice_id}/payments",
        json={"amount": amount, "reference": f"BANK-{key[:6]}"},
        headers={"Idempotency-Key": key},
    )
    assert paid.status_code == 201, paid.text
    return paid.json()


async def _no_differences(b: Books) -> None:
    differences = await reconcile(b.settings)
    assert differences == [], differences


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_refund_of_an_open_invoices_payment_reaches_the_books(
    temporal_env, make_settings, provider: str
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with books(provider, make_settings, client) as b:
        async with build_worker(client, b.settings), api_client(b.settings, client) as api:
            invoice = await _issue(api, await _customer(api), "4", "125.00")
            synced = await b.synced("invoice", invoice["id"])
            payment = await _pay(api, invoice["id"], "300.00")
            await b.synced("payment", str(payment["payment_id"]))
            refund = await api.post(
                f"/invoices/{invoice['id']}/refunds",
                json={
                    "payment_id": str(payment["payment_id"]),
                    "amount": "100.00",
                    "reason": "Returned hardware",
                    "idempotency_key": uuid.uuid4().hex,
                },
            )
            assert refund.status_code == 201, refund.text
            assert (refund.json()["amount_paid"], refund.json()["amount_due"]) == ("200.00", "300.00")
            await b.synced("refund", refund.json()["refund_id"])
            remote = await b.remote(synced.external_id or "")
            assert (remote.amount_paid, remote.amount_due) == (Decimal("200.00"), Decimal("300.00"))
            await _no_differences(b)

            await _pay(api, invoice["id"], "300.00")  # the rest: paid there and here
            await client.get_workflow_handle(invoice["workflow_id"]).result()
            if provider == "xero":
                await record_history(
                    client.get_workflow_handle(invoice["workflow_id"]), "books_refund_synced"
                )
        remote = await b.remote(synced.external_id or "")
        assert (remote.amount_paid, remote.amount_due) == (Decimal("500.00"), Decimal(0))
        await _no_differences(b)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_write_off_reaches_the_books_as_a_bad_debt_credit(
    temporal_env, make_settings, provider: str
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with books(provider, make_settings, client) as b:
        async with build_worker(client, b.settings), api_client(b.settings, client) as api:
            invoice = await _issue(api, await _customer(api), "4", "125.00")
            synced = await b.synced("invoice", invoice["id"])
            await _pay(api, invoice["id"], "100.00")
            written = await api.post(
                f"/invoices/{invoice['id']}/uncollectible", json={"reason": "Client insolvent"}
            )
            assert written.status_code == 200, written.text
            assert written.json()["status"] == "uncollectible"
            await client.get_workflow_handle(invoice["workflow_id"]).result()  # ends once the books have it
            if provider == "xero":
                handle = client.get_workflow_handle(invoice["workflow_id"])
                await record_history(handle, "books_written_off_synced")
        row = b.row("write_off", invoice["id"])
        assert row is not None and row.status == "synced"
        remote = await b.remote(synced.external_id or "")
        assert (remote.amount_paid, remote.amount_due) == (Decimal("100.00"), Decimal(0))
        await _no_differences(b)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_credit_note_on_a_paid_invoice_and_its_credit_on_the_next_invoice_reach_the_books(
    temporal_env, make_settings, provider: str
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with books(provider, make_settings, client) as b:
        async with build_worker(client, b.settings), api_client(b.settings, client) as api:
            customer_id = await _customer(api)
            first = await _issue(api, customer_id, "4", "125.00")
            await b.synced("invoice", first["id"])
            await _pay(api, first["id"], "500.00")
            await client.get_workflow_handle(first["workflow_id"]).result()  # paid: its workflow has ended

            body = {
                "reason": "Service credit for the outage",
                "idempotency_key": uuid.uuid4().hex,
                "lines": [{"description": "Outage credit", "quantity": "1", "unit_price": "50.00"}],
            }
            issued = await api.post(f"/invoices/{first['id']}/credit-notes", json=body)
            assert issued.status_code == 201, issued.text
            note = issued.json()
            assert (note["status"], note["amount_due"], note["credit"]) == ("paid", "0.00", "50.00")
            assert note["credit_note"]["to_customer_credit"] == "50.00"
            again = await api.post(f"/invoices/{first['id']}/credit-notes", json=body)
            assert again.status_code == 200 and again.json()["duplicate"] is True
            await b.synced("credit_note", note["credit_note"]["id"])
            if provider == "xero":
                closed = client.get_workflow_handle(
                    closed_credit_note_workflow_id(first["id"], body["idempotency_key"])
                )
                await closed.result()
                await record_history(closed, "closed_invoice_credit_note_synced")
            await _no_differences(b)

            second = await _issue(api, customer_id, "2", "100.00")  # 200.00, 50.00 of it from the credit
            synced = await b.synced("invoice", second["id"])
            detail = (await api.get(f"/invoices/{second['id']}")).json()
            assert (detail["amount_paid"], detail["amount_due"]) == ("50.00", "150.00")
            credit_payment = next(p for p in detail["payments"] if p["method"] == "customer_credit")
            await b.synced("payment", str(credit_payment["id"]))
            remote = await b.remote(synced.external_id or "")
            assert (remote.amount_paid, remote.amount_due) == (Decimal(0), Decimal("150.00"))
            await _no_differences(b)

            await _pay(api, second["id"], "150.00")
            await client.get_workflow_handle(second["workflow_id"]).result()
        remote = await b.remote(synced.external_id or "")
        assert (remote.amount_paid, remote.amount_due) == (Decimal("150.00"), Decimal(0))
        await _no_differences(b)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_late_fee_added_after_issue_reaches_the_books(time_env, make_settings, provider: str) -> None:  # type: ignore[no-untyped-def]
    """The late fee needs days to pass, so this one runs on the time-skipping test server: the invoice is
    in the books and part paid before it is due; the fee line charged after the due date follows it."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from tests.test_dunning_timers import local, open_invoice, setup, sleep_until

    client = time_env.client
    with books(provider, make_settings, client) as b:
        async with build_worker(client, b.settings), api_client(b.settings, client) as api:
            customer = await setup(
                api,
                "UTC",
                {
                    "name": "Fee",
                    "steps": [{"offset_days": 30, "template": "reminder"}],
                    "late_fee": {"kind": "fixed", "value": "25.00", "after_days": 5},
                },
            )
            today = (await time_env.get_current_time()).astimezone(ZoneInfo("UTC")).date()
            due = today + timedelta(days=5)
            invoice, handle = await open_invoice(api, client, customer, due)
            synced = await b.synced("invoice", invoice["id"])
            await _pay(api, invoice["id"], "400.00")
            await b.synced(
                "payment", (await api.get(f"/invoices/{invoice['id']}")).json()["payments"][0]["id"]
            )
            before = await b.remote(synced.external_id or "")
            assert (before.total, before.amount_due) == (Decimal("2400.00"), Decimal("2000.00"))

            await sleep_until(time_env, local(due + timedelta(days=6), "UTC"))
            detail = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert (detail["total"], detail["amount_due"]) == ("2425.00", "2025.00")

            async def resynced() -> bool:
                row = b.row("invoice", invoice["id"])
                return (
                    row is not None
                    and row.status == "synced"
                    and row.revision is not None
                    and (await b.remote(synced.external_id or "")).total == Decimal("2425.00")
                )

            from tests.support import eventually

            await eventually(resynced, timeout=45, what="the fee line in the books")
            remote = await b.remote(synced.external_id or "")
            assert [line.description for line in remote.lines][-1].startswith("Late fee")
            assert (remote.amount_paid, remote.amount_due) == (Decimal("400.00"), Decimal("2025.00"))
            await _no_differences(b)
            await handle.cancel()
