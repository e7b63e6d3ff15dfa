"""The HubSpot and Pipedrive clients against their stand-ins, over real HTTP on loopback.

Each test seeds a stand-in, runs the real ``httpx`` client against ``serve()``'s port and checks what came
back (exact Decimals, all pages, typed errors) and what the stand-in saw (``state.calls``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Generic, TypeVar

import httpx
import pytest

from integrations import (
    CrmAuthFailed,
    CrmLineItem,
    CrmNotFound,
    CrmRateLimited,
    CrmTransient,
    HubSpotClient,
    PipedriveClient,
)
from standins.crm import HubSpotState, PipedriveState, create_hubspot_standin, create_pipedrive_standin
from standins.server import free_port, serve

S = TypeVar("S")

DEAL = "GET /crm/v3/objects/deals/{deal_id}"
BATCH = "POST /crm/v3/objects/line_items/batch/read"
ASSOCIATIONS = "GET /crm/v4/objects/deals/{deal_id}/associations/{to_type}"
PD_DEAL = "GET /api/v2/deals/{deal_id}"
PD_PRODUCTS = "GET /api/v2/deals/{deal_id}/products"


@dataclass
class Served(Generic[S]):
    state: S
    base_url: str


@pytest.fixture
def hubspot() -> Iterator[Served[HubSpotState]]:
    app, state = create_hubspot_standin()
    with serve(app) as served:
        yield Served(state, served.base_url)


@pytest.fixture
def pipedrive() -> Iterator[Served[PipedriveState]]:
    app, state = create_pipedrive_standin()
    with serve(app) as served:
        yield Served(state, served.base_url)


def exact(items: tuple[CrmLineItem, ...], attribute: str) -> list[str]:
    """The Decimals' own text: equality alone would accept 1234.560 for 1234.56, and a float is no Decimal."""
    values = [getattr(item, attribute) for item in items]
    assert all(type(value) is Decimal for value in values), values
    return [str(value) for value in values]


# --- HubSpot -------------------------------------------------------------------------------------------


def seed_hubspot_deal(state: HubSpotState, **overrides: Any) -> str:
    contact = state.add_contact("ana@acme.example", firstname="Ana", lastname="López", company="Old name")
    company = state.add_company("ACME GmbH", domain="acme.example")
    line_items = [
        {
            "name": "Discovery workshop",
            "quantity": "1.5",
            "price": "1234.56",
            "sku": "WS-1",
            "tax_rate": "19",
            "description": "Two half-days on site",
        },
        {"name": "Support hours", "quantity": "3", "price": "0.10", "sku": "SUP-H"},
        {"name": "Licence", "quantity": "2", "price": "99.99"},
    ]
    return state.add_deal(
        "ACME rollout",
        currency="EUR",
        close_date="2024-06-10T23:30:00.000Z",
        line_items=line_items,
        contact_ids=[contact],
        company_ids=[company],
        **overrides,
    )


async def test_hubspot_deal_comes_back_with_exact_decimals(hubspot: Served[HubSpotState]) -> None:
    deal_id = seed_hubspot_deal(hubspot.state)

    async with HubSpotClient(hubspot.base_url, hubspot.state.token) as client:
        deal = await client.fetch_deal(int(deal_id))  # webhooks carry objectId as a JSON number

    assert (deal.provider, deal.deal_id, deal.name) == ("hubspot", deal_id, "ACME rollout")
    assert [item.name for item in deal.line_items] == ["Discovery workshop", "Support hours", "Licence"]
    assert exact(deal.line_items, "quantity") == ["1.5", "3", "2"]
    assert exact(deal.line_items, "unit_price") == ["1234.56", "0.10", "99.99"]
    assert [item.amount for item in deal.line_items] == [
        Decimal("1851.84"),
        Decimal("0.30"),
        Decimal("199.98"),
    ]
    assert [item.sku for item in deal.line_items] == ["WS-1", "SUP-H", None]
    assert [item.tax_rate for item in deal.line_items] == [Decimal("19"), None, None]
    assert deal.line_items[0].description == "Two half-days on site"
    assert type(deal.amount) is Decimal and deal.amount == Decimal("2052.12")
    assert deal.currency == "EUR"
    assert deal.close_date == date(2024, 6, 10)
    assert (deal.raw_stage, deal.won) == ("closedwon", True)
    assert deal.company_name == "ACME GmbH" and deal.company_id is not None
    assert deal.contact is not None
    assert (deal.contact.name, deal.contact.email, deal.contact.company) == (
        "Ana López",
        "ana@acme.example",
        "ACME GmbH",
    )
    assert hubspot.state.calls == {
        DEAL: 1,
        BATCH: 1,
        "GET /crm/v3/objects/contacts/{object_id}": 1,
        "GET /crm/v3/objects/companies/{object_id}": 1,
    }


