"""End to end through the operator API on the Temporal dev server, embedded PostgreSQL and a real SMTP
server: create → issued, numbered, PDF emailed → visible in Temporal by search attribute → paid."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio.client import WorkflowExecutionStatus

from tests.support import (
    api_client,
    customer_body,
    eventually,
    kind_of,
    pdf_text,
    record_history,
    to,
    wait_mail,
)
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

LINES = [
    {"description": "Portal rebuild — sprint 1", "quantity": "10", "unit_price": "150.00", "tax_rate": "19"},
    {
        "description": "Hosting <managed> & support",
        "quantity": "1",
        "unit_price": "99.99",
        "discount_percent": "10",
        "tax_rate": "19",
    },
]
# 1500.00 + (99.99 - 10.00) = 1589.99 net; tax 19% on 1589.99 = 302.0981 → 302.10; total 1892.09
EXPECTED_TOTAL = Decimal("1892.09")


async def test_invoice_life_through_the_api(temporal_env, make_settings, mailbox) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        created = await api.post(
            "/invoices",
            json={"customer_id": customer["id"], "lines": LINES, "notes": "Thanks for your business"},
            headers={"Idempotency-Key": "order-1"},
        )
        assert created.status_code == 201, created.text
        invoice = created.json()
        assert invoice["status"] == "draft"
        assert invoice["number"] is None  # numbers are allocated at issue, not at creation
        assert Decimal(invoice["total"]) == EXPECTED_TOTAL
        assert invoice["workflow_id"] == f"invoice-{invoice['id']}"

        async def opened():
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            return body if body["status"] == "open" else None

        issued = await eventually(opened, what="invoice open")
        number = issued["number"]
        assert number.startswith("INV-") and len(number.split("-")[-1]) == 6

        recipient = customer["emails"][0]
        [email] = await wait_mail(mailbox, 1, where=to(recipient))
        assert email.subject.startswith(f"Invoice {number} from Acme IT Services: 1,892.09 USD")
        [attachment] = email.attachments()
        assert attachment.content_type == "application/pdf"
        text = pdf_text(attachment.payload)
        assert number in text
        assert "1,892.09" in text
        assert "Hosting <managed> & support" in text  # user text rendered literally, not as markup

        pdf = await api.get(f"/invoices/{invoice['id']}/pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert number in pdf_text(pdf.content)

        # Operators find it in the Temporal UI by custom search attributes.
        query = f'InvoiceStatus = "open" AND CustomerId = "{customer["id"]}" AND InvoiceNumber = "{number}"'

        async def visible():
            return [wf async for wf in client.list_workflows(query)]

        listed = await eventually(visible, what="workflow visible by search attributes")
        # Once parked it continued as new: the closed run is listed beside the one waiting on its clock.
        assert {wf.id for wf in listed} == {invoice["workflow_id"]}
        assert [wf.status for wf in listed].count(WorkflowExecutionStatus.RUNNING) == 1

        paid = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "1892.09", "reference": "WIRE-778"},
            headers={"Idempotency-Key": "wire-778"},
        )
        assert paid.status_code == 201, paid.text
        assert paid.json()["status"] == "paid" and paid.json()["amount_due"] == "0.00"

        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])
        result = await asyncio.wait_for(handle.result(), timeout=30)
        assert result.status == "paid"
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        await record_history(handle, "paid_in_full_via_api")

        final = (await api.get(f"/invoices/{invoice['id']}")).json()
        assert final["status"] == "paid"
        assert [p["reference"] for p in final["payments"]] == ["WIRE-778"]
        kinds = [e["kind"] for e in final["timeline"]]
        for expected in (
            "created",
            "issued",
            "email.invoice.sent",
            "status.open",
            "payment.recorded",
            "status.paid",
        ):
            assert expected in kinds, (expected, kinds)

        messages = await wait_mail(mailbox, 2, where=to(recipient))
        assert sorted(kind_of(m) for m in messages) == ["receipt", "sent"]  # and no reminder

        # The same payment request again is recognised, not recorded twice.
        again = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "1892.09", "reference": "WIRE-778"},
            headers={"Idempotency-Key": "wire-778"},
        )
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert len((await api.get(f"/invoices/{invoice['id']}")).json()["payments"]) == 1


async def test_same_idempotency_key_creates_one_invoice(temporal_env, make_settings) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    async with api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        body = {"customer_id": customer["id"], "lines": [{"description": "Retainer", "unit_price": "500"}]}
        first = await api.post("/invoices", json=body, headers={"Idempotency-Key": "k-1"})
        second = await api.post("/invoices", json=body, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert second.headers["Idempotent-Replayed"] == "true"
        listed = (await api.get("/invoices", params={"customer_id": customer["id"]})).json()["items"]
        assert [i["id"] for i in listed] == [first.json()["id"]]

        other = await api.post(
            "/invoices", json={**body, "notes": "different"}, headers={"Idempotency-Key": "k-1"}
        )
        assert other.status_code == 422
        assert "different request body" in other.text


async def test_bad_input_is_refused_with_reasons(temporal_env, make_settings) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    async with api_client(settings, client) as api:
        assert (await api.get("/invoices", headers={"Authorization": "Bearer wrong"})).status_code == 401
        customer = (await api.post("/customers", json=customer_body())).json()

        floaty = await api.post(
            "/invoices",
            json={"customer_id": customer["id"], "lines": [{"description": "x", "unit_price": 12.1}]},
        )
        assert floaty.status_code == 422
        assert "float" in floaty.text and "unit_price" in floaty.text

        bad_currency = await api.post("/customers", json=customer_body(currency="ABC"))
        assert bad_currency.status_code == 422 and "ABC" in bad_currency.text

        bad_tz = await api.post("/customers", json=customer_body(timezone="Mars/Olympus"))
        assert bad_tz.status_code == 422 and "timezone" in bad_tz.text

        negative = await api.post(
            "/invoices",
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "x", "quantity": "-1", "unit_price": "5"}],
            },
        )
        assert negative.status_code == 422 and "quantity" in negative.text

        unknown = await api.post(
            "/invoices",
            json={
                "customer_id": "00000000-0000-0000-0000-000000000000",
                "lines": [{"description": "x", "unit_price": "5"}],
            },
        )
        assert unknown.status_code == 422 and "customer_id" in unknown.text
