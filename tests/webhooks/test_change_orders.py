"""Change orders end to end on the dev server: one signed through DocuSign adds a milestone and raises the
contract; the deposit still outstanding is spread over what is left, and deposit plus every invoice adds
up to the amended contract. Billed milestones never change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest_asyncio

from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, eventually
from tests.webhooks.test_receivers import PUBLIC_URL, SECRETS, new_project, settled, uid
from worker import build_worker


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, **SECRETS)
    async with build_worker(client, settings), api_client(settings, client) as live:
        yield live


async def _complete(api, pid: str, key: str, invoices: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await api.post(f"/projects/{pid}/milestones/{key}/complete", json={})
    assert response.status_code == 202, response.text
    return await settled(api, pid, invoices=invoices)


async def _change_order(api, pid: str, status: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/projects/{pid}")).json()
        return body if body["change_orders"] and body["change_orders"][-1]["status"] == status else None

    return await eventually(probe, what=f"change order {status}")


async def test_a_docusign_signed_change_order_adds_a_milestone_and_the_sum_is_the_amended_contract(
    api,
) -> None:  # type: ignore[no-untyped-def]
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
    body = await settled(api, pid, invoices=1)
    assert [i["total"] for i in body["invoices"]] == ["1000.00"]  # 20 % of 5000.00
    body = await _complete(api, pid, "m1", 2)
    assert body["milestones"][0]["deposit_applied"] == "600.00"  # 1000 × 3000 / 5000

    envelope = f"co-env-{uid()}"
    order = await api.post(
        f"/projects/{pid}/change-orders",
        json={
            "reason": "Client asked for a mobile app",
            "reference": "CR-7",
            "add": [{"key": "m3", "name": "Mobile app", "amount": "4000.00"}],
            "signature": {"system": "docusign", "envelope_id": envelope},
        },
    )
    assert order.status_code == 201, order.text
    assert order.json()["status"] == "pending_signature"
    assert order.json()["contract_after"] == "9000.00"
    # Not applied before it is signed.
    body = (await api.get(f"/projects/{pid}")).json()
    assert body["contract_amount"] == "5000.00" and [m["key"] for m in body["milestones"]] == ["m1", "m2"]
    assert body["change_orders"][0]["reason"] == "Client asked for a mobile app"

    # A billed milestone never changes: refused, naming the field.
    refused = await api.post(
        f"/projects/{pid}/change-orders",
        json={"reason": "cheaper discovery", "change": [{"key": "m1", "amount": "10.00"}]},
    )
    assert refused.status_code == 422 and "change" in refused.text and "billed" in refused.text

    signed = send_as.docusign_envelope_completed(envelope, SECRETS["docusign_webhook_secret"])
    for _ in range(2):  # DocuSign redelivers: applied once
        assert (await send(api, signed)).status_code == 200
    body = await _change_order(api, pid, "applied")
    assert body["contract_amount"] == "9000.00"
    assert [(m["key"], m["amount"], m["status"]) for m in body["milestones"]] == [
        ("m1", "3000.00", "billed"),
        ("m2", "2000.00", "pending"),
        ("m3", "4000.00", "pending"),
    ]
    assert len(body["invoices"]) == 2  # the signature billed nothing itself

    # The outstanding 400.00 of the deposit is spread over m2 and m3 (it would all have gone on m2).
    body = await _complete(api, pid, "m2", 3)
    m2 = next(m for m in body["milestones"] if m["key"] == "m2")
    assert m2["deposit_applied"] == "133.33"  # 400 × 2000 / 6000, half-up
    body = await _complete(api, pid, "m3", 4)
    m3 = next(m for m in body["milestones"] if m["key"] == "m3")
    assert m3["deposit_applied"] == "266.67"  # the last milestone recoups what is left
    totals = sorted(i["total"] for i in body["invoices"])
    assert totals == ["1000.00", "1866.67", "2400.00", "3733.33"]
    assert sum(Decimal(t) for t in totals) == Decimal(body["contract_amount"]) == Decimal("9000.00")
    assert body["status"] == "completed" and body["left"] == "0.00"


async def test_an_unsigned_change_order_applies_at_once_with_its_own_deposit(api) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(
        api,
        deposit={"amount": "500.00"},
        milestones=[
            {"key": "m1", "name": "Build", "amount": "2000.00"},
            {"key": "m2", "name": "Launch", "amount": "1000.00"},
        ],
    )
    pid = project["id"]
    assert (await api.post(f"/projects/{pid}/contract-signed", json={})).status_code == 202
    await settled(api, pid, invoices=1)
    order = await api.post(
        f"/projects/{pid}/change-orders",
        json={
            "reason": "Smaller launch, extra training",
            "remove": ["m2"],
            "add": [{"key": "training", "name": "Training", "amount": "1500.00"}],
            "deposit": {"amount": "300.00"},
        },
        headers={"Idempotency-Key": f"co-{uid()}"},
    )
    assert order.status_code == 201, order.text
    body = await _change_order(api, pid, "applied")
    assert body["contract_amount"] == "3500.00"
    assert [m["key"] for m in body["milestones"]] == ["m1", "training"]
    body = await settled(api, pid, invoices=2)  # the change order's own deposit
    assert sorted(i["total"] for i in body["invoices"]) == ["300.00", "500.00"]
    await _complete(api, pid, "m1", 3)
    body = await _complete(api, pid, "training", 4)
    totals = [Decimal(i["total"]) for i in body["invoices"]]
    assert sum(totals) == Decimal("3500.00")
    assert body["deposit"]["recouped"] == body["deposit"]["billed"] == "800.00"
