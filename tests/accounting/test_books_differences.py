"""What the books change that invoiceflow never applies silently: a void, a new total, a credit note and
a deleted payment become differences (``GET /accounting/differences``), each decided with one call;
accepting a void voids our invoice through its workflow, the rest is acknowledged."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.books_workflow import ensure_books_workflow
from tests.accounting.books import PROVIDER_NAMES, books_of
from tests.accounting.test_books_inbound import _api, _issue, _setup, _status
from tests.support import eventually
from worker import build_worker


async def _open_difference(api: httpx.AsyncClient, invoice_id: str, kind: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = (await api.get("/accounting/differences")).json()["differences"]
        return next((d for d in found if d["invoice_id"] == invoice_id and d["kind"] == kind), None)

    return await eventually(probe, timeout=20, what=f"a {kind} difference")


VOID = {
    "xero": lambda b, rid: b._call(
        "POST", f"/api.xro/2.0/Invoices/{rid}", {"Invoices": [{"InvoiceID": rid, "Status": "VOIDED"}]}
    ),
    "qbo": lambda b, rid: b._call(
        "POST",
        "/v3/company/{t}/invoice?operation=void",
        {"Id": rid, "SyncToken": b.state.invoices[rid]["SyncToken"]},
    ),
    "freshbooks": lambda b, rid: b._call(
        "PUT", f"/accounting/account/{{t}}/invoices/invoices/{rid}", {"invoice": {"vis_state": 1}}
    ),
}


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
async def test_a_void_in_the_books_waits_for_an_operator_then_voids_ours(
    temporal_env, served_api, provider
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with books_of(provider) as books:
        settings = await _setup(books, served_api, temporal_env, accounting_poll_minutes=0.05)
        async with build_worker(client, settings), _api(settings) as api:
            await ensure_books_workflow(client, settings)
            _, invoice = await _issue(api, "450.00")
            VOID[provider](books, invoice["accounting"]["external_id"])
            difference = await _open_difference(api, invoice["id"], "invoice_voided")
            assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "open"  # not applied
            assert difference["accept_applies"] is True

            accepted = await api.post(
                f"/accounting/differences/{difference['id']}/accept", json={"note": "agreed"}
            )
            assert accepted.status_code == 200, accepted.text
            assert accepted.json()["status"] == "accepted"
            await _status(api, invoice["id"], "void", timeout=10)
            twice = await api.post(f"/accounting/differences/{difference['id']}/reject")
            assert twice.status_code == 409  # one decision per difference
            found = (await api.get("/accounting/differences")).json()["differences"]
            assert all(d["id"] != difference["id"] for d in found)  # no longer open


async def test_xero_credit_note_new_total_and_deleted_payment_are_differences(
    temporal_env, served_api
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with books_of("xero") as books:
        settings = await _setup(books, served_api, temporal_env, accounting_poll_minutes=0.05)
        async with build_worker(client, settings), _api(settings) as api:
            await ensure_books_workflow(client, settings)
            books.webhooks_to(settings.public_url)
            _, invoice = await _issue(api, "1000.00")
            remote_id = invoice["accounting"]["external_id"]
            payment_id = books.enter_payment(remote_id, Decimal("400.00"))
            await _status(api, invoice["id"], "partially_paid", timeout=10)

            books._call("POST", f"/api.xro/2.0/Payments/{payment_id}", {"Payments": [{"Status": "DELETED"}]})
            deleted = await _open_difference(api, invoice["id"], "payment_deleted")
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert [p["amount"] for p in body["payments"]] == ["400.00"]  # not un-recorded silently

            remote = books.state.invoices[remote_id]
            first = remote["LineItems"][0]
            line = {
                "Description": first["Description"],
                "Quantity": "1",
                "UnitAmount": "900.00",
                "AccountCode": first["AccountCode"],
                "TaxType": first["TaxType"],
            }
            books._call(
                "POST",
                f"/api.xro/2.0/Invoices/{remote_id}",
                {"Invoices": [{"InvoiceID": remote_id, "LineItems": [line]}]},
            )
            changed = await _open_difference(api, invoice["id"], "amount_changed")
            assert changed["data"] == {"theirs": "900.00", "ours": "1000.00"}

            contact_id = remote["Contact"]["ContactID"]
            books._call(
                "PUT",
                "/api.xro/2.0/CreditNotes",
                {
                    "CreditNotes": [
                        {
                            "Type": "ACCRECCREDIT",
                            "Contact": {"ContactID": contact_id},
                            "Date": remote["DateString"][:10] if remote.get("DateString") else "2026-12-01",
                            "CurrencyCode": "USD",
                            "LineItems": [
                                {
                                    "Description": "Goodwill",
                                    "Quantity": 1,
                                    "UnitAmount": "50.00",
                                    "AccountCode": "200",
                                    "TaxType": "NONE",
                                }
                            ],
                        }
                    ]
                },
            )
            found = await eventually(lambda: _kinds(api), timeout=20, what="the credit note difference")
            assert "credit_note" in found

            for difference, action in ((deleted, "accept"), (changed, "reject")):
                decided = await api.post(f"/accounting/differences/{difference['id']}/{action}")
                assert decided.status_code == 200, decided.text
                assert decided.json()["status"] == ("accepted" if action == "accept" else "rejected")
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert body["status"] == "partially_paid" and body["total"] == "1000.00"  # acknowledged only


async def _kinds(api: httpx.AsyncClient) -> set[str] | None:
    found = {d["kind"] for d in (await api.get("/accounting/differences")).json()["differences"]}
    return found if "credit_note" in found else None


DELETE_PAYMENT = {
    "qbo": lambda b, pid: b._call(
        "POST",
        "/v3/company/{t}/payment?operation=delete",
        {"Id": pid, "SyncToken": b.state.payments[pid]["SyncToken"]},
    ),
    "freshbooks": lambda b, pid: b._call(
        "PUT", f"/accounting/account/{{t}}/payments/payments/{pid}", {"payment": {"vis_state": 1}}
    ),
}


@pytest.mark.parametrize("provider", ["qbo", "freshbooks"])
async def test_a_payment_deleted_in_the_books_is_a_difference_on_its_invoice(
    temporal_env, served_api, provider
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with books_of(provider) as books:
        settings = await _setup(books, served_api, temporal_env, accounting_poll_minutes=0.05)
        async with build_worker(client, settings), _api(settings) as api:
            await ensure_books_workflow(client, settings)
            books.webhooks_to(settings.public_url)
            _, invoice = await _issue(api, "500.00")
            payment_id = books.enter_payment(invoice["accounting"]["external_id"], Decimal("200.00"))
            await _status(api, invoice["id"], "partially_paid", timeout=10)
            DELETE_PAYMENT[provider](books, payment_id)
            deleted = await _open_difference(api, invoice["id"], "payment_deleted")
            assert payment_id in deleted["detail"]
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            assert body["status"] == "partially_paid" and body["amount_paid"] == "200.00"
