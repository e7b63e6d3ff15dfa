"""The books talk back, end to end: a payment an accountant enters in Xero, QuickBooks Online or
FreshBooks (the provider's stand-in, through its own API, on a real port) reaches invoiceflow by the
provider's signed webhook, or by the poller when webhooks are off, and is recorded once on the invoice's
workflow. Real Temporal dev server, PostgreSQL, SMTP; the API on a real port receiving the webhooks."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.books_workflow import ensure_books_workflow
from tests.accounting.books import PROVIDER_NAMES, Books, books_of
from tests.support import customer_body, eventually, kind_of, to
from worker import build_worker


async def _issue(
    api: httpx.AsyncClient, unit_price: str = "1200.00"
) -> tuple[dict[str, Any], dict[str, Any]]:
    customer = (await api.post("/customers", json=customer_body(currency="USD"))).json()
    created = await api.post(
        "/invoices",
        json={
            "customer_id": customer["id"],
            "lines": [{"description": "Managed network", "unit_price": unit_price}],
        },
    )
    assert created.status_code == 201, created.text
    invoice = created.json()

    async def synced() -> dict[str, Any] | None:
        body = (await api.get(f"/invoices/{invoice['id']}")).json()
        accounting = body.get("accounting") or {}
        return body if accounting.get("status") == "synced" and accounting.get("external_id") else None

    return customer, await eventually(synced, what="invoice synced to the books")


async def _status(api: httpx.AsyncClient, invoice_id: str, status: str, timeout: float) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["status"] == status else None

    return await eventually(probe, timeout=timeout, what=f"invoice {status}")


async def _setup(books: Books, served_api: Any, temporal_env: Any, **overrides: Any) -> Any:
    settings = served_api(**(books.settings_overrides() | overrides))
    books.connect(settings)
    return settings


def _api(settings: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=settings.public_url, headers={"Authorization": f"Bearer {settings.api_token}"}, timeout=30
    )


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
async def test_a_payment_entered_in_the_books_pays_the_invoice_once_by_webhook(
    temporal_env, served_api, mailbox, provider
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with books_of(provider) as books:
        settings = await _setup(books, served_api, temporal_env, accounting_poll_minutes=0)
        async with build_worker(client, settings), _api(settings) as api:
            assert await ensure_books_workflow(client, settings)
            books.webhooks_to(settings.public_url)
            if provider == "freshbooks":  # our receiver answered the verification through FreshBooks' API
                await eventually(
                    lambda: asyncio.sleep(0, books.callbacks_verified()), what="callbacks verified"
                )
            customer, invoice = await _issue(api)
            remote_id = invoice["accounting"]["external_id"]
            total = Decimal(invoice["total"])

            books.enter_payment(remote_id, total)
            paid = await _status(api, invoice["id"], "paid", timeout=10)  # the acceptance bound
            assert [Decimal(p["amount"]) for p in paid["payments"]] == [total]
            assert paid["payments"][0]["reference"] == f"{provider} BANK-4711"
            assert books.state.webhooks.deliveries  # it came by the provider's webhook (polling is off)
            assert paid["amount_due"] == "0.00"
            await asyncio.wait_for(client.get_workflow_handle(invoice["workflow_id"]).result(), 30)

            again = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert len(again["payments"]) == 1  # the recorded payment was not pushed back and found again
            assert books.payments_on(remote_id) == [total]  # the books hold exactly the accountant's one
            mail = [m for m in mailbox.store.list() if to(customer["emails"][0])(m)]
            await eventually(
                lambda: asyncio.sleep(
                    0,
                    any(
                        kind_of(m) == "receipt" for m in mailbox.store.list() if to(customer["emails"][0])(m)
                    ),
                ),
                what="the receipt",
            )
            assert not [m for m in mail if kind_of(m) == "reminder"]
            assert all(d.status == 200 for d in books.state.webhooks.deliveries), (
                books.state.webhooks.deliveries
            )


async def _differences(api: httpx.AsyncClient, invoice_id: str) -> list[dict[str, Any]]:
    found = (await api.get("/accounting/differences", params={"state": "all"})).json()["differences"]
    return [d for d in found if d["invoice_id"] == invoice_id]


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDER_NAMES)
async def test_with_webhooks_off_the_poller_finds_the_payment(temporal_env, served_api, provider) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with books_of(provider) as books:
        settings = await _setup(books, served_api, temporal_env, accounting_poll_minutes=0.05)  # every 3 s
        async with build_worker(client, settings), _api(settings) as api:
            workflow_id = await ensure_books_workflow(client, settings)
            assert workflow_id
            _, invoice = await _issue(api, "800.00")
            remote_id = invoice["accounting"]["external_id"]
            books.enter_payment(remote_id, Decimal("800.00"), reference="WIRE-77")
            paid = await _status(api, invoice["id"], "paid", timeout=15)  # one interval and a little
            assert [p["reference"] for p in paid["payments"]] == [f"{provider} WIRE-77"]
            status = await client.get_workflow_handle(workflow_id).query("status")
            polls = status["polls"]
            await eventually(
                lambda: _polled_more(client, workflow_id, polls + 2), timeout=20, what="two more polls"
            )
            again = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert len(again["payments"]) == 1  # polls that see it again record nothing
            assert books.payments_on(remote_id) == [Decimal("800.00")]
            assert await _differences(api, invoice["id"]) == []
            assert not books.state.webhooks.deliveries


async def _polled_more(client: Any, workflow_id: str, at_least: int) -> bool:
    return (await client.get_workflow_handle(workflow_id).query("status"))["polls"] >= at_least


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDER_NAMES)
async def test_our_own_payment_never_comes_back_and_poll_plus_webhook_record_once(
    temporal_env, served_api, provider
) -> None:  # type: ignore[no-untyped-def]
    """An operator's payment is pushed to the books, whose webhook and poll then report it: it is ours,
    not a second payment. The accountant's payment for the rest, reported by both, is recorded once."""
    client = temporal_env.client
    with books_of(provider) as books:
        settings = await _setup(books, served_api, temporal_env, accounting_poll_minutes=0.05)
        async with build_worker(client, settings), _api(settings) as api:
            workflow_id = await ensure_books_workflow(client, settings)
            books.webhooks_to(settings.public_url)
            if provider == "freshbooks":
                await eventually(
                    lambda: asyncio.sleep(0, books.callbacks_verified()), what="callbacks verified"
                )
            _, invoice = await _issue(api, "1000.00")
            remote_id = invoice["accounting"]["external_id"]
            ours = await api.post(
                f"/invoices/{invoice['id']}/payments",
                json={"amount": "300.00", "reference": "CHEQUE-1"},
                headers={"Idempotency-Key": f"ours-{invoice['id']}"},
            )
            assert ours.status_code == 201, ours.text
            await eventually(
                lambda: asyncio.sleep(0, books.payments_on(remote_id) == [Decimal("300.00")]), what="push"
            )
            polls = (await client.get_workflow_handle(workflow_id).query("status"))["polls"]
            await eventually(lambda: _polled_more(client, workflow_id, polls + 2), timeout=20, what="polls")
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert [p["amount"] for p in body["payments"]] == ["300.00"] and body[
                "status"
            ] == "partially_paid"

            books.enter_payment(remote_id, Decimal("700.00"))
            await _status(api, invoice["id"], "paid", timeout=10)
            polls = (await client.get_workflow_handle(workflow_id).query("status"))["polls"]
            await eventually(lambda: _polled_more(client, workflow_id, polls + 2), timeout=20, what="polls")
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert sorted(p["amount"] for p in body["payments"]) == ["300.00", "700.00"]
            assert sorted(books.payments_on(remote_id)) == [Decimal("300.00"), Decimal("700.00")]
            assert await _differences(api, invoice["id"]) == []
