"""Bad input is a 4xx naming the field, never a 500, and nothing that can never complete is accepted.

Each case here answered 500 (or 201 for something that then failed forever) before: NUL characters and
lone surrogates in text, bare NaN/Infinity/1e400 as money, a bigint-overflowing offset, a signed webhook
body nested 100,000 deep, dates in year 1 or 9999, a unit price of 10^30, a line worth 0.0001 cent,
``as_of=+0.0`` read as 1970-01-01.
"""

from __future__ import annotations

import json
import time

import pytest

from api.webhooks.signatures import sign_generic, sign_stripe
from tests.support import api_client, customer_body

pytestmark = pytest.mark.asyncio

LINE = {"description": "Consulting", "quantity": "1", "unit_price": "100.00"}


def assert_names(response, status: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    for word in words:
        assert word in response.text, (word, response.text)


async def _customer(api) -> str:  # type: ignore[no-untyped-def]
    created = await api.post("/customers", json=customer_body())
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def test_unstorable_text_is_a_422_naming_the_field(temporal_env, make_settings) -> None:
    settings = make_settings(temporal_env.client)
    async with api_client(settings, temporal_env.client) as api:
        refused = await api.post("/customers", json=customer_body(name="Globex\u0000 Corp"))
        assert_names(refused, 422, "name", "NUL")
        # A lone surrogate, as the JSON escape a client sends (the stdlib encoder cannot even write it).
        raw = json.dumps(customer_body(address="PLACEHOLDER")).replace("PLACEHOLDER", "\\ud800")
        refused = await api.post(
            "/customers", content=raw.encode(), headers={"Content-Type": "application/json"}
        )
        assert_names(refused, 422, "address", "unicode")
        customer_id = await _customer(api)
        line = {**LINE, "description": "x\u0000y"}
        refused = await api.post("/invoices", json={"customer_id": customer_id, "lines": [line]})
        assert_names(refused, 422, "lines", "NUL")
        # In the query string and the path: a 400 naming where.
        assert_names(await api.get("/invoices?status=open%00"), 400, "status", "NUL")
        assert_names(await api.get("/customers/%00"), 400, "path")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_json_money_is_a_422(temporal_env, make_settings, number: str) -> None:
    settings = make_settings(temporal_env.client)
    async with api_client(settings, temporal_env.client) as api:
        customer_id = await _customer(api)
        raw = (
            f'{{"customer_id": "{customer_id}", "lines": '
            f'[{{"description": "x", "quantity": "1", "unit_price": {number}}}]}}'
        )
        refused = await api.post("/invoices", content=raw, headers={"Content-Type": "application/json"})
        assert_names(refused, 422, "unit_price")
        raw_int = f'{{"name": "x", "emails": ["a@b.example.com"], "reminder_offsets": [{number}]}}'
        refused = await api.post("/customers", content=raw_int, headers={"Content-Type": "application/json"})
        assert_names(refused, 422, "reminder_offsets")


async def test_huge_offsets_are_a_422_on_every_list(temporal_env, make_settings) -> None:
    settings = make_settings(temporal_env.client)
    async with api_client(settings, temporal_env.client) as api:
        for path in ("/invoices", "/customers", "/subscriptions"):
            assert_names(await api.get(f"{path}?offset=9223372036854775808"), 422, "offset")
            assert (await api.get(f"{path}?offset=1000000")).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [("due_date", "9999-12-31"), ("due_date", "0001-01-01"), ("due_date", "1999-12-31"), ("due_date", 0)],
)
async def test_dates_outside_the_window_are_refused(temporal_env, make_settings, field, value) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    async with api_client(settings, temporal_env.client) as api:
        customer_id = await _customer(api)
        refused = await api.post(
            "/invoices", json={"customer_id": customer_id, "lines": [LINE], field: value}
        )
        assert_names(refused, 422, field)
        subscription = {
            "customer_id": customer_id,
            "lines": [LINE],
            "interval": "month",
            "start_date": "2026-01-31",
            "end_date": "9999-12-31",
        }
        assert_names(await api.post("/subscriptions", json=subscription), 422, "end_date")
        # as_of=+0.0 was read as a unix timestamp (1970-01-01); only ISO dates are dates.
        for as_of in ("+0.0", "0", "9999-12-31"):
            assert_names(await api.get(f"/reports/aging?as_of={as_of}"), 422, "as_of")
        assert (await api.get("/reports/aging?as_of=2026-12-01")).status_code == 200


