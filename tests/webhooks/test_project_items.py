"""Expenses and time logged against a project roll into the project's next invoice of any kind (here a
milestone invoice), once, at issue; a deposit invoice takes none; items of another customer's or no
project stay out. Time entries are validated at the API (422 naming the field)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.support import api_client, eventually
from tests.webhooks.test_receivers import PUBLIC_URL, SECRETS, new_project, settled
from worker import build_worker


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, expense_approval_threshold="500.00", **SECRETS)
    async with build_worker(client, settings), api_client(settings, client) as live:
        yield live


async def _open(api, invoice_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["status"] == "open" else None

    return await eventually(probe, what="invoice open")


async def test_project_expenses_and_time_roll_into_its_next_milestone_invoice(api) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(
        api,
        deposit={"amount": "200.00"},
        milestones=[
            {"key": "m1", "name": "Build", "amount": "1000.00"},
            {"key": "m2", "name": "Launch", "amount": "500.00"},
        ],
    )
    pid, cid = project["id"], project["customer_id"]
    expense = {"description": "Train to client site", "amount": "120.00", "incurred_on": "2026-12-01"}
    assert (
        await api.post(f"/customers/{cid}/expenses", json={**expense, "project_ref": pid})
    ).status_code == 201
    # Above the approval threshold: waits for a decision, not billed meanwhile.
    big = {**expense, "description": "Hardware", "amount": "900.00", "project_ref": pid}
    pending = (await api.post(f"/customers/{cid}/expenses", json=big)).json()
    assert pending["status"] == "pending_approval"
    # Logged against no project: stays for the customer's subscription invoices.
    other = {**expense, "description": "Other work", "project_ref": "not-a-project"}
    assert (await api.post(f"/customers/{cid}/expenses", json=other)).status_code == 201

    no_rate = {"person": "Ada", "date": "2026-12-02", "hours": "2", "description": "Setup"}
    refused = await api.post(f"/projects/{pid}/time-entries", json=no_rate)
    assert refused.status_code == 422 and "rate" in refused.text
    zero = await api.post(f"/projects/{pid}/time-entries", json={**no_rate, "rate": "90.00", "hours": "0"})
    assert zero.status_code == 422 and "hours" in zero.text
    logged = await api.post(f"/projects/{pid}/time-entries", json={**no_rate, "rate": "90.00"})
    assert logged.status_code == 201 and logged.json()["amount"] == "180.00"

    # The deposit invoice takes none of them.
    assert (await api.post(f"/projects/{pid}/contract-signed", json={})).status_code == 202
    [deposit] = (await settled(api, pid, invoices=1))["invoices"]
    assert (await _open(api, deposit["id"]))["total"] == "200.00"

    assert (await api.post(f"/projects/{pid}/milestones/m1/complete", json={})).status_code == 202
    body = await settled(api, pid, invoices=2)
    m1 = next(i for i in body["invoices"] if i["id"] != deposit["id"])
    invoice = await _open(api, m1["id"])
    # 1000.00 less the deposit recouped from it (200 × 1000 / 1500 = 133.33), plus 120.00 and 2 h × 90.00.
    assert invoice["total"] == "1166.67"
    assert sorted(line["description"].split(" (")[0] for line in invoice["lines"])[-2:] == [
        "Setup",
        "Train to client site",
    ]

    approved = await api.post(f"/billable-items/{pending['id']}/approve", json={})
    assert approved.status_code == 200
    assert (await api.post(f"/projects/{pid}/milestones/m2/complete", json={})).status_code == 202
    body = await settled(api, pid, invoices=3)
    m2 = next(i for i in body["invoices"] if i["id"] not in (deposit["id"], m1["id"]))
    assert (await _open(api, m2["id"]))["total"] == "1333.33"  # 500 − 66.67 + the approved 900.00
    items = (await api.get(f"/customers/{cid}/billable-items?state=unbilled")).json()
    assert [i["description"] for i in items] == ["Other work"]
