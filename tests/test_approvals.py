"""Approval chains end to end: rules route an invoice to two steps; approvers act through the signed
links in the emails they receive (GET shows, POST acts); a rejection sends it back to draft; the edited
draft goes round again; the last approval issues and sends it. Used, superseded, tampered and expired
links change nothing. Deadlines remind and escalate to the delegate."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from core.links import APPROVAL_SALT
from tests.support import api_client, customer_body, eventually, record_history, settled_query, to, wait_mail
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

pytestmark = pytest.mark.usefixtures("isolated_approval_rules")

RULES = """
rules:
  - name: large-new-client
    match: {min_amount: "10000.00", new_client: true, client_tags: [enterprise]}
    steps:
      - {approvers: [pm@firm.example.com, pm2@firm.example.com], mode: any, delegate: cto@firm.example.com}
      - {approvers: [finance@firm.example.com, cfo@firm.example.com], mode: all}
"""
LINK = re.compile(r"https?://[^\s\"<>]+(/approvals/[A-Za-z0-9._\-]+)")


async def link_for(mailbox, invoice: dict, approver: str, *, count: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
    """The links this invoice's approval emails gave one approver, oldest first. The mailbox is shared
    by the whole session and other tests ask the same approvers, so only this invoice's messages count."""
    key = f"invoice:{invoice['id']}:approval:"

    def mine(m) -> bool:  # type: ignore[no-untyped-def]
        return (
            approver in m.rcpt_tos
            and "Approval needed" in m.subject
            and key in (m.header("X-Invoiceflow-Key") or "")
        )

    messages = await wait_mail(mailbox, count, where=mine)
    return [LINK.search(m.text_body() or "").group(1) for m in messages]  # type: ignore[union-attr]


async def visit(call, *args, **kwargs):  # type: ignore[no-untyped-def]
    """A link's page, opened again while it answers 503 (the workflow did not answer in time), as the
    page asks the approver to do."""
    for _ in range(10):
        response = await call(*args, **kwargs)
        if response.status_code != 503:
            return response
        assert response.headers["retry-after"] and "nothing was changed" in response.text
        await asyncio.sleep(0.5)
    return response


