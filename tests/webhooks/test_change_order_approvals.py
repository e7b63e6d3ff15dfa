"""Change orders through approval rules, end to end on the dev server with the real worker and SMTP: a rule
for source ``change_order`` holds an order until its chain approves it through signed one-click links
(``any`` then ``all``; a link decides once; a tampered one decides nothing), then the project's workflow
applies it and the deposit's recoupment is spread over the amended plan; a rejected one is never applied
and says who rejected it and why; an order no rule matches is applied at once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, eventually, record_history, wait_mail
from tests.test_console_auth import browser, make_user, sign_in
from tests.webhooks.test_receivers import PUBLIC_URL, SECRETS, new_project, settled, uid
from worker import build_worker

pytestmark = pytest.mark.usefixtures("isolated_approval_rules")
LINK = re.compile(r"https?://[^\s\"<>]+(/approvals/change-orders/[A-Za-z0-9._\-]+)")


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, **SECRETS)
    async with build_worker(client, settings), api_client(settings, client) as live:
        yield live


async def _link(mailbox, approver: str) -> str:  # type: ignore[no-untyped-def]
    [message] = await wait_mail(
        mailbox, 1, where=lambda m: approver in m.rcpt_tos and "change order" in m.subject
    )
    return LINK.search(message.text_body() or "").group(1)  # type: ignore[union-attr]


async def _order(api, pid: str, number: int, status: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/projects/{pid}")).json()
        orders = [o for o in body["change_orders"] if o["number"] == number and o["status"] == status]
        return orders[0] if orders else None

    return await eventually(probe, what=f"change order {number} {status}")


async def test_a_change_order_waits_for_its_approvers_then_amends_the_project(  # type: ignore[no-untyped-def]
    api, mailbox, make_settings, temporal_env
) -> None:
    tag = uid()
    pm, cfo, ceo = (f"{who}-{tag}@firm.example.com" for who in ("pm", "cfo", "ceo"))
    rules = f"""
rules:
  - name: change-orders
    match: {{sources: [change_order], min_amount: "1000.00"}}
    steps:
      - {{approvers: [{pm}], mode: any}}
      - {{approvers: [{cfo}, {ceo}], mode: all}}
"""
    put = await api.put("/approval-rules", content=rules, headers={"Content-Type": "application/yaml"})
    assert put.status_code == 200, put.text
    project = await new_project(
        api,
        deposit={"percent": "20"},
        milestones=[
            {"key": "m1", "name": "Discovery", "amount": "3000.00"},
            {"key": "m2", "name": "Build", "amount": "2000.00"},
        ],
    )
    pid = project["id"]
    assert (await api.post(f"/projects/{pid}/contract-signed", json={})).status_code == 202
    await settled(api, pid, invoices=1)  # the deposit, 1000.00

    created = await api.post(
        f"/projects/{pid}/change-orders",
        json={"reason": "Mobile app", "add": [{"key": "m3", "name": "Mobile", "amount": "4000.00"}]},
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "pending_approval"
    assert order["approval"]["rule"] == "change-orders" and order["approval"]["awaiting"] == [pm]

    link = await _link(mailbox, pm)
    assert (await api.get(link)).status_code == 200
    tampered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert (await api.post(tampered, data={"decision": "approve"})).status_code == 400
    assert (await api.post(link, data={"decision": "approve"})).status_code == 200
    assert (await api.post(link, data={"decision": "approve"})).status_code == 409  # once
    assert (await api.post(await _link(mailbox, cfo), data={"decision": "approve"})).status_code == 200
    body = (await api.get(f"/projects/{pid}")).json()
    assert [m["key"] for m in body["milestones"]] == ["m1", "m2"]  # the CEO has not approved yet
    assert body["change_orders"][0]["approval"]["awaiting"] == [ceo]
    assert (await api.post(await _link(mailbox, ceo), data={"decision": "approve"})).status_code == 200

    applied = await _order(api, pid, 1, "applied")
    assert applied["contract_after"] == "9000.00"
    assert [d["approver"] for d in applied["approval"]["decisions"]] == [pm, cfo, ceo]
    response = await api.post(f"/projects/{pid}/milestones/m1/complete", json={})
    assert response.status_code == 202
    body = await settled(api, pid, invoices=2)
    assert body["milestones"][0]["deposit_applied"] == "333.33"  # 1000 × 3000 / 9000

    # Removing m2 moves the contract by 2000.00: the chain again; the PM rejects it (for the operator API).
    removal = await api.post(f"/projects/{pid}/change-orders", json={"reason": "Descoped", "remove": ["m2"]})
    assert removal.json()["status"] == "pending_approval"
    no_reason = await api.post(
        f"/projects/{pid}/change-orders/{removal.json()['id']}/decisions",
        json={"approver": pm, "decision": "reject"},
    )
    assert no_reason.status_code == 422 and "comment" in no_reason.text
    rejected = await api.post(
        f"/projects/{pid}/change-orders/{removal.json()['id']}/decisions",
        json={"approver": pm, "decision": "reject", "comment": "Client still wants it"},
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["note"] == f"rejected by {pm}: Client still wants it"
    body = (await api.get(f"/projects/{pid}")).json()
    assert [m["key"] for m in body["milestones"]] == ["m1", "m2", "m3"]
    settings = make_settings(temporal_env.client)
    async with browser(settings, temporal_env.client) as console:  # the console's project page says so
        await sign_in(console, make_user(settings, "viewer"))
        html = (await console.get(f"/app/projects/{pid}")).text
        assert "Change orders" in html and f"rejected by {pm}: Client still wants it" in html

    # A small change no rule matches is applied at once.
    small = await api.post(
        f"/projects/{pid}/change-orders",
        json={"reason": "Extra page", "change": [{"key": "m2", "amount": "2500.00"}]},
    )
    assert small.json()["status"] == "approved" and small.json()["approval"] is None
    assert (await _order(api, pid, 3, "applied"))["contract_after"] == "9500.00"

    # One to be signed too: approved by the chain (operators deciding for the approvers), it then waits
    # for its envelope, whose webhook applies it.
    envelope = f"co-{uid()}"
    signed = await api.post(
        f"/projects/{pid}/change-orders",
        json={
            "reason": "Hosting",
            "add": [{"key": "m4", "name": "Hosting", "amount": "1500.00"}],
            "signature": {"system": "docusign", "envelope_id": envelope},
        },
    )
    assert signed.json()["status"] == "pending_approval", signed.text
    for approver in (pm, cfo, ceo):
        decided = await api.post(
            f"/projects/{pid}/change-orders/{signed.json()['id']}/decisions",
            json={"approver": approver, "decision": "approve"},
        )
        assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "pending_signature"
    completed = send_as.docusign_envelope_completed(envelope, SECRETS["docusign_webhook_secret"])
    assert (await send(api, completed)).status_code == 200
    assert (await _order(api, pid, 4, "applied"))["contract_after"] == "11000.00"
    handle = temporal_env.client.get_workflow_handle(body["workflow_id"])
    await record_history(handle, "project_change_order_approved")
