"""Accounting sync through the real InvoiceWorkflow (Temporal dev server, API, PostgreSQL) into the Xero
stand-in over HTTP: the issued invoice appears once with every line, each payment once, and a mapping
the books refuse shows as sync_failed until an operator fixes it and retries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from accounting.tokens import TokenGrant, save_connection, token_cipher
from standins.accounting.xero import PREFIX, TOKEN_PATH, XeroState, create_xero_app
from standins.server import ServedApp, serve
from tests.support import api_client, customer_body, eventually, record_history
from worker import build_worker

TOKEN = "xero-token"


@pytest.fixture
def xero() -> Iterator[tuple[XeroState, ServedApp]]:
    state = XeroState(tenant_id=f"tenant-{uuid.uuid4().hex[:8]}", tokens={TOKEN})
    app, _ = create_xero_app(state)
    with serve(app) as served:
        yield state, served


def xero_settings(make_settings, client, state: XeroState, served: ServedApp, **overrides: Any):  # type: ignore[no-untyped-def]
    settings = make_settings(
        client,
        accounting_provider="xero",
        xero_base_url=served.base_url + PREFIX,
        xero_token_url=served.base_url + TOKEN_PATH,
        xero_tenant_id=state.tenant_id,
        xero_client_id="xero-client",
        xero_client_secret="xero-secret",
        **({"accounting_tax_codes": "20=OUTPUT2,0=NONE", "accounting_timeout_s": 5.0} | overrides),
    )
    state.oauth.add_refresh_token("rt-1")
    save_connection(
        settings.require_database_url(),
        token_cipher(settings),
        "xero",
        state.tenant_id,
        TokenGrant(TOKEN, "rt-1", datetime.now(UTC) + timedelta(hours=1)),
    )
    return settings


async def _invoice(api, lines: list[dict[str, str]]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    customer = (await api.post("/customers", json=customer_body(currency="USD"))).json()
    created = await api.post("/invoices", json={"customer_id": customer["id"], "lines": lines})
    assert created.status_code == 201, created.text
    return created.json()


async def _accounting(api, invoice_id: str, status: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["accounting"] and body["accounting"]["status"] == status else None

    return await eventually(probe, what=f"accounting {status}")


async def test_issued_invoice_and_payments_reach_xero_once(temporal_env, make_settings, xero) -> None:  # type: ignore[no-untyped-def]
    state, served = xero
    client = temporal_env.client
    settings = xero_settings(make_settings, client, state, served)
    async with build_worker(client, settings), api_client(settings, client) as api:
        invoice = await _invoice(
            api,
            [
                {
                    "description": "Platform migration",
                    "quantity": "12.5",
                    "unit_price": "150.00",
                    "tax_rate": "20",
                },
                {"description": "Travel", "quantity": "1", "unit_price": "99.99", "tax_rate": "0"},
            ],
        )
        synced = await _accounting(api, invoice["id"], "synced")
        assert synced["accounting"]["provider"] == "xero" and synced["accounting"]["external_id"]
        [remote] = [i for i in state.invoices.values() if i.get("InvoiceNumber") == synced["number"]]
        assert [
            (l["Description"], Decimal(str(l["Quantity"])), Decimal(str(l["UnitAmount"])))
            for l in remote["LineItems"]
        ] == [
            ("Platform migration", Decimal("12.5"), Decimal("150.00")),
            ("Travel", Decimal(1), Decimal("99.99")),
        ]
        assert (
            Decimal(str(remote["Total"])) == Decimal(synced["total"]) == Decimal("2349.99")
        )  # 1875 + 20 % = 2250, + 99.99

        tag = uuid.uuid4().hex[:8]
        for key, amount in (
            (f"WIRE-1-{tag}", "1000.00"),
            (f"WIRE-1-{tag}", "1000.00"),
            (f"WIRE-2-{tag}", "1349.99"),
        ):
            paid = await api.post(
                f"/invoices/{invoice['id']}/payments",
                json={"amount": amount, "reference": key},
                headers={"Idempotency-Key": key},
            )
            assert paid.status_code in (200, 201), paid.text
        handle = client.get_workflow_handle(invoice["workflow_id"])
        await handle.result()  # the workflow ends only once the books have every payment
        await record_history(handle, "lean_life_synced_then_paid")
        payments = [p for p in state.payments.values() if p["Invoice"]["InvoiceID"] == remote["InvoiceID"]]
        assert sorted(Decimal(str(p["Amount"])) for p in payments) == [Decimal("1000.00"), Decimal("1349.99")]
        assert state.invoices[remote["InvoiceID"]]["Status"] == "PAID"
        assert sum(1 for i in state.invoices.values() if i.get("InvoiceNumber") == synced["number"]) == 1


async def test_a_refused_mapping_is_visible_and_an_operator_retry_resumes(
    temporal_env, make_settings, xero
) -> None:  # type: ignore[no-untyped-def]
    state, served = xero
    client = temporal_env.client
    settings = xero_settings(make_settings, client, state, served, accounting_sales_account="4711")
    async with build_worker(client, settings), api_client(settings, client) as api:
        invoice = await _invoice(
            api, [{"description": "Support", "quantity": "1", "unit_price": "500.00", "tax_rate": "20"}]
        )
        failed = await _accounting(api, invoice["id"], "sync_failed")
        assert "4711" in (failed["accounting"]["error"] or "")
        assert failed["status"] == "open"  # the client still got the invoice; only the books wait
        state_query = await client.get_workflow_handle(invoice["workflow_id"]).query("state")
        assert state_query["accounting_status"] == "sync_failed"

        state.add_account("4711", "Consulting revenue", "REVENUE")
        retried = await api.post(f"/invoices/{invoice['id']}/accounting/retry")
        assert retried.status_code == 202
        done = await _accounting(api, invoice["id"], "synced")
        assert sum(1 for i in state.invoices.values() if i.get("InvoiceNumber") == done["number"]) == 1
        await record_history(
            client.get_workflow_handle(invoice["workflow_id"]), "accounting_sync_failed_then_retried"
        )


@pytest.mark.parametrize("provider", ["xero", "qbo", "freshbooks"])
async def test_each_provider_end_to_end_through_the_workflow(
    temporal_env, make_settings, mailbox, provider
) -> None:  # type: ignore[no-untyped-def]
    """issue → the invoice at the provider with the same lines and totals → two payments → paid there,
    read back through the provider's API by the connector's own drift reader."""
    from accounting.connection import open_connection
    from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS

    dev = PROVIDERS[provider]
    app, state = dev.app()
    with serve(app) as served:
        env = dev.env(served.base_url)
        overrides = {key.removeprefix("INVOICEFLOW_").lower(): value for key, value in env.items()}
        if provider == "qbo":
            overrides["accounting_sales_account"] = "1"
            overrides["accounting_tax_codes"] = "0=NON"
        client = temporal_env.client
        settings = make_settings(client, accounting_provider=provider, accounting_timeout_s=5.0, **overrides)
        save_connection(
            settings.require_database_url(),
            token_cipher(settings),
            provider,
            dev.tenant,
            TokenGrant(DEV_TOKEN, DEV_REFRESH_TOKEN, datetime.now(UTC) + timedelta(hours=1)),
        )
        async with build_worker(client, settings), api_client(settings, client) as api:
            invoice = await _invoice(
                api,
                [
                    {"description": "Network design", "quantity": "3", "unit_price": "1250.00"},
                    {"description": "Cabling", "quantity": "0.5", "unit_price": "333.33"},
                ],
            )
            synced = await _accounting(api, invoice["id"], "synced")
            tag = uuid.uuid4().hex[:8]
            for key, amount in (
                (f"W-1-{tag}", "2000.00"),
                (f"W-1-{tag}", "2000.00"),
                (f"W-2-{tag}", "1916.67"),
            ):
                paid = await api.post(
                    f"/invoices/{invoice['id']}/payments",
                    json={"amount": amount, "reference": key},
                    headers={"Idempotency-Key": key},
                )
                assert paid.status_code in (200, 201), paid.text
            await client.get_workflow_handle(invoice["workflow_id"]).result()
            connection = open_connection(settings, dev.tenant)
            try:
                remote = await connection.connector.fetch_invoice(synced["accounting"]["external_id"])
            finally:
                await connection.aclose()
    assert [(l.description, l.quantity, l.unit_price) for l in remote.lines] == [
        ("Network design", Decimal(3), Decimal("1250.00")),
        ("Cabling", Decimal("0.5"), Decimal("333.33")),
    ]
    assert remote.total == Decimal("3916.67") == Decimal(synced["total"])  # 3750 + 166.665 → 166.67
    assert remote.amount_paid == Decimal("3916.67") and remote.amount_due == 0
    assert sum(1 for _ in state.invoices.values()) == 1 and len(state.payments) == 2


async def test_faults_on_the_way_still_give_one_invoice_and_one_payment(
    temporal_env, make_settings, xero
) -> None:  # type: ignore[no-untyped-def]
    """The books are down (503), then throttle (429), then commit a write and time out, then the access
    token expires: the workflow's retries and the provider's idempotency leave one invoice, one payment."""
    state, served = xero
    client = temporal_env.client
    settings = xero_settings(make_settings, client, state, served, accounting_timeout_s=2.0)
    async with build_worker(client, settings), api_client(settings, client) as api:
        state.faults.unavailable_for(3)
        invoice = await _invoice(
            api,
            [{"description": "Incident response", "quantity": "4", "unit_price": "210.00", "tax_rate": "0"}],
        )
        await eventually(lambda: _calls(state, 503), what="the stand-in refusing with 503")
        state.faults.inject_429(3, retry_after=1)
        state.faults.commit_then_hang(4, count=1)
        synced = await _accounting(api, invoice["id"], "synced")
        state.core.tokens.expire(TOKEN)
        state.oauth.add_refresh_token("rt-2")
        tag = uuid.uuid4().hex[:8]
        paid = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "840.00", "reference": "W"},
            headers={"Idempotency-Key": f"fault-{tag}"},
        )
        assert paid.status_code == 201, paid.text
        await client.get_workflow_handle(invoice["workflow_id"]).result()
    statuses = [call.status for call in state.calls]
    assert {503, 429, 401} <= set(statuses), statuses  # every fault was met on the way
    assert len(state.contacts) == 1  # the contact write that committed and then timed out was not made twice
    mine = [i for i in state.invoices.values() if i.get("InvoiceNumber") == synced["number"]]
    assert len(mine) == 1
    assert len([p for p in state.payments.values() if p["Invoice"]["InvoiceID"] == mine[0]["InvoiceID"]]) == 1


async def _calls(state: XeroState, status: int) -> bool:
    return any(getattr(call, "status", None) == status for call in state.calls)


@pytest.mark.parametrize("provider", ["xero", "qbo", "freshbooks"])
async def test_discounted_lines_reach_the_books_at_their_net_amounts(
    temporal_env, make_settings, provider
) -> None:  # type: ignore[no-untyped-def]
    from accounting.connection import open_connection
    from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS

    dev = PROVIDERS[provider]
    app, state = dev.app()
    with serve(app) as served:
        overrides = {
            key.removeprefix("INVOICEFLOW_").lower(): value for key, value in dev.env(served.base_url).items()
        }
        if provider == "qbo":
            overrides |= {"accounting_sales_account": "1", "accounting_tax_codes": "0=NON"}
        client = temporal_env.client
        settings = make_settings(client, accounting_provider=provider, accounting_timeout_s=5.0, **overrides)
        save_connection(
            settings.require_database_url(),
            token_cipher(settings),
            provider,
            dev.tenant,
            TokenGrant(DEV_TOKEN, DEV_REFRESH_TOKEN, datetime.now(UTC) + timedelta(hours=1)),
        )
        async with build_worker(client, settings), api_client(settings, client) as api:
            invoice = await _invoice(
                api,
                [
                    {
                        "description": "Workshop",
                        "quantity": "2",
                        "unit_price": "1250.00",
                        "discount_percent": "10",
                    },
                    {
                        "description": "Licence",
                        "quantity": "3",
                        "unit_price": "100.00",
                        "discount_amount": "10.00",
                    },
                ],
            )
            synced = await _accounting(api, invoice["id"], "synced")
            connection = open_connection(settings, dev.tenant)
            try:
                remote = await connection.connector.fetch_invoice(synced["accounting"]["external_id"])
            finally:
                await connection.aclose()
    # 2 × 1,250 − 10 % = 2,250 → 2 × 1,125.00; 3 × 100 − 10 = 290 (not a whole cent per unit) → 1 × 290.
    assert [(l.quantity, l.unit_price, l.line_amount) for l in remote.lines] == [
        (Decimal(2), Decimal("1125.00"), Decimal("2250.00")),
        (Decimal(1), Decimal("290.00"), Decimal("290.00")),
    ]
    assert "less" in remote.lines[1].description and remote.total == Decimal(synced["total"]) == Decimal(
        "2540.00"
    )