async def test_two_step_chain_with_rejection_edit_and_resubmission(time_env, make_settings, mailbox) -> None:
    client = time_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        assert (
            await api.put("/approval-rules", content=RULES, headers={"Content-Type": "application/yaml"})
        ).status_code == 200
        customer = (await api.post("/customers", json=customer_body(tags=["enterprise"]))).json()
        invoice = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [
                        {"description": "Platform migration", "quantity": "1", "unit_price": "12000.00"}
                    ],
                },
            )
        ).json()
        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])

        async def at_step(step: int):  # type: ignore[no-untyped-def]
            state = await settled_query(handle, InvoiceWorkflow.state)
            return state if state.status == "pending_approval" and state.approval_step == step else None

        state = await eventually(lambda: at_step(1), what="waiting on step 1")
        assert state.approval_rule == "large-new-client" and state.approval_steps == 2
        [pm_link] = await link_for(mailbox, invoice, "pm@firm.example.com")
        [pm2_link] = await link_for(mailbox, invoice, "pm2@firm.example.com")
        assert not mailbox.store.list() or all(
            customer["emails"][0] not in m.rcpt_tos for m in mailbox.store.list()
        )

        shown = await visit(api.get, pm_link)
        assert shown.status_code == 200 and "12,000.00 USD" in shown.text and "Approve" in shown.text
        assert "no-store" in shown.headers["cache-control"]
        assert (await visit(api.get, f"{pm_link}/preview.pdf")).headers["content-type"] == "application/pdf"
        looked = await settled_query(handle, InvoiceWorkflow.state)
        assert looked.approval_step == 1  # looking changed nothing

        approved = await api.post(
            pm_link, data={"decision": "approve"}, headers={"User-Agent": "pytest-browser/1.0"}
        )
        assert approved.status_code == 200 and "Approved" in approved.text
        await eventually(lambda: at_step(2), what="waiting on step 2")
        # The same link again, the other PM's link (step done), and both as GET: nothing changes.
        assert (await visit(api.post, pm_link, data={"decision": "approve"})).status_code == 409
        assert "already recorded a decision" in (await visit(api.get, pm_link)).text
        late = await visit(api.post, pm2_link, data={"decision": "approve"})
        assert late.status_code == 409 and "already complete" in late.text
        tampered = pm2_link[:-3] + ("AAA" if not pm2_link.endswith("AAA") else "BBB")
        assert (await api.get(tampered)).status_code == 400
        assert (await api.post(tampered, data={"decision": "approve"})).status_code == 400

        [finance_link] = await link_for(mailbox, invoice, "finance@firm.example.com")
        [cfo_link] = await link_for(mailbox, invoice, "cfo@firm.example.com")
        assert (await visit(api.post, finance_link, data={"decision": "approve"})).status_code == 200
        no_reason = await visit(api.post, cfo_link, data={"decision": "reject", "comment": "  "})
        assert no_reason.status_code == 422  # and the link is not spent
        rejected = await visit(
            api.post, cfo_link, data={"decision": "reject", "comment": "PO number missing"}
        )
        assert rejected.status_code == 200 and "back in draft" in rejected.text

        async def draft():  # type: ignore[no-untyped-def]
            state = await settled_query(handle, InvoiceWorkflow.state)
            return state if state.status == "draft" else None

        state = await eventually(draft, what="back to draft")
        [owner_note] = await wait_mail(mailbox, 1, where=to(customer["owner_email"]))
        assert "Rejected" in owner_note.subject and "PO number missing" in (owner_note.text_body() or "")

        # Edit and resubmit: a new revision; links of the old one are superseded.
        edited = await api.patch(
            f"/invoices/{invoice['id']}",
            json={
                "lines": [{"description": "Platform migration (PO 4711)", "unit_price": "11000.00"}],
                "notes": "PO 4711",
            },
        )
        assert edited.status_code == 200 and edited.json()["total"] == "11000.00"
        assert (await api.post(f"/invoices/{invoice['id']}/submit")).status_code == 200
        await eventually(lambda: at_step(1), what="second round, step 1")
        old = await visit(api.post, pm2_link, data={"decision": "approve"})
        assert old.status_code == 409 and "changed" in old.text

        [_, pm_link_2] = await link_for(mailbox, invoice, "pm@firm.example.com", count=2)
        assert (await visit(api.post, pm_link_2, data={"decision": "approve"})).status_code == 200
        await eventually(lambda: at_step(2), what="second round, step 2")
        # Operator API: a wrong approver and a repeated decision are refused by the workflow.
        wrong = await api.post(
            f"/invoices/{invoice['id']}/decisions",
            json={"approver": "pm@firm.example.com", "decision": "approve"},
        )
        assert wrong.status_code == 409 and "not an approver of step 2" in wrong.text
        ok = await api.post(
            f"/invoices/{invoice['id']}/decisions",
            json={"approver": "finance@firm.example.com", "decision": "approve"},
        )
        assert ok.status_code == 200
        again = await api.post(
            f"/invoices/{invoice['id']}/decisions",
            json={"approver": "finance@firm.example.com", "decision": "approve"},
        )
        assert again.status_code == 409 and "already decided" in again.text
        [_, cfo_link_2] = await link_for(mailbox, invoice, "cfo@firm.example.com", count=2)
        assert (await visit(api.post, cfo_link_2, data={"decision": "approve"})).status_code == 200

        async def sent():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            return body if body["status"] == "open" else None

        final = await eventually(sent, what="issued and sent after the last approval")
        assert final["number"] and final["total"] == "11000.00"
        [client_email] = await wait_mail(mailbox, 1, where=to(customer["emails"][0]))
        assert final["number"] in client_email.subject
        decisions = [
            (e["kind"], e["actor"], e["data"]["via"])
            for e in final["timeline"]
            if e["kind"].startswith("approval.") and e["kind"] != "approval.routed"
        ]
        assert decisions == [
            ("approval.approved", "pm@firm.example.com", "link"),
            ("approval.approved", "finance@firm.example.com", "link"),
            ("approval.rejected", "cfo@firm.example.com", "link"),
            ("approval.approved", "pm@firm.example.com", "link"),
            ("approval.approved", "finance@firm.example.com", "api"),
            ("approval.approved", "cfo@firm.example.com", "link"),
        ]
        first = next(e for e in final["timeline"] if e["kind"] == "approval.approved")
        assert first["data"]["user_agent"] == "pytest-browser/1.0" and first["data"]["ip"]

        # An expired link (signed ten days ago) changes nothing either.
        class TenDaysAgo(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 10 * 86400

        stale = URLSafeTimedSerializer(
            settings.secret_key,
            salt=APPROVAL_SALT,
            signer=TenDaysAgo,
            signer_kwargs={"digest_method": hashlib.sha256},
        ).dumps({"i": invoice["id"], "r": 2, "s": 0, "a": "pm@firm.example.com", "j": "x"})
        assert (await api.get(f"/approvals/{stale}")).status_code == 410
        await record_history(handle, "lean_approval_chain_rejected_edited_approved")


async def test_undecided_step_is_reminded_then_escalated_to_the_delegate(
    time_env, make_settings, mailbox
) -> None:
    client = time_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        rules = (
            RULES.replace("pm@firm", "lead@firm")
            .replace("pm2@firm", "lead2@firm")
            .replace("cto@firm", "deputy@firm")
        )
        assert (
            await api.put("/approval-rules", content=rules, headers={"Content-Type": "application/yaml"})
        ).status_code == 200
        customer = (await api.post("/customers", json=customer_body(tags=["enterprise"]))).json()
        invoice = (
            await api.post(
                "/invoices",
                json={"customer_id": customer["id"], "lines": [{"description": "x", "unit_price": "20000"}]},
            )
        ).json()
        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])
        await link_for(mailbox, invoice, "lead@firm.example.com")

        await time_env.sleep(timedelta(hours=25))
        ours = f"invoice:{invoice['id']}:"  # the session's mailbox holds other tests' mail too

        def of_this_invoice(m) -> bool:  # type: ignore[no-untyped-def]
            return (m.header("X-Invoiceflow-Key") or "").startswith(ours)

        reminders = await wait_mail(
            mailbox,
            1,
            where=lambda m: (
                of_this_invoice(m)
                and "lead@firm.example.com" in m.rcpt_tos
                and m.subject.startswith("Reminder:")
            ),
        )
        assert len(reminders) == 1
        assert not [
            m for m in mailbox.store.list() if of_this_invoice(m) and "deputy@firm.example.com" in m.rcpt_tos
        ]

        await time_env.sleep(timedelta(hours=24))
        [deputy_link] = await link_for(mailbox, invoice, "deputy@firm.example.com")
        state = await settled_query(handle, InvoiceWorkflow.state)
        assert "deputy@firm.example.com" in state.awaiting_approvers
        assert (await visit(api.post, deputy_link, data={"decision": "approve"})).status_code == 200

        async def step_two():  # type: ignore[no-untyped-def]
            return (await settled_query(handle, InvoiceWorkflow.state)).approval_step == 2

        await eventually(step_two, what="delegate's approval completes step 1")
        timeline = (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]
        assert [e["actor"] for e in timeline if e["kind"] == "approval.approved"] == [
            "deputy@firm.example.com"
        ]
        await record_history(handle, "approval_reminded_and_escalated")