async def test_hubspot_custom_pipeline_stage_is_passed_through(hubspot: Served[HubSpotState]) -> None:
    deal_id = seed_hubspot_deal(hubspot.state, stage="1194720", hs_is_closed_won=True, pipeline="887766")

    async with HubSpotClient(hubspot.base_url, hubspot.state.token) as client:
        deal = await client.fetch_deal(deal_id)

    assert (deal.raw_stage, deal.won) == ("1194720", True)


async def test_hubspot_reads_every_line_item_of_a_large_deal(hubspot: Served[HubSpotState]) -> None:
    """520 lines: the embedded association list stops at 100, the v4 list pages at 500, batch reads at 100."""
    items = [{"name": f"Item {n:03}", "quantity": "1", "price": f"{n}.01"} for n in range(520)]
    deal_id = hubspot.state.add_deal("Big deal", line_items=items)

    async with HubSpotClient(hubspot.base_url, hubspot.state.token) as client:
        deal = await client.fetch_deal(deal_id)

    assert [item.name for item in deal.line_items] == [item["name"] for item in items]
    assert exact(deal.line_items, "unit_price") == [item["price"] for item in items]
    assert hubspot.state.calls[ASSOCIATIONS] == 2
    assert hubspot.state.calls[BATCH] == 6


async def test_hubspot_missing_deal_is_not_found(hubspot: Served[HubSpotState]) -> None:
    async with HubSpotClient(hubspot.base_url, hubspot.state.token) as client:
        with pytest.raises(CrmNotFound) as raised:
            await client.fetch_deal("9199999999")
        with pytest.raises(CrmNotFound):
            await client.fetch_deal("../contacts/1")  # never reaches a URL

    assert raised.value.status == 404 and "OBJECT_NOT_FOUND" in str(raised.value)
    assert not raised.value.retryable
    assert hubspot.state.calls == {DEAL: 1}


async def test_hubspot_bad_token_is_auth_failure(hubspot: Served[HubSpotState]) -> None:
    deal_id = seed_hubspot_deal(hubspot.state)

    async with HubSpotClient(hubspot.base_url, "pat-na1-wrong") as client:
        with pytest.raises(CrmAuthFailed) as raised:
            await client.fetch_deal(deal_id)

    assert raised.value.status == 401 and "INVALID_AUTHENTICATION" in str(raised.value)
    assert "pat-na1-wrong" not in str(raised.value)
    assert not raised.value.retryable


@pytest.mark.parametrize(
    "fault, expected",
    [
        ({"interval_ms": 2000}, 2.0),  # no Retry-After: the window's length from X-HubSpot-RateLimit-*
        ({"interval_ms": 10_000, "retry_after": 7}, 7.0),  # Retry-After wins when HubSpot sends it
        ({"policy": "SECONDLY", "interval_ms": 10_000}, 1.0),  # the per-second window was the one hit
    ],
    ids=["interval-header", "retry-after", "secondly-policy"],
)
async def test_hubspot_429_is_rate_limited_with_retry_after(
    hubspot: Served[HubSpotState], fault: dict[str, Any], expected: float
) -> None:
    deal_id = seed_hubspot_deal(hubspot.state)
    hubspot.state.rate_limit(times=2, route=BATCH, **fault)

    async with HubSpotClient(hubspot.base_url, hubspot.state.token) as client:
        for _ in range(2):
            with pytest.raises(CrmRateLimited) as raised:
                await client.fetch_deal(deal_id)
            assert raised.value.retry_after == expected
            assert raised.value.retryable and raised.value.status == 429
        deal = await client.fetch_deal(deal_id)  # the fault is used up

    assert len(deal.line_items) == 3
    assert hubspot.state.calls[BATCH] == 3


async def test_hubspot_line_item_deleted_during_read_is_transient(hubspot: Served[HubSpotState]) -> None:
    deal_id = seed_hubspot_deal(hubspot.state)
    gone = hubspot.state.associations[(deal_id, "line_items")][1]
    del hubspot.state.line_items[gone]  # still associated, no longer readable: the batch read answers 207

    async with HubSpotClient(hubspot.base_url, hubspot.state.token) as client:
        with pytest.raises(CrmTransient, match=gone):
            await client.fetch_deal(deal_id)


