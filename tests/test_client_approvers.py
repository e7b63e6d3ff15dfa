"""Client-side approvers end to end: a chain whose second step is the client's own contact. The client gets
the same signed, single-use link, sees nothing internal (not the chain, not the firm's approvers), and
their decision is on the timeline as the client's; an approval issues and sends the invoice, a rejection
returns it to draft with the comment."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support import api_client, customer_body, eventually, to, wait_mail
from tests.test_approvals import link_for
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

pytestmark = pytest.mark.usefixtures("isolated_approval_rules")

RULES = """
rules:
  - name: purchase-order-sign-off
    match: {client_tags: [po-required]}
    steps:
      - {approvers: [PM]}
      - {client_contact: true}
"""


async def _invoice_waiting_for_the_client(
    api, client, mailbox, pm: str
) -> tuple[dict[str, Any], Any, str, str]:  # type: ignore[no-untyped-def]
    rules = RULES.replace("PM", pm)
    assert (
        await api.put("/approval-rules", content=rules, headers={"Content-Type": "application/yaml"})
    ).status_code == 200
    customer = (await api.post("/customers", json=customer_body(tags=["po-required"]))).json()
    contact = customer["emails"][0]
    invoice = (
        await api.post(
            "/invoices",
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "Sprint 4", "unit_price": "5000.00"}],
            },
        )
    ).json()
    handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])

    async def at_step(step: int):  # type: ignore[no-untyped-def]
        state = await handle.query(InvoiceWorkflow.state)
        return state if state.status == "pending_approval" and state.approval_step == step else None

    await eventually(lambda: at_step(1), what="waiting on the firm's step")
    [pm_link] = await link_for(mailbox, invoice, pm)
    assert (await api.post(pm_link, data={"decision": "approve"})).status_code == 200
    state = await eventually(lambda: at_step(2), what="waiting on the client")
    assert state.awaiting_approvers == [contact]
    [client_link] = await link_for(mailbox, invoice, contact)
    return invoice, handle, contact, client_link


async def test_the_client_approves_from_the_emailed_link_and_the_invoice_goes_out(  # type: ignore[no-untyped-def]
    temporal_env, make_settings, mailbox
) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        pm = f"pm-{uuid.uuid4().hex[:8]}@firm.example.com"
        invoice, handle, contact, link = await _invoice_waiting_for_the_client(api, client, mailbox, pm)
        [request] = await wait_mail(
            mailbox, 1, where=lambda m: contact in m.rcpt_tos and "Approval" in m.subject
        )
        assert "Approval step" not in (request.text_body() or "")  # the chain is the firm's business
        shown = await api.get(link)
        assert shown.status_code == 200 and "5,000.00" in shown.text
        assert pm not in shown.text and "step" not in shown.text.lower()

        assert (await api.post(link, data={"decision": "approve"})).status_code == 200
        await eventually(
            lambda: _status_is(api, invoice["id"], "open"), what="issued once the client approved"
        )
        sent = await wait_mail(mailbox, 1, where=lambda m: contact in m.rcpt_tos and "Invoice" in m.subject)
        assert sent
        timeline = (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]
        decisions = [e for e in timeline if e["kind"] == "approval.approved"]
        assert [(e["actor"], e["data"].get("party")) for e in decisions] == [
            (pm, None),
            (contact, "client"),
        ]
        assert (await api.post(link, data={"decision": "approve"})).status_code == 409  # single use


async def test_a_client_rejection_returns_the_invoice_to_draft_with_the_comment(  # type: ignore[no-untyped-def]
    temporal_env, make_settings, mailbox
) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        pm = f"pm-{uuid.uuid4().hex[:8]}@firm.example.com"
        invoice, handle, contact, link = await _invoice_waiting_for_the_client(api, client, mailbox, pm)
        rejected = await api.post(link, data={"decision": "reject", "comment": "Our PO is 4711, not 4710"})
        assert rejected.status_code == 200
        await eventually(lambda: _status_is(api, invoice["id"], "draft"), what="back to draft")
        owner = (await api.get(f"/customers/{invoice['customer_id']}")).json()["owner_email"]
        [note] = await wait_mail(mailbox, 1, where=to(owner))
        assert "Our PO is 4711" in (note.text_body() or "")
        timeline = (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]
        [rejection] = [e for e in timeline if e["kind"] == "approval.rejected"]
        assert rejection["actor"] == contact and rejection["data"]["party"] == "client"


async def _status_is(api, invoice_id: str, status: str) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    body = (await api.get(f"/invoices/{invoice_id}")).json()
    return body if body["status"] == status else None


def test_a_client_contact_step_needs_no_approvers_but_says_so() -> None:
    from billing.approval_rules import RuleError, parse_rule, rule_to_dict

    rule = parse_rule({"name": "po", "steps": [{"client_contact": True}]})
    assert rule.steps[0].client_contact and rule.steps[0].approvers == ()
    assert rule_to_dict(rule)["steps"] == [{"approvers": [], "mode": "any", "client_contact": True}]
    with pytest.raises(RuleError, match="client_contact"):
        parse_rule({"name": "po", "steps": [{}]})
    with pytest.raises(RuleError, match="true or false"):
        parse_rule({"name": "po", "steps": [{"client_contact": "yes"}]})