async def test_a_link_opened_while_no_worker_answers_says_try_again_and_stays_unused(
    temporal_env, make_settings, mailbox, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from persistence.db import session_scope
    from persistence.models import ApprovalLinkUse
    from services import workflow_calls
    from tests.test_console_auth import browser, make_user, sign_in

    monkeypatch.setattr(workflow_calls, "STATE_TIMEOUT", timedelta(seconds=1))
    client = temporal_env.client
    settings = make_settings(client)
    approver = f"pm-{uuid.uuid4().hex[:6]}@firm.example.com"
    async with api_client(settings, client) as api:
        async with build_worker(client, settings):
            assert (
                await api.put(
                    "/approval-rules",
                    content=RULES.replace("pm@firm.example.com", approver),
                    headers={"Content-Type": "application/yaml"},
                )
            ).status_code == 200
            customer = (await api.post("/customers", json=customer_body(tags=["enterprise"]))).json()
            invoice = (
                await api.post(
                    "/invoices",
                    json={
                        "customer_id": customer["id"],
                        "lines": [{"description": "x", "unit_price": "20000"}],
                    },
                )
            ).json()
            [link] = await link_for(mailbox, invoice, approver)
            assert (await api.get(link)).status_code == 200
        # The worker is gone: the workflow cannot answer whether this decision is still wanted.
        shown = await api.get(link)
        assert shown.status_code == 503 and shown.headers["retry-after"] == "30"
        assert "try again" in shown.text.lower() and "nothing was changed" in shown.text
        acted = await api.post(link, data={"decision": "approve"})
        assert acted.status_code == 503
        async with browser(settings, client) as http:  # the console says it does not know, and offers nothing
            await sign_in(http, make_user(settings, "finance"))
            inbox = await http.get("/app/approvals")
            assert inbox.status_code == 200 and "not known right now" in inbox.text
            row = inbox.text[inbox.text.index(f'href="/app/invoices/{invoice["id"]}"') :].split("</tr>")[0]
            assert "not known right now" in row and "Approve" not in row
            shown_in_console = await http.get(f"/app/invoices/{invoice['id']}")
            assert (
                shown_in_console.status_code == 200 and "could not be read just now" in shown_in_console.text
            )
            assert "Decide for an approver" not in shown_in_console.text
        with session_scope(settings.require_database_url()) as session:
            assert (
                session.scalars(
                    select(ApprovalLinkUse).where(
                        ApprovalLinkUse.approver == approver,
                        ApprovalLinkUse.invoice_id == uuid.UUID(invoice["id"]),
                    )
                ).all()
                == []
            )
        async with build_worker(client, settings):  # back: the same link decides
            assert (await api.post(link, data={"decision": "approve"})).status_code == 200
