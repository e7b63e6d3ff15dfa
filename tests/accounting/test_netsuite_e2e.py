"""NetSuite end to end: the real InvoiceWorkflow (Temporal dev server), API, PostgreSQL and SMTP, syncing
into the NetSuite stand-in over HTTP with OAuth 2.0 M2M; `invoiceflow reconcile` reads it back."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from accounting.reconcile import reconcile
from tests.accounting import netsuite_support
from tests.accounting.netsuite_support import NetSuite
from tests.support import api_client, customer_body, eventually
from worker import build_worker

netsuite = netsuite_support.netsuite  # the fixture

D = Decimal
LINES = [
    {"description": "Platform migration", "quantity": "12.5", "unit_price": "150.00", "tax_rate": "20"},
    {"description": "Travel", "quantity": "1", "unit_price": "99.99", "tax_rate": "0"},
]  # 1,875.00 + 375.00 tax + 99.99 = 2,349.99


async def _invoice(api: Any) -> dict[str, Any]:
    customer = (await api.post("/customers", json=customer_body(currency="USD"))).json()
    created = await api.post("/invoices", json={"customer_id": customer["id"], "lines": LINES})
    assert created.status_code == 201, created.text
    return created.json()


async def _synced(api: Any, invoice_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["accounting"] and body["accounting"]["status"] == "synced" else None

    return await eventually(probe, what="accounting synced", timeout=60)


async def _pay(api: Any, invoice_id: str, amount: str) -> None:
    key = f"WIRE-{uuid.uuid4().hex[:8]}"
    paid = await api.post(
        f"/invoices/{invoice_id}/payments",
        json={"amount": amount, "reference": key},
        headers={"Idempotency-Key": key},
    )
    assert paid.status_code == 201, paid.text


async def _reconcile_cli(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from invoiceflow import cli

    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    return await asyncio.to_thread(CliRunner().invoke, cli.app, ["reconcile"])


async def test_an_issued_and_paid_invoice_reaches_netsuite_once_and_reconciles(
    temporal_env, make_settings, mailbox, netsuite: NetSuite, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, accounting_timeout_s=5.0, **netsuite.env())
    books = netsuite.state.books
    async with build_worker(client, settings), api_client(settings, client) as api:
        invoice = await _invoice(api)
        synced = await _synced(api, invoice["id"])
        assert synced["accounting"]["provider"] == "netsuite"
        [remote] = books.records["invoice"].values()
        assert remote["id"] == synced["accounting"]["external_id"] and remote["tranId"] == synced["number"]
        assert remote["externalId"] == invoice["id"]
        assert [
            (line["description"], line["quantity"], line["rate"], line["taxCode"]) for line in remote["lines"]
        ] == [
            ("Platform migration", D("12.5"), D("150.00"), "5"),
            ("Travel", D(1), D("99.99"), ""),
        ]
        assert remote["total"] == D(synced["total"]) == D("2349.99")
        assert len(books.records["customer"]) == 1
        await _pay(api, invoice["id"], "2349.99")
        await client.get_workflow_handle(invoice["workflow_id"]).result()  # ends once the books have it
    [payment] = books.records["customerpayment"].values()
    assert payment["payment"] == D("2349.99") and payment["customer"] == remote["entity"]
    assert [(a.invoice_id, a.amount) for a in books.applications] == [(remote["id"], D("2349.99"))]
    assert books.remaining(remote["id"]) == 0
    assert await reconcile(settings) == []
    result = await _reconcile_cli(settings, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "every synced invoice matches netsuite" in result.output


@pytest.mark.slow
async def test_a_429_storm_and_timeouts_after_commit_still_give_one_invoice_and_one_payment(
    temporal_env, make_settings, mailbox, netsuite: NetSuite
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, accounting_timeout_s=2.0, **netsuite.env())
    state, books = netsuite.state, netsuite.state.books
    async with build_worker(client, settings), api_client(settings, client) as api:
        state.faults.inject_429(6, retry_after=1)  # a storm, waited out by the connector and the retries

        async def stormed() -> bool:
            return _count(state, 429) >= 6

        invoice = await _invoice(api)
        await eventually(stormed, what="the 429 storm", timeout=60)
        state.faults.commit_then_hang(4.0, count=1)  # the next write commits, then its answer is late
        synced = await _synced(api, invoice["id"])
        [first_hang] = state.hung
        state.faults.commit_then_hang(4.0, count=1)  # and again for the payment
        await _pay(api, invoice["id"], "2349.99")
        await client.get_workflow_handle(invoice["workflow_id"]).result()
    assert first_hang.startswith("PUT /services/rest/record/v1/")
    assert state.hung[1].startswith("PUT /services/rest/record/v1/customerpayment/eid:")
    # The retries found what the timed-out writes had committed: one of each, nothing applied twice.
    assert len(books.records["customer"]) == 1 and len(books.records["invoice"]) == 1
    assert len(books.records["customerpayment"]) == 1 and len(books.applications) == 1
    payment_reads = [c.status for c in state.calls_to("GET", "/customerpayment/eid:")]
    assert payment_reads[:2] == [404, 200] and len(state.calls_to("PUT", "/customerpayment/eid:")) == 1
    assert books.remaining(synced["accounting"]["external_id"]) == 0
    assert await reconcile(settings) == []


def _count(state: Any, status: int) -> int:
    return sum(1 for c in state.calls if c.status == status)
