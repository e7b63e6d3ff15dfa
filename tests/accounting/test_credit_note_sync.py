"""Credit notes reach the books through the invoice's workflow: into the Xero stand-in as one ACCRECCREDIT
credit note allocated to the synced invoice (so a later payment of the rest is accepted there); into the
QBO stand-in as a CreditMemo applied by a zero payment, into the FreshBooks one as a credit note applied by
a "Credit" payment."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from accounting.reconcile import reconcile
from tests.accounting.books import books_of
from tests.accounting.test_invoice_sync_e2e import (  # noqa: F401, F811 (fixtures)
    _accounting,
    _invoice,
    xero,
    xero_settings,
)
from tests.support import api_client, eventually
from worker import build_worker


async def _credit_note_accounting(api, invoice_id: str, status: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        notes = body["credit_notes"]
        return (
            body if notes and notes[0]["accounting"] and notes[0]["accounting"]["status"] == status else None
        )

    return await eventually(probe, what=f"credit note accounting {status}")


async def test_a_credit_note_is_in_xero_once_and_allocated_to_its_invoice(
    temporal_env,
    make_settings,
    xero,  # noqa: F811 (the fixture)
) -> None:  # type: ignore[no-untyped-def]
    state, served = xero
    client = temporal_env.client
    settings = xero_settings(make_settings, client, state, served)
    async with build_worker(client, settings), api_client(settings, client) as api:
        invoice = await _invoice(
            api,
            [{"description": "Platform work", "quantity": "10", "unit_price": "100.00", "tax_rate": "20"}],
        )
        number = (await _accounting(api, invoice["id"], "synced"))["number"]
        tag = uuid.uuid4().hex[:8]
        paid = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "300.00"},
            headers={"Idempotency-Key": f"cn-1-{tag}"},
        )
        assert paid.status_code == 201, paid.text
        issued = await api.post(
            f"/invoices/{invoice['id']}/credit-notes",
            json={
                "reason": "Two and a half days not worked",
                "idempotency_key": f"cn-{tag}",
                "lines": [
                    {
                        "description": "Platform work not delivered",
                        "quantity": "2.5",
                        "unit_price": "100.00",
                        "tax_rate": "20",
                    }
                ],
            },
        )
        assert issued.status_code == 201, issued.text
        assert issued.json()["amount_due"] == "600.00"  # 1,200 − 300 paid − 300 credited

        body = await _credit_note_accounting(api, invoice["id"], "synced")
        note = body["credit_notes"][0]
        [remote] = [c for c in state.credit_notes.values() if c["CreditNoteNumber"] == note["number"]]
        assert (
            remote["Type"] == "ACCRECCREDIT" and remote["CreditNoteID"] == note["accounting"]["external_id"]
        )
        assert Decimal(str(remote["Total"])) == Decimal("300.00")
        [remote_invoice] = [i for i in state.invoices.values() if i.get("InvoiceNumber") == number]
        assert [Decimal(str(a["Amount"])) for a in remote["Allocations"]] == [Decimal("300.00")]
        assert remote["Allocations"][0]["Invoice"]["InvoiceID"] == remote_invoice["InvoiceID"]

        rest = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "600.00"},
            headers={"Idempotency-Key": f"cn-2-{tag}"},
        )
        assert rest.status_code == 201 and rest.json()["status"] == "paid"
        await client.get_workflow_handle(invoice["workflow_id"]).result()  # ends once the books have it all
    remote_invoice = state.invoices[remote_invoice["InvoiceID"]]
    assert remote_invoice["Status"] == "PAID" and Decimal(str(remote_invoice["AmountDue"])) == 0
    assert sum(1 for c in state.credit_notes.values() if c["CreditNoteNumber"] == note["number"]) == 1


def _qbo_books(state: Any, invoice_number: str, note_number: str) -> tuple[Decimal, Decimal, int, Decimal]:
    """(credit total, credit left unapplied, how many with this number, invoice balance) in the QBO
    stand-in."""
    memos = [m for m in state.credit_memos.values() if m["DocNumber"] == note_number]
    [invoice] = [i for i in state.invoices.values() if i["DocNumber"] == invoice_number]
    return memos[0]["TotalAmt"], memos[0]["Balance"], len(memos), invoice["Balance"]


def _freshbooks_books(
    state: Any, invoice_number: str, note_number: str
) -> tuple[Decimal, Decimal, int, Decimal]:
    notes = [n for n in state.credit_notes.values() if n["credit_number"] == note_number]
    [invoice] = [i for i in state.invoices.values() if i["invoice_number"] == invoice_number]
    total = Decimal(notes[0]["amount"]["amount"])
    return (
        total,
        total - Decimal(notes[0]["paid"]["amount"]),
        len(notes),
        Decimal(invoice["outstanding"]["amount"]),
    )


@pytest.mark.parametrize("provider", ["qbo", "freshbooks"])
async def test_a_credit_note_is_in_qbo_and_freshbooks_once_and_applied_to_its_invoice(
    temporal_env,
    make_settings,
    provider: str,  # type: ignore[no-untyped-def]
) -> None:
    books = _qbo_books if provider == "qbo" else _freshbooks_books
    # An organisation of this test's own: ``reconcile`` reads every invoice synced to the organisation, and
    # the database is shared with the other tests of this process.
    with books_of(provider) as organisation:
        state = organisation.state
        overrides = organisation.settings_overrides()
        if provider == "qbo":
            overrides |= {"accounting_sales_account": "1", "accounting_tax_codes": "0=NON"}
        client = temporal_env.client
        settings = make_settings(client, **overrides)
        organisation.connect(settings)
        async with build_worker(client, settings), api_client(settings, client) as api:
            invoice = await _invoice(api, [{"description": "Audit", "quantity": "4", "unit_price": "125.00"}])
            number = (await _accounting(api, invoice["id"], "synced"))["number"]
            tag = uuid.uuid4().hex[:8]
            paid = await api.post(
                f"/invoices/{invoice['id']}/payments",
                json={"amount": "100.00"},
                headers={"Idempotency-Key": f"cn-1-{tag}"},
            )
            assert paid.status_code == 201, paid.text
            issued = await api.post(
                f"/invoices/{invoice['id']}/credit-notes",
                json={
                    "reason": "Goodwill",
                    "idempotency_key": f"g-{tag}",
                    "lines": [{"description": "Goodwill", "quantity": "2", "unit_price": "25.00"}],
                },
            )
            assert issued.status_code == 201, issued.text
            assert issued.json()["amount_due"] == "350.00"  # 500 − 100 paid − 50 credited

            body = await _credit_note_accounting(api, invoice["id"], "synced")
            note = body["credit_notes"][0]
            assert note["accounting"]["provider"] == provider and note["accounting"]["external_id"]
            assert books(state, number, note["number"]) == (
                Decimal("50.00"),
                Decimal(0),
                1,
                Decimal("350.00"),
            )

            rest = await api.post(
                f"/invoices/{invoice['id']}/payments",
                json={"amount": "350.00"},
                headers={"Idempotency-Key": f"cn-2-{tag}"},
            )
            assert rest.status_code == 201 and rest.json()["status"] == "paid"
            await client.get_workflow_handle(
                invoice["workflow_id"]
            ).result()  # ends once the books have it all
        assert books(state, number, note["number"]) == (Decimal("50.00"), Decimal(0), 1, Decimal(0))
        assert len(state.payments) == 3  # two payments and one application of the credit
        assert await reconcile(settings) == []  # the credit applied there is not counted as money paid
