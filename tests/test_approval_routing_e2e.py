"""Approval routing by project category and client type, through the workflows: a milestone invoice of a
project in a category a rule names waits for that rule's chain; the same milestone of another category,
or for a client without the rule's tag, goes out at once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, customer_body, eventually
from tests.webhooks.test_receivers import PUBLIC_URL, SECRETS, settled
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

pytestmark = pytest.mark.usefixtures("isolated_approval_rules")

RULES = """
rules:
  - name: migrations-for-enterprise
    match: {project_categories: [migration], client_tags: [enterprise]}
    steps:
      - {approvers: [delivery-lead@firm.example.com]}
"""


async def _milestone_invoice(api, category: str, tags: list[str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    customer = (await api.post("/customers", json=customer_body(tags=tags))).json()
    project = (
        await api.post(
            "/projects",
            json={
                "customer_id": customer["id"],
                "name": f"Move to the cloud {uuid.uuid4().hex[:6]}",
                "category": category,
                "milestones": [{"key": "cutover", "name": "Cutover", "amount": "8000.00"}],
            },
        )
    ).json()
    done = send_as.generic_event(
        f"done-{uuid.uuid4()}",
        "milestone.completed",
        SECRETS["generic_webhook_secret"],
        project_id=project["id"],
        milestone_key="cutover",
    )
    assert (await send(api, done)).status_code == 200
    [invoice] = (await settled(api, project["id"], invoices=1))["invoices"]
    return invoice


async def test_project_category_and_client_tags_pick_the_chain(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, **SECRETS)
    async with build_worker(client, settings), api_client(settings, client) as api:
        assert (
            await api.put("/approval-rules", content=RULES, headers={"Content-Type": "application/yaml"})
        ).status_code == 200

        async def state_of(invoice: dict[str, Any], status: str):  # type: ignore[no-untyped-def]
            handle = client.get_workflow_handle_for(InvoiceWorkflow.run, f"invoice-{invoice['id']}")
            state = await handle.query(InvoiceWorkflow.state)
            return state if state.status == status else None

        held = await _milestone_invoice(api, "migration", ["enterprise"])
        state = await eventually(lambda: state_of(held, "pending_approval"), what="held for approval")
        assert state.approval_rule == "migrations-for-enterprise"
        assert state.awaiting_approvers == ["delivery-lead@firm.example.com"]

        other_category = await _milestone_invoice(api, "support", ["enterprise"])
        await eventually(lambda: state_of(other_category, "open"), what="another category goes out")
        other_client = await _milestone_invoice(api, "migration", ["smb"])
        await eventually(lambda: state_of(other_client, "open"), what="another client type goes out")