async def test_unreachable_api_is_transient() -> None:
    port = free_port()  # nothing listens there
    async with HubSpotClient(f"http://127.0.0.1:{port}", "pat-na1-x", timeout=2) as hubspot:
        with pytest.raises(CrmTransient) as raised:
            await hubspot.fetch_deal("1")
    assert raised.value.retryable
    async with PipedriveClient(f"http://127.0.0.1:{port}", "token", timeout=2) as pipedrive:
        with pytest.raises(CrmTransient):
            await pipedrive.fetch_deal("1")


def test_hubspot_standin_speaks_hubspot(hubspot: Served[HubSpotState]) -> None:
    """The shapes the client relies on, read raw: if the stand-in drifted, the client tests would lie."""
    deal_id = seed_hubspot_deal(hubspot.state)
    auth = {"Authorization": f"Bearer {hubspot.state.token}"}
    url = f"{hubspot.base_url}/crm/v3/objects/deals/{deal_id}"

    body = httpx.get(url, params={"properties": "amount", "associations": "line_items"}, headers=auth).json()
    assert body["properties"]["amount"] == "2052.12"  # every property is a string
    assert list(body["associations"]) == ["line items"]  # with a space, as HubSpot spells it

    unauthorized = httpx.get(url)
    assert unauthorized.status_code == 401
    assert unauthorized.json()["status"] == "error"
    assert unauthorized.json()["category"] == "INVALID_AUTHENTICATION"
    assert unauthorized.json()["correlationId"]

    hubspot.state.rate_limit()
    limited = httpx.get(url, headers=auth)
    assert limited.status_code == 429 and limited.json()["category"] == "RATE_LIMITS"
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in limited.headers
    assert httpx.get(url, headers=auth).status_code == 200


# --- Pipedrive -----------------------------------------------------------------------------------------


def seed_pipedrive_deal(state: PipedriveState, products: list[dict[str, Any]] | None = None) -> int:
    org = state.add_organization("ACME GmbH")
    person = state.add_person("Ana López", email="ana@acme.example", org_id=org)
    if products is None:
        products = [
            {
                "name": "Discovery workshop",
                "quantity": "1.5",
                "item_price": "1234.56",
                "tax": "19",
                "comments": "Two half-days on site",
            },
            {"name": "Support hours", "quantity": "3", "item_price": "0.10", "tax_method": "none"},
            {
                "name": "Licence",
                "quantity": "2",
                "item_price": "99.99",
                "tax": "7",
                "tax_method": "inclusive",
            },
        ]
    return state.add_deal(
        "ACME rollout",
        currency="EUR",
        person_id=person,
        org_id=org,
        won_time="2024-09-27T14:25:27Z",
        products=products,
    )


async def test_pipedrive_deal_comes_back_with_exact_decimals(pipedrive: Served[PipedriveState]) -> None:
    deal_id = seed_pipedrive_deal(pipedrive.state)

    async with PipedriveClient(pipedrive.base_url, pipedrive.state.api_token) as client:
        deal = await client.fetch_deal(deal_id)

    assert (deal.provider, deal.deal_id, deal.name) == ("pipedrive", str(deal_id), "ACME rollout")
    assert [item.name for item in deal.line_items] == ["Discovery workshop", "Support hours", "Licence"]
    assert exact(deal.line_items, "quantity") == ["1.5", "3", "2"]
    assert exact(deal.line_items, "unit_price") == ["1234.56", "0.10", "99.99"]
    assert [item.amount for item in deal.line_items] == [
        Decimal("1851.84"),
        Decimal("0.30"),
        Decimal("199.98"),
    ]
    assert [item.tax_rate for item in deal.line_items] == [Decimal("19"), None, Decimal("7")]
    assert [item.tax_inclusive for item in deal.line_items] == [False, False, True]
    assert deal.line_items[0].description == "Two half-days on site"
    assert type(deal.amount) is Decimal and deal.amount == Decimal("2052.12")
    assert (deal.currency, deal.close_date) == ("EUR", date(2024, 9, 27))
    assert (deal.raw_stage, deal.won) == ("won", True)
    assert deal.company_name == "ACME GmbH"
    assert deal.contact is not None
    assert (deal.contact.name, deal.contact.email, deal.contact.company) == (
        "Ana López",
        "ana@acme.example",
        "ACME GmbH",
    )
    assert pipedrive.state.calls == {
        PD_DEAL: 1,
        PD_PRODUCTS: 1,
        "GET /api/v2/persons/{person_id}": 1,
        "GET /api/v2/organizations/{org_id}": 1,
    }


