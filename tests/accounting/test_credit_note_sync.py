"""Credit notes reach the books through the invoice's workflow: into the Xero stand-in as one ACCRECCREDIT
credit note allocated to the synced invoice (so a later payment of the rest is accepted there); a
provider whose connector has no credit notes yet (QBO) records the sync as ``skipped`` with the reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from accounting.tokens import TokenGrant, save_connection, token_cipher
from standins.server import serve
from tests.accounting.test_invoice_sync_e2e import _accounting, _invoice, xero, xero_settings  # noqa: F401 (fixture)
from tests.support import api_client, eventually
from worker import build_worker


async def _credit_note_accounting(api, invoice_id: str, status: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        notes = body["credit_notes"]
        return body if notes and notes[0]["accounting"] and notes[0]["accounting"]["status"] == status else None

    return await eventually(probe, what=f"credit note accounting {status}")


async def test_a_credit_note_is_in_xero_once_and_allocated_to_its_invoice(temporal_env, make_settings, xero) -> None:  # type: ignore[no-untyped-def]
    state, served = xero
    client = temporal_env.client
    settings = xero_settings(make_settings, client, state, served)
    async with build_worker(client, settings), api_client(settings, client) as api:
        invoice = await _invoice(api, [{"description": "Platform work", "quantity": "10", "unit_price": "100.00", "tax_rate": "20"}])
        number = (await _accounting(api, invoice["id"], "synced"))["number"]
        tag = uuid.uuid4().hex[:8]
        paid = await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": "300.00"}, headers={"Idempotency-Key": f"cn-1-{tag}"})
        assert paid.status_code == 201, paid.text
        issued = await api.post(f"/invoices/{invoice['id']}/credit-notes", json={
            "reason": "Two and a half days not worked", "idempotency_key": f"cn-{tag}",
            "lines": [{"description": "Platform work not delivered", "quantity": "2.5", "unit_price": "100.00", "tax_rate": "20"}],
        })
        assert issued.status_code == 201, issued.text
        assert issued.json()["amount_due"] == "600.00"  # 1,200 − 300 paid − 300 credited

        body = await _credit_note_accounting(api, invoice["id"], "synced")
        note = body["credit_notes"][0]
        [remote] = [c for c in state.credit_notes.values() if c["CreditNoteNumber"] == note["number"]]
        assert remote["Type"] == "ACCRECCREDIT" and remote["CreditNoteID"] == note["accounting"]["external_id"]
        assert Decimal(str(remote["Total"])) == Decimal("300.00")
        [remote_invoice] = [i for i in state.invoices.values() if i.get("InvoiceNumber") == number]
        assert [Decimal(str(a["Amount"])) for a in remote["Allocations"]] == [Decimal("300.00")]
        assert remote["Allocations"][0]["Invoice"]["InvoiceID"] == remote_invoice["InvoiceID"]

        rest = await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": "600.00"}, headers={"Idempotency-Key": f"cn-2-{tag}"})
        assert rest.status_code == 201 and rest.json()["status"] == "paid"
        await client.get_workflow_handle(invoice["workflow_id"]).result()  # ends once the books have it all
    remote_invoice = state.invoices[remote_invoice["InvoiceID"]]
    assert remote_invoice["Status"] == "PAID" and Decimal(str(remote_invoice["AmountDue"])) == 0
    assert sum(1 for c in state.credit_notes.values() if c["CreditNoteNumber"] == note["number"]) == 1


async def test_a_provider_without_credit_notes_records_the_sync_as_skipped(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS

    dev = PROVIDERS["qbo"]
    app, _ = dev.app()
    with serve(app) as served:
        overrides = {key.removeprefix("INVOICEFLOW_").lower(): value for key, value in dev.env(served.base_url).items()}
        overrides |= {"accounting_sales_account": "1", "accounting_tax_codes": "0=NON"}
        client = temporal_env.client
        settings = make_settings(client, accounting_provider="qbo", accounting_timeout_s=5.0, **overrides)
        save_connection(settings.require_database_url(), token_cipher(settings), "qbo", dev.tenant,
                        TokenGrant(DEV_TOKEN, DEV_REFRESH_TOKEN, datetime.now(UTC) + timedelta(hours=1)))
        async with build_worker(client, settings), api_client(settings, client) as api:
            invoice = await _invoice(api, [{"description": "Audit", "unit_price": "500.00"}])
            await _accounting(api, invoice["id"], "synced")
            issued = await api.post(f"/invoices/{invoice['id']}/credit-notes",
                                    json={"reason": "Goodwill", "idempotency_key": "g", "lines": [{"description": "Goodwill", "unit_price": "50.00"}]})
            assert issued.status_code == 201, issued.text
            body = await _credit_note_accounting(api, invoice["id"], "skipped")
            assert "not synced to qbo yet" in body["credit_notes"][0]["accounting"]["error"]
            assert body["accounting"]["status"] == "synced"  # the invoice itself is in the books
