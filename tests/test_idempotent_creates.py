"""``Idempotency-Key`` on every create endpoint, through the real API and workflows: the same key and body
answer with the first object (and say so), another body with that key is refused naming the header, and
without a key every request creates."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import pytest
import pytest_asyncio

from tests.support import api_client, customer_body
from worker import build_worker


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    async with build_worker(temporal_env.client, settings), api_client(settings, temporal_env.client) as live:
        yield live


def _soon() -> str:
    return (date.today() + timedelta(days=30)).isoformat()


# path template and body for one create, given a customer id
CREATES: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "customer": ("/customers", lambda _: customer_body()),
    "invoice": (
        "/invoices",
        lambda c: {"customer_id": c, "lines": [{"description": "Work", "unit_price": "10.00"}]},
    ),
    "project": (
        "/projects",
        lambda c: {
            "customer_id": c,
            "name": "Portal",
            "milestones": [{"key": "m1", "name": "A", "amount": "100"}],
        },
    ),
    "subscription": (
        "/subscriptions",
        lambda c: {
            "customer_id": c,
            "lines": [{"description": "Retainer", "unit_price": "500.00"}],
            "interval": "month",
            "start_date": _soon(),
        },
    ),
    "estimate": (
        "/estimates",
        lambda c: {
            "customer_id": c,
            "lines": [{"description": "Quote", "unit_price": "900.00"}],
            "valid_until": _soon(),
        },
    ),
    "expense": (
        "/customers/{c}/expenses",
        lambda _: {"description": "Train", "amount": "42.00", "incurred_on": date.today().isoformat()},
    ),
    "time entry": (
        "/customers/{c}/time-entries",
        lambda _: {
            "description": "Pairing",
            "hours": "2",
            "rate": "120.00",
            "incurred_on": date.today().isoformat(),
        },
    ),
}


@pytest.mark.parametrize("what", list(CREATES))
async def test_a_repeated_create_answers_with_the_first_object(api, what: str) -> None:  # type: ignore[no-untyped-def]
    customer = (await api.post("/customers", json=customer_body())).json()["id"]
    template, make = CREATES[what]
    path = template.format(c=customer)
    body = make(customer)
    key = {"Idempotency-Key": f"{what}-{uuid.uuid4()}"}

    first = await api.post(path, json=body, headers=key)
    assert first.status_code == 201, first.text
    assert first.headers["Idempotent-Replayed"] == "false"
    again = await api.post(path, json=body, headers=key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]

    other = dict(body)
    if "lines" in body:
        other["lines"] = [{**body["lines"][0], "description": "Something else"}]
    else:
        other["description" if "description" in body else "name"] = "Something else"
    refused = await api.post(path, json=other, headers=key)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]

    fresh = await api.post(path, json=body)
    assert fresh.status_code == 201 and fresh.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in fresh.headers