async def test_pipedrive_follows_the_products_cursor(pipedrive: Served[PipedriveState]) -> None:
    products = [{"name": f"Sprint {n}", "quantity": "0.5", "item_price": f"1234.5{n}"} for n in range(7)]
    deal_id = seed_pipedrive_deal(pipedrive.state, products)

    async with PipedriveClient(pipedrive.base_url, pipedrive.state.api_token, page_size=3) as client:
        deal = await client.fetch_deal(deal_id)

    assert [item.name for item in deal.line_items] == [p["name"] for p in products]
    assert exact(deal.line_items, "unit_price") == [p["item_price"] for p in products]
    assert pipedrive.state.calls[PD_PRODUCTS] == 3  # 3 + 3 + 1


async def test_pipedrive_missing_deal_is_not_found(pipedrive: Served[PipedriveState]) -> None:
    async with PipedriveClient(pipedrive.base_url, pipedrive.state.api_token) as client:
        with pytest.raises(CrmNotFound) as raised:
            await client.fetch_deal("999999")

    assert raised.value.status == 404 and "Deal not found" in str(raised.value)
    assert not raised.value.retryable


async def test_pipedrive_bad_token_is_auth_failure(pipedrive: Served[PipedriveState]) -> None:
    deal_id = seed_pipedrive_deal(pipedrive.state)

    async with PipedriveClient(pipedrive.base_url, "not-the-token") as client:
        with pytest.raises(CrmAuthFailed) as raised:
            await client.fetch_deal(deal_id)

    assert raised.value.status == 401 and "unauthorized access" in str(raised.value)
    assert "not-the-token" not in str(raised.value)


@pytest.mark.parametrize(
    "fault, expected",
    [
        ({"reset": 3}, 3.0),  # x-ratelimit-reset: seconds until the window resets
        ({"reset": 2, "retry_after": 9}, 9.0),  # Retry-After wins when sent
    ],
    ids=["ratelimit-reset", "retry-after"],
)
async def test_pipedrive_429_is_rate_limited_with_retry_after(
    pipedrive: Served[PipedriveState], fault: dict[str, Any], expected: float
) -> None:
    products = [{"name": f"Item {n}", "quantity": "1", "item_price": "10"} for n in range(4)]
    deal_id = seed_pipedrive_deal(pipedrive.state, products)
    pipedrive.state.rate_limit(times=1, route=PD_PRODUCTS, **fault)

    async with PipedriveClient(pipedrive.base_url, pipedrive.state.api_token, page_size=2) as client:
        with pytest.raises(CrmRateLimited) as raised:
            await client.fetch_deal(deal_id)
        assert raised.value.retry_after == expected and raised.value.retryable
        deal = await client.fetch_deal(deal_id)

    assert len(deal.line_items) == 4


async def test_pipedrive_deleted_person_leaves_no_contact(pipedrive: Served[PipedriveState]) -> None:
    deal_id = seed_pipedrive_deal(pipedrive.state)
    person = pipedrive.state.deals[deal_id]["person_id"]
    pipedrive.state.persons[person]["is_deleted"] = True

    async with PipedriveClient(pipedrive.base_url, pipedrive.state.api_token) as client:
        deal = await client.fetch_deal(deal_id)

    assert deal.contact is None and deal.company_name == "ACME GmbH" and len(deal.line_items) == 3


def test_pipedrive_standin_speaks_pipedrive(pipedrive: Served[PipedriveState]) -> None:
    """Money as JSON numbers with their exact digits: what makes ``.json()`` (floats) unsafe for clients."""
    deal_id = seed_pipedrive_deal(pipedrive.state)
    url = f"{pipedrive.base_url}/api/v2/deals/{deal_id}/products"

    raw = httpx.get(url, headers={"x-api-token": pipedrive.state.api_token}).text
    assert '"item_price":1234.56,' in raw and '"quantity":1.5,' in raw
    assert httpx.get(url, params={"api_token": pipedrive.state.api_token}).status_code == 200

    unauthorized = httpx.get(url, headers={"x-api-token": "nope"})
    assert unauthorized.status_code == 401
    assert unauthorized.json()["success"] is False and unauthorized.json()["error"] == "unauthorized access"

    pipedrive.state.rate_limit(reset=2)
    limited = httpx.get(url, headers={"x-api-token": pipedrive.state.api_token})
    assert limited.status_code == 429 and limited.json()["success"] is False
    assert (limited.headers["x-ratelimit-remaining"], limited.headers["x-ratelimit-reset"]) == ("0", "2")