async def test_amounts_are_bounded_and_lines_must_be_worth_something(temporal_env, make_settings) -> None:
    settings = make_settings(temporal_env.client, max_amount="50000")
    async with api_client(settings, temporal_env.client) as api:
        customer_id = await _customer(api)

        async def create(**line: str):  # type: ignore[no-untyped-def]
            return await api.post("/invoices", json={"customer_id": customer_id, "lines": [{**LINE, **line}]})

        assert_names(await create(unit_price="1" + "0" * 30), 422, "unit_price", "maximum amount of 50000")
        assert_names(await create(quantity="2", unit_price="25000.01"), 422, "maximum amount")
        assert_names(await create(quantity="0.0001", unit_price="10.00"), 422, "quantity", "rounds to 0.00")
        accepted = await create(quantity="3", unit_price="12.345")  # a unit price finer than the currency
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["total"] == "37.04"  # 37.035 rounded half-up, once, on the line


async def test_deeply_nested_signed_webhook_is_a_422(temporal_env, make_settings) -> None:
    settings = make_settings(
        temporal_env.client, generic_webhook_secret="generic-secret", stripe_webhook_secret="whsec_test"
    )
    body = b"[" * 100_000 + b"]" * 100_000
    async with api_client(settings, temporal_env.client) as api:
        headers = {"Content-Type": "application/json", **sign_generic(body, "generic-secret", time.time())}
        assert_names(await api.post("/webhooks/generic", content=body, headers=headers), 422, "nested")
        headers = {"Content-Type": "application/json", **sign_stripe(body, "whsec_test", time.time())}
        assert_names(await api.post("/webhooks/stripe", content=body, headers=headers), 422, "nested")
        nan = b'{"id": "evt-1", "type": "milestone.completed", "amount": NaN}'
        headers = {"Content-Type": "application/json", **sign_generic(nan, "generic-secret", time.time())}
        assert_names(await api.post("/webhooks/generic", content=nan, headers=headers), 422, "NaN")
        nul = b'{"id": "evt-\\u0000", "type": "milestone.completed"}'
        headers = {"Content-Type": "application/json", **sign_generic(nul, "generic-secret", time.time())}
        assert_names(await api.post("/webhooks/generic", content=nul, headers=headers), 422, "body.id", "NUL")


async def test_operator_bodies_nested_deep_are_a_4xx(temporal_env, make_settings) -> None:
    settings = make_settings(temporal_env.client)
    async with api_client(settings, temporal_env.client) as api:
        body = b"[" * 100_000 + b"]" * 100_000
        response = await api.post("/customers", content=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text


async def test_a_stripe_payment_above_the_maximum_waits_for_an_operator(temporal_env, make_settings) -> None:
    settings = make_settings(temporal_env.client, stripe_webhook_secret="whsec_test")
    async with api_client(settings, temporal_env.client) as api:
        customer_id = await _customer(api)
        invoice = (await api.post("/invoices", json={"customer_id": customer_id, "lines": [LINE]})).json()
        event = {
            "id": "evt_huge_1",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": "pi_huge_1",
                    "object": "payment_intent",
                    "amount_received": 10**20,
                    "currency": "usd",
                    "metadata": {"invoiceflow_invoice_id": invoice["id"]},
                }
            },
        }
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", **sign_stripe(body, "whsec_test", time.time())}
        kept = await api.post("/webhooks/stripe", content=body, headers=headers)
        assert kept.status_code == 202 and kept.json()["status"] == "unmatched", kept.text
        [waiting] = [e for e in (await api.get("/webhooks/unmatched")).json() if e["ref"] == "pi_huge_1"]
        assert "above the maximum" in waiting["note"]
        assert (await api.get(f"/invoices/{invoice['id']}")).json()["payments"] == []
