"""Resending the invoice email (the client says it never arrived): ``POST /invoices/{id}/resend`` is the
workflow's ``resend`` Update. Against the Temporal dev server, PostgreSQL and the SMTP sink: one resend
is exactly one more email with the invoice attached, a repeated request and a retried Update (another
Update id, the same resend) send nothing more, and the validator refuses a paid invoice in its words."""

from __future__ import annotations

import asyncio

from tests.support import api_client, customer_body, eventually, kind_of, record_history, to, wait_mail
from worker import build_worker
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import ResendInput


async def test_resend_sends_one_more_email_once(
    temporal_env, make_settings, mailbox, isolated_approval_rules
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        rules = (
            'rules:\n  - name: big\n    match: {min_amount: "50000.00"}\n    steps:\n'
            "      - {approvers: [cfo@f.example]}\n"
        )
        put = await api.put("/approval-rules", content=rules, headers={"Content-Type": "application/yaml"})
        assert put.status_code == 200, put.text
        customer = (await api.post("/customers", json=customer_body())).json()
        recipient = customer["emails"][0]
        invoice = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Support", "unit_price": "80"}],
                },
            )
        ).json()
        voided = (
            await api.post(
                "/invoices",
                json={"customer_id": customer["id"], "lines": [{"description": "Typo", "unit_price": "5"}]},
            )
        ).json()
        waiting = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Big", "unit_price": "60000"}],
                },
            )
        ).json()
        url = f"/invoices/{invoice['id']}"

        async def opened() -> bool:
            statuses = [(await api.get(f"/invoices/{i['id']}")).json()["status"] for i in (invoice, voided)]
            return statuses == ["open", "open"]

        await eventually(opened, what="invoices open")
        void = await api.post(f"/invoices/{voided['id']}/void", json={"reason": "wrong customer"})
        assert void.status_code == 200, void.text
        refused = await api.post(f"/invoices/{voided['id']}/resend", json={"reason": "asked"})
        assert refused.status_code == 409, refused.text
        assert (
            "invoice is void; only an open, overdue or partially paid invoice is sent again" in refused.text
        )
        await wait_mail(mailbox, 2, where=to(recipient))
        # Never sent, so not sent again: the workflow's validator refuses (no Update in its history).
        assert (await api.get(f"/invoices/{waiting['id']}")).json()["status"] == "pending_approval"
        refused = await api.post(f"/invoices/{waiting['id']}/resend")
        assert refused.status_code == 409, refused.text
        assert "invoice is pending_approval; only an open, overdue or partially paid" in refused.text
        await wait_mail(mailbox, 1, where=to(recipient))
        before = len([m for m in mailbox.store.list() if to(recipient)(m)])

        headers = {"Idempotency-Key": "client-lost-it"}
        resent = await api.post(f"{url}/resend", json={"reason": "client never got it"}, headers=headers)
        assert resent.status_code == 200, resent.text
        messages = await wait_mail(mailbox, before + 1, where=to(recipient))
        [again] = [m for m in messages if kind_of(m) == "resend"]
        assert any(a.filename.endswith(".pdf") for a in again.attachments())
        number = (await api.get(url)).json()["number"]
        assert again.subject.startswith(f"Invoice {number} from ")  # the invoice email, as first sent

        # The same request again (a double click), and the same resend as a retried Update with another
        # Update id: both answer with the state, neither sends.
        repeat = await api.post(f"{url}/resend", json={"reason": "client never got it"}, headers=headers)
        assert repeat.status_code == 200, repeat.text
        from services.invoices import resend_key

        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])
        state = await handle.execute_update(
            InvoiceWorkflow.resend,
            ResendInput(idempotency_key=resend_key("client-lost-it"), actor="retry"),
            id="another-update-id",
        )
        assert state.status == "open"
        resends = [e for e in (await api.get(url)).json()["timeline"] if e["kind"] == "invoice.resent"]
        assert [(e["actor"], e["data"]["reason"]) for e in resends] == [("operator", "client never got it")]

        # Paid: the validator refuses, with the workflow's reason, and nothing is sent.
        paid = await api.post(f"{url}/payments", json={"amount": "80.00"}, headers={"Idempotency-Key": "p"})
        assert paid.status_code == 201 and paid.json()["status"] == "paid", paid.text
        refused = await api.post(f"{url}/resend", headers={"Idempotency-Key": "after-paid"})
        assert refused.status_code == 409, refused.text
        assert (
            "invoice is paid; only an open, overdue or partially paid invoice is sent again" in refused.text
        )

        result = await asyncio.wait_for(handle.result(), timeout=30)  # the receipt went out before this
        assert result.status == "paid"
        await record_history(handle, "resent_then_paid")
        final = [m for m in mailbox.store.list() if to(recipient)(m)]
        assert sorted(kind_of(m) for m in final) == ["receipt", "resend", "sent", "sent"]  # one of them void
