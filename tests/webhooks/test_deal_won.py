"""A won deal that no project knows: the project workflow reads the deal from the CRM (a HubSpot or
Pipedrive stand-in over real HTTP), creates the customer and bills the deal's own line items once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from persistence.project_refs import project_id_for_deal
from standins import webhooks as send_as
from standins.crm.hubspot import create_hubspot_standin
from standins.crm.pipedrive import create_pipedrive_standin
from standins.server import serve
from standins.webhooks import send
from tests.support import api_client, eventually, to, wait_mail
from worker import build_worker

HUBSPOT_SECRET = "hubspot-app-secret"
PUBLIC_URL = "https://billing.example.com"


@pytest_asyncio.fixture
async def crm(temporal_env, make_settings) -> AsyncIterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    hubspot_app, hubspot = create_hubspot_standin()
    pipedrive_app, pipedrive = create_pipedrive_standin()
    with serve(hubspot_app) as hs, serve(pipedrive_app) as pd:
        client = temporal_env.client
        settings = make_settings(
            client,
            public_url=PUBLIC_URL,
            hubspot_webhook_secret=HUBSPOT_SECRET,
            hubspot_api_base_url=hs.base_url,
            hubspot_api_token=hubspot.token,
            pipedrive_webhook_secret="pd-pass",
            pipedrive_api_base_url=pd.base_url,
            pipedrive_api_token=pipedrive.api_token,
            default_currency="EUR",
        )
        async with build_worker(client, settings), api_client(settings, client) as api:
            yield {"api": api, "hubspot": hubspot, "pipedrive": pipedrive, "settings": settings}


async def _project(api, project_id: str, invoices: int = 1) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        response = await api.get(f"/projects/{project_id}")
        body = response.json() if response.status_code == 200 else None
        return body if body and len(body["invoices"]) >= invoices else None

    return await eventually(probe, what=f"project {project_id} billed")


async def test_hubspot_deal_won_without_a_project_bills_its_line_items_once(crm, mailbox) -> None:  # type: ignore[no-untyped-def]
    api, hubspot = crm["api"], crm["hubspot"]
    tag = uuid.uuid4().hex[:8]
    company = hubspot.add_company(f"Initech {tag}", domain="initech.example.com")
    contact = hubspot.add_contact(f"ap-{tag}@initech.example.com", firstname="Peter", lastname="Gibbons")
    deal_id = hubspot.add_deal(
        f"Initech migration {tag}",
        currency="EUR",
        contact_ids=[contact],
        company_ids=[company],
        line_items=[
            {"name": "Migration workshop", "quantity": "1.5", "price": "1234.56"},
            {"name": "Licences", "quantity": "12", "price": "19.99", "tax_rate": "19"},
        ],
    )
    hubspot.rate_limit(1, retry_after=1)  # the first CRM call is throttled; the activity waits and retries
    delivery = send_as.hubspot_deal_won(deal_id, HUBSPOT_SECRET, public_url=PUBLIC_URL)
    for _ in range(3):
        assert (await send(api, delivery)).status_code == 200
    # HubSpot retries with a new eventId for the same business event now and then: still one invoice.
    assert (
        await send(api, send_as.hubspot_deal_won(deal_id, HUBSPOT_SECRET, public_url=PUBLIC_URL))
    ).status_code == 200

    project = await _project(api, str(project_id_for_deal("hubspot", deal_id)))
    assert project["source"] == "hubspot" and project["external_refs"] == {"hubspot_deal": deal_id}
    assert project["contract_amount"] == "2091.72"  # 1.5 × 1234.56 = 1851.84, + 12 × 19.99 = 239.88
    [invoice_ref] = project["invoices"]

    async def sent():  # type: ignore[no-untyped-def]
        invoice = (await api.get(f"/invoices/{invoice_ref['id']}")).json()
        return invoice if invoice["status"] == "open" else None

    invoice = await eventually(sent, what="deal invoice sent")
    assert [(l["description"], l["quantity"], l["unit_price"], l["tax_rate"]) for l in invoice["lines"]] == [
        ("Migration workshop", "1.5", "1234.56", "0"),
        ("Licences", "12", "19.99", "19"),
    ]
    assert invoice["total"] == "2137.30"  # 239.88 × 19 % = 45.58 (half-up)
    customer = (await api.get(f"/customers/{invoice['customer_id']}")).json()
    assert customer["name"] == f"Initech {tag}" and customer["emails"] == [f"ap-{tag}@initech.example.com"]
    assert customer["currency"] == "EUR"
    await wait_mail(mailbox, 1, where=to(f"ap-{tag}@initech.example.com"))
    assert (
        sum(n for call, n in hubspot.calls.items() if call.startswith("GET /crm/v3/objects/deals")) >= 2
    )  # 429, then the read


async def test_a_deal_the_crm_does_not_know_goes_back_to_the_unmatched_list(crm) -> None:  # type: ignore[no-untyped-def]
    api = crm["api"]
    missing = str(8_000_000_000 + uuid.uuid4().int % 10**8)
    assert (
        await send(api, send_as.hubspot_deal_won(missing, HUBSPOT_SECRET, public_url=PUBLIC_URL))
    ).status_code == 200

    async def unmatched():  # type: ignore[no-untyped-def]
        rows = [e for e in (await api.get("/webhooks/unmatched")).json() if e["ref"] == missing]
        return rows if rows and "not" in rows[0]["note"] else None

    [row] = await eventually(unmatched, what="unknown deal listed as unmatched")
    assert row["kind"] == "deal_won" and missing in row["note"]
    assert (await api.get(f"/projects/{project_id_for_deal('hubspot', missing)}")).status_code == 404


async def test_pipedrive_deal_won_with_a_deposit_plan(crm, make_settings) -> None:  # type: ignore[no-untyped-def]
    api, pipedrive = crm["api"], crm["pipedrive"]
    tag = uuid.uuid4().hex[:8]
    org = pipedrive.add_organization(f"ACME {tag}")
    person = pipedrive.add_person("Wile Coyote", email=f"wile-{tag}@acme.example.com", org_id=org)
    deal_id = pipedrive.add_deal(
        f"ACME rollout {tag}",
        currency="USD",
        person_id=person,
        org_id=org,
        products=[{"name": "Rollout", "quantity": "1", "item_price": "12000"}],
    )
    delivery = send_as.pipedrive_deal_won(deal_id, "invoiceflow", "pd-pass")
    for _ in range(3):
        assert (await send(api, delivery)).status_code == 200
    project = await _project(api, str(project_id_for_deal("pipedrive", str(deal_id))))
    assert project["invoices"][0]["total"] == "12000.00" and project["currency"] == "USD"
