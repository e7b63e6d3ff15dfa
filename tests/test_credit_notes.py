"""Credit notes end to end: through the API and the InvoiceWorkflow's ``issue_credit_note`` Update on the
Temporal dev server, with PostgreSQL and a real SMTP server. Numbers come from their own gapless series,
the PDF and the email go out once, the amount due drops, and what cannot be credited is refused."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from core.links import sign_invoice_page
from persistence.db import session_scope
from persistence.models import CreditNote
from tests.support import api_client, customer_body, eventually, pdf_text, record_history, to, wait_mail
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

# 10 × 100.00 at 19 % = 1,190.00
LINES = [
    {"description": "Managed services, November", "quantity": "10", "unit_price": "100.00", "tax_rate": "19"}
]


async def _open_invoice(api, customer: dict[str, Any], lines=LINES, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    created = await api.post("/invoices", json={"customer_id": customer["id"], "lines": lines, **extra})
    assert created.status_code == 201, created.text
    invoice_id = created.json()["id"]

    async def issued():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["status"] not in ("draft", "pending_approval") and body["pdf_url"] else None

    return await eventually(issued, what="invoice issued")


def _prefix() -> str:
    return f"CN{uuid.uuid4().hex[:5].upper()}"


async def test_partial_payment_then_credit_note_then_the_rest_pays_it(
    temporal_env, make_settings, mailbox
) -> None:
    client = temporal_env.client
    prefix = _prefix()
    settings = make_settings(client, credit_note_number_prefix=prefix)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        invoice = await _open_invoice(api, customer)
        assert invoice["total"] == "1190.00"
        paid = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "400.00"},
            headers={"Idempotency-Key": f"w1-{prefix}"},
        )
        assert paid.status_code == 201 and paid.json()["status"] == "partially_paid"

        # Two of the ten days were not worked: 2 × 100.00 + 19 % = 238.00.
        body = {
            "reason": "Two days not delivered",
            "lines": [
                {
                    "description": "Managed services, 2 days not delivered",
                    "quantity": "2",
                    "unit_price": "100.00",
                    "tax_rate": "19",
                }
            ],
            "idempotency_key": "cn-1",
        }
        issued = await api.post(f"/invoices/{invoice['id']}/credit-notes", json=body)
        assert issued.status_code == 201, issued.text
        result = issued.json()
        note = result["credit_note"]
        year = note["issue_date"][:4]
        assert note["number"] == f"{prefix}-{year}-000001"
        assert (note["subtotal"], note["tax_total"], note["total"]) == ("200.00", "38.00", "238.00")
        assert (result["status"], result["amount_paid"], result["amount_credited"], result["amount_due"]) == (
            "partially_paid",
            "400.00",
            "238.00",
            "552.00",
        )
        assert result["duplicate"] is False and note["to_customer_credit"] == "0.00"

        # The same request again: the same credit note, nothing new issued, numbered or sent.
        again = await api.post(f"/invoices/{invoice['id']}/credit-notes", json=body)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert again.json()["credit_note"]["id"] == note["id"]
        reused = await api.post(
            f"/invoices/{invoice['id']}/credit-notes", json={**body, "reason": "Something else"}
        )
        assert reused.status_code == 422 and "different request" in reused.text

        # The client gets the credit note as a PDF, once.
        recipient = customer["emails"][0]
        [email] = await wait_mail(
            mailbox, 1, where=lambda m: to(recipient)(m) and note["number"] in m.subject
        )
        assert invoice["number"] in email.subject
        [attachment] = email.attachments()
        assert attachment.filename == f"{note['number']}.pdf"
        text = pdf_text(attachment.payload)
        for expected in (
            "CREDIT NOTE",
            note["number"],
            invoice["number"],
            "Two days not delivered",
            "238.00",
        ):
            assert expected in text, (expected, text)

        state = await client.get_workflow_handle(invoice["workflow_id"]).query(InvoiceWorkflow.state)
        assert (state.amount_due, state.amount_credited, state.status) == (
            "552.00",
            "238.00",
            "partially_paid",
        )

        shown = (await api.get(f"/invoices/{invoice['id']}")).json()
        assert shown["amount_due"] == "552.00" and shown["amount_credited"] == "238.00"
        [listed] = shown["credit_notes"]
        assert (listed["number"], listed["total"], listed["reason"]) == (
            note["number"],
            "238.00",
            "Two days not delivered",
        )
        assert listed["pdf_url"] == f"/credit-notes/{note['id']}/pdf"
        pdf = await api.get(listed["pdf_url"])
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert note["number"] in pdf_text(pdf.content)
        assert "credit_note.issued" in [e["kind"] for e in shown["timeline"]]

        # The client's hosted page shows the credit and links the credit note's PDF (of this invoice only).
        token = sign_invoice_page(settings.secret_key, invoice["id"])
        page = await api.get(f"/i/{token}")
        assert page.status_code == 200
        assert f'data-credit-note="{note["number"]}"' in page.text and "Two days not delivered" in page.text
        assert "552.00" in page.text and "Credit note issued" in page.text
        hosted_pdf = await api.get(f"/i/{token}/credit-notes/{note['id']}/pdf")
        assert hosted_pdf.status_code == 200 and hosted_pdf.content == pdf.content
        other = sign_invoice_page(settings.secret_key, str(uuid.uuid4()))
        assert (await api.get(f"/i/{other}/credit-notes/{note['id']}/pdf")).status_code == 404

        # The rest, exactly, settles it.
        rest = await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "552.00"},
            headers={"Idempotency-Key": f"w2-{prefix}"},
        )
        assert rest.status_code == 201 and (rest.json()["status"], rest.json()["amount_due"]) == (
            "paid",
            "0.00",
        )
        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])
        final = await asyncio.wait_for(handle.result(), timeout=30)
        assert (final.status, final.amount_due) == ("paid", "0.00")
        await record_history(handle, "partially_paid_credit_note_then_paid")

        credit_mails = [m for m in mailbox.store.list() if to(recipient)(m) and note["number"] in m.subject]
        assert len(credit_mails) == 1
        with session_scope(settings.require_database_url()) as session:
            count = session.scalar(
                select(func.count())
                .select_from(CreditNote)
                .where(CreditNote.invoice_id == uuid.UUID(invoice["id"]))
            )
        assert count == 1


async def test_numbers_are_gapless_across_invoices_and_a_full_credit_closes_as_credited(
    temporal_env, make_settings, mailbox
) -> None:
    client = temporal_env.client
    prefix = _prefix()
    settings = make_settings(client, credit_note_number_prefix=prefix)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        first = await _open_invoice(api, customer)
        second = await _open_invoice(api, customer, lines=[{"description": "Audit", "unit_price": "300.00"}])

        partial = await api.post(
            f"/invoices/{first['id']}/credit-notes",
            json={"reason": "Goodwill", "lines": [{"description": "Goodwill", "unit_price": "50.00"}]},
            headers={"Idempotency-Key": "goodwill"},
        )
        assert partial.status_code == 201, partial.text
        full = await api.post(
            f"/invoices/{second['id']}/credit-notes",
            json={"reason": "Ordered by mistake", "full": True, "idempotency_key": "k"},
        )
        assert full.status_code == 201, full.text
        numbers = [partial.json()["credit_note"]["number"], full.json()["credit_note"]["number"]]
        assert [n.rsplit("-", 1)[1] for n in numbers] == ["000001", "000002"]
        assert (
            numbers[0].rsplit("-", 1)[0]
            == numbers[1].rsplit("-", 1)[0]
            == f"{prefix}-{numbers[0].split('-')[1]}"
        )

        # Credited in full: a final status of its own, neither void nor written off; the process ends.
        closed = full.json()
        assert (closed["status"], closed["amount_due"], closed["amount_credited"]) == (
            "credited",
            "0.00",
            "300.00",
        )
        assert [(line["description"], line["net"]) for line in closed["credit_note"]["lines"]] == [
            ("Audit", "300.00")
        ]
        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, second["workflow_id"])
        result = await asyncio.wait_for(handle.result(), timeout=30)
        assert (result.status, result.amount_due) == ("credited", "0.00")
        await record_history(handle, "credited_in_full")
        after = await api.post(
            f"/invoices/{second['id']}/credit-notes",
            json={"reason": "again", "full": True, "idempotency_key": "k2"},
        )
        assert after.status_code == 409 and "credited" in after.text

        # A full credit note after a partial one is refused: the rest is credited with lines.
        refused = await api.post(
            f"/invoices/{first['id']}/credit-notes",
            json={"reason": "All of it", "full": True, "idempotency_key": "k3"},
        )
        assert refused.status_code == 422 and "already has credit notes" in refused.text
        # The first invoice's numbers did not move: nothing was taken for the refused request.
        third = await api.post(
            f"/invoices/{first['id']}/credit-notes",
            json={
                "reason": "More goodwill",
                "lines": [{"description": "Goodwill", "unit_price": "10.00"}],
                "idempotency_key": "k4",
            },
        )
        assert third.status_code == 201 and third.json()["credit_note"]["number"].endswith("-000003")


async def test_what_cannot_be_credited_is_refused(temporal_env, make_settings) -> None:
    client = temporal_env.client
    settings = make_settings(client, credit_note_number_prefix=_prefix())
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        invoice = await _open_invoice(api, customer)
        url = f"/invoices/{invoice['id']}/credit-notes"
        line = {
            "description": "Refund of everything and more",
            "quantity": "11",
            "unit_price": "100.00",
            "tax_rate": "19",
        }

        over = await api.post(url, json={"reason": "Too much", "lines": [line], "idempotency_key": "over"})
        assert over.status_code == 422
        assert "1,309.00 USD is more than the 1,190.00 USD still creditable" in over.text

        for body, expected in (
            ({"reason": "", "full": True, "idempotency_key": "a"}, "reason"),
            ({"reason": "x", "idempotency_key": "b"}, "full"),
            ({"reason": "x", "full": True, "lines": [line], "idempotency_key": "c"}, "not both"),
            (
                {"reason": "x", "lines": [{"description": "x", "unit_price": 12.1}], "idempotency_key": "d"},
                "float",
            ),
            (
                {"reason": "x", "lines": [{"description": "x", "unit_price": "-5"}], "idempotency_key": "e"},
                "unit_price",
            ),
            (
                {
                    "reason": "x",
                    "lines": [{"description": "x", "unit_price": "0.00"}],
                    "idempotency_key": "f",
                },
                "more than 0",
            ),
            ({"reason": "x", "full": True}, "idempotency_key"),
        ):
            refused = await api.post(url, json=body)
            assert refused.status_code == 422 and expected in refused.text, (body, refused.text)

        # The workflow's own validator refuses too (e.g. a request that raced past the API's check).
        from temporalio.client import WorkflowUpdateFailedError

        from workflows.payloads import CreditNoteInput, TermsLine

        handle = client.get_workflow_handle(invoice["workflow_id"])
        try:
            await handle.execute_update(
                InvoiceWorkflow.issue_credit_note,
                CreditNoteInput(
                    reason="x",
                    idempotency_key="direct",
                    lines=[TermsLine(description="x", quantity="20", unit_price="100.00")],
                ),
            )
            raise AssertionError("the validator accepted an over-credit")
        except WorkflowUpdateFailedError as exc:
            assert "still creditable" in str(exc.cause)

        voided = await api.post(f"/invoices/{invoice['id']}/void", json={"reason": "wrong client"})
        assert voided.status_code == 200 and voided.json()["status"] == "void"
        on_void = await api.post(url, json={"reason": "x", "full": True, "idempotency_key": "g"})
        assert on_void.status_code == 409 and "invoice is void" in on_void.text

        missing = await api.post(
            f"/invoices/{uuid.uuid4()}/credit-notes",
            json={"reason": "x", "full": True, "idempotency_key": "h"},
        )
        assert missing.status_code == 404
        assert (await api.get(f"/credit-notes/{uuid.uuid4()}/pdf")).status_code == 404
        assert (await api.get(f"/invoices/{invoice['id']}")).json()["credit_notes"] == []


async def test_a_credit_note_beyond_the_amount_due_becomes_customer_credit(
    temporal_env, make_settings, mailbox
) -> None:
    client = temporal_env.client
    settings = make_settings(client, credit_note_number_prefix=_prefix())
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        invoice = await _open_invoice(
            api, customer, lines=[{"description": "Migration", "unit_price": "1000.00"}]
        )
        await api.post(
            f"/invoices/{invoice['id']}/payments",
            json={"amount": "600.00"},
            headers={"Idempotency-Key": f"p-{invoice['id']}"},
        )
        # 600 paid, 400 due; crediting 500 leaves nothing due and 100 for the client's next invoice.
        issued = await api.post(
            f"/invoices/{invoice['id']}/credit-notes",
            json={
                "reason": "Scope cut",
                "lines": [{"description": "Scope cut", "unit_price": "500.00"}],
                "idempotency_key": "cut",
            },
        )
        assert issued.status_code == 201, issued.text
        result = issued.json()
        assert (result["status"], result["amount_due"], result["credit"]) == ("paid", "0.00", "100.00")
        assert result["credit_note"]["to_customer_credit"] == "100.00"
        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])
        assert (await asyncio.wait_for(handle.result(), timeout=30)).status == "paid"

        assert (await api.get(f"/customers/{customer['id']}")).json()["credit"] == {"USD": "100.00"}

        nxt = await _open_invoice(api, customer, lines=[{"description": "Support", "unit_price": "250.00"}])
        assert (nxt["amount_due"], nxt["amount_paid"]) == ("150.00", "100.00")
        [applied] = nxt["payments"]
        assert (applied["method"], applied["amount"]) == ("customer_credit", "100.00")
        assert Decimal(nxt["total"]) == Decimal("250.00") and nxt["status"] == "partially_paid"
        assert "credit.applied" in [e["kind"] for e in nxt["timeline"]]
        assert (await api.get(f"/customers/{customer['id']}")).json()["credit"] == {}
        pdf = await api.get(nxt["pdf_url"])
        text = pdf_text(pdf.content)
        assert "Credit applied" in text and "150.00" in text
