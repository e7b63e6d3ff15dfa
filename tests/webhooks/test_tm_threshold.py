"""A time & materials project on a threshold, end to end on the dev server: time arrives from Toggl Track
webhooks (signed as Toggl signs them) through the webhook inbox, and the project is billed the moment the
40th unbilled hour lands, not before, each entry once however often Toggl delivers it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, customer_body, eventually
from tests.webhooks.test_receivers import PUBLIC_URL, SECRETS, settled, uid
from worker import build_worker

TOGGL_SECRET = "PGuRrhCFajIyEvFlreKL"
CLOCKIFY_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.clockify-webhook-token"
EIGHT_HOURS = 8 * 3600


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(
        client,
        public_url=PUBLIC_URL,
        toggl_webhook_secret=TOGGL_SECRET,
        clockify_webhook_secret=CLOCKIFY_TOKEN,
        **SECRETS,
    )
    async with build_worker(client, settings), api_client(settings, client) as live:
        yield live


async def _tm_project(api, rule: dict[str, str], refs: dict[str, str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    customer = (await api.post("/customers", json=customer_body(reminder_offsets=[]))).json()
    body = {
        "customer_id": customer["id"],
        "name": f"Support hours {uid()}",
        "currency": "USD",
        "time_and_materials": rule,
        "external_refs": refs,
    }
    response = await api.post("/projects", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _entries(api, pid: str, count: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/projects/{pid}")).json()
        return body if body["time_and_materials"]["entries"] >= count else None

    return await eventually(probe, what=f"{count} time entries on {pid}")


async def test_billed_the_moment_the_40th_hour_lands_from_toggl(api) -> None:  # type: ignore[no-untyped-def]
    toggl_project = random.randint(10**6, 10**9)
    project = await _tm_project(
        api, {"rate": "150.00", "threshold_hours": "40"}, {"toggl_project": str(toggl_project)}
    )
    pid = project["id"]
    assert project["time_and_materials"]["rule"] == {"rate": "150.00", "threshold_hours": "40"}
    base = random.randint(10**6, 10**9)

    # Toggl validates a new subscription with a signed ping whose code is echoed back.
    ping = await send(api, send_as.toggl_ping(TOGGL_SECRET, "abc-123"))
    assert ping.status_code == 200 and ping.json() == {"validation_code": "abc-123"}

    # 32 hours: four entries, the first delivered twice and then updated (a new event for the same entry).
    first = send_as.toggl_time_entry(base, toggl_project, EIGHT_HOURS, TOGGL_SECRET)
    for _ in range(2):
        assert (await send(api, first)).status_code == 200
    updated = send_as.toggl_time_entry(
        base, toggl_project, EIGHT_HOURS, TOGGL_SECRET, event_id=base * 10 + 7, action="updated"
    )
    assert (await send(api, updated)).status_code == 200
    for i in range(1, 4):
        delivery = send_as.toggl_time_entry(
            base + i, toggl_project, EIGHT_HOURS, TOGGL_SECRET, start=f"2026-12-0{i + 1}T09:00:00+00:00"
        )
        assert (await send(api, delivery)).status_code == 200
    body = await _entries(api, pid, 4)
    # The billing activity stores the entry and checks the threshold in one transaction: 32 h bill nothing.
    assert body["time_and_materials"]["entries"] == 4
    assert body["time_and_materials"]["unbilled_hours"] == "32.00"
    assert body["invoices"] == []

    # A running timer (no stop yet) is not time to bill.
    running = send_as.toggl_time_entry(base + 50, toggl_project, -1, TOGGL_SECRET)
    assert (await send(api, running)).json()["status"] == "ignored"

    # The fifth entry makes 40 hours: billed at once.
    fifth = send_as.toggl_time_entry(
        base + 4, toggl_project, EIGHT_HOURS, TOGGL_SECRET, start="2026-12-05T09:00:00+00:00"
    )
    assert (await send(api, fifth)).status_code == 200

    async def billed():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/projects/{pid}")).json()
        return body if body["invoices"] else None

    body = await eventually(billed, what="the threshold invoice")
    [invoice] = body["invoices"]
    assert invoice["total"] == "6000.00"  # 40 h × 150.00
    assert body["time_and_materials"]["unbilled_hours"] == "0"
    detail = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert [(line["quantity"], line["unit_price"]) for line in detail["lines"]] == [("40.00", "150.00")]

    # The next entry starts a new count: nothing billed for 8 hours.
    sixth = send_as.toggl_time_entry(base + 5, toggl_project, EIGHT_HOURS, TOGGL_SECRET)
    assert (await send(api, sixth)).status_code == 200
    body = await _entries(api, pid, 6)
    assert len(body["invoices"]) == 1 and body["time_and_materials"]["unbilled_hours"] == "8.00"


async def test_toggl_and_clockify_refuse_bad_signatures_and_malformed_bodies(api) -> None:  # type: ignore[no-untyped-def]
    good = send_as.toggl_time_entry(1, 2, EIGHT_HOURS, TOGGL_SECRET)
    forged = send_as.toggl_time_entry(1, 2, EIGHT_HOURS, "not-the-secret")
    assert (await send(api, forged)).status_code == 401
    tampered = good.with_body(good.body.replace(b"28800", b"99999"))
    assert (await send(api, tampered)).status_code == 401
    malformed = send_as.toggl_time_entry(1, 2, EIGHT_HOURS, TOGGL_SECRET)
    bad_body = malformed.body.replace(b'"duration":28800', b'"duration":"8h"')
    from api.webhooks.time_tracking import sign_toggl

    response = await api.post(
        "/webhooks/toggl",
        content=bad_body,
        headers={"Content-Type": "application/json", **sign_toggl(bad_body, TOGGL_SECRET)},
    )
    assert response.status_code == 422 and "payload.duration" in response.text

    clockify = send_as.clockify_time_entry(
        "c1", "p1", "2026-12-01T09:00:00Z", "2026-12-01T17:00:00Z", "wrong-token"
    )
    assert (await send(api, clockify)).status_code == 401


async def test_clockify_entries_count_towards_an_amount_threshold(api) -> None:  # type: ignore[no-untyped-def]
    clockify_project = f"cp-{uid()}"
    project = await _tm_project(
        api, {"rate": "100.00", "threshold_amount": "1000.00"}, {"clockify_project": clockify_project}
    )
    pid = project["id"]
    entry = uid()
    for i, (start, end) in enumerate(
        [("2026-12-01T09:00:00Z", "2026-12-01T14:30:00Z"), ("2026-12-02T09:00:00Z", "2026-12-02T13:30:00Z")]
    ):
        delivery = send_as.clockify_time_entry(f"{entry}-{i}", clockify_project, start, end, CLOCKIFY_TOKEN)
        assert (await send(api, delivery)).status_code == 200
        assert (await send(api, delivery)).status_code == 200  # redelivered: stored once

    async def billed():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/projects/{pid}")).json()
        return body if body["invoices"] else None

    body = await eventually(billed, what="the amount threshold invoice")
    assert [i["total"] for i in body["invoices"]] == ["1000.00"]  # 5.5 h + 4.5 h at 100.00
    assert body["time_and_materials"]["entries"] == 2


async def test_time_over_the_cap_waits_until_a_change_order_raises_it(api, temporal_env) -> None:  # type: ignore[no-untyped-def]
    project = await _tm_project(api, {"rate": "100.00", "threshold_hours": "10", "cap": "1500.00"}, {})
    pid = project["id"]
    handle = temporal_env.client.get_workflow_handle(project["workflow_id"])

    async def processed(count: int) -> None:
        async def probe():  # type: ignore[no-untyped-def]
            return (await handle.query("state"))["processed"] >= count

        await eventually(probe, what=f"{count} triggers processed")

    async def log(ext: str, hours: str, on: str) -> None:
        body = {"person": "Ada", "date": on, "hours": hours, "description": "Ops", "external_id": ext}
        assert (await api.post(f"/projects/{pid}/time-entries", json=body)).status_code == 201

    await log("e1", "8", "2026-12-01")
    await log("e2", "4", "2026-12-02")
    body = await settled(api, pid, invoices=1)
    assert [i["total"] for i in body["invoices"]] == ["1200.00"]
    await log("e3", "8", "2026-12-03")
    await log("e4", "1", "2026-12-04")
    await log("e5", "2", "2026-12-05")
    await processed(5)
    body = (await api.get(f"/projects/{pid}")).json()
    # 11 h reach the threshold, but 800.00 more would pass the cap: e3 waits, and e4, e5 behind it.
    assert len(body["invoices"]) == 1 and body["time_and_materials"]["unbilled_hours"] == "11"

    refused = await api.post(f"/projects/{pid}/change-orders", json={"reason": "x", "tm_cap": "-1"})
    assert refused.status_code == 422 and "tm_cap" in refused.text
    order = await api.post(
        f"/projects/{pid}/change-orders",
        json={"reason": "Extended support", "reference": "PO-88", "tm_cap": "3000.00"},
    )
    assert order.status_code == 201, order.text
    body = await settled(api, pid, invoices=2)
    assert [i["total"] for i in body["invoices"]] == ["1200.00", "1100.00"]
    assert body["time_and_materials"]["rule"]["cap"] == "3000.00"
    assert body["change_orders"][0]["status"] == "applied"


async def test_bad_time_input_is_a_422_naming_the_field(api) -> None:  # type: ignore[no-untyped-def]
    customer = (await api.post("/customers", json=customer_body())).json()
    base = {"customer_id": customer["id"], "name": "T&M", "currency": "USD"}
    for rule, field in [
        ({"threshold_hours": "40"}, "time_and_materials.rate"),
        ({"rate": "150.00", "bill_every": "fortnight"}, "bill_every"),
        ({"rate": "150.00", "bill_every": "week", "threshold_hours": "4"}, "exactly one"),
    ]:
        response = await api.post("/projects", json={**base, "time_and_materials": rule})
        assert response.status_code == 422 and field in response.text, response.text
    neither = await api.post("/projects", json=base)
    assert neither.status_code == 422 and "time_and_materials" in neither.text

    project = await _tm_project(api, {"rate": "150.00", "threshold_hours": "40"}, {})
    secret = SECRETS["generic_webhook_secret"]
    missing = send_as.generic_event(
        f"t-{uid()}",
        "time.logged",
        secret,
        project_id=project["id"],
        fields={"hours": "8", "date": "2026-12-01"},
    )
    response = await send(api, missing)
    assert response.status_code == 422 and "person" in response.text
    bad_date = send_as.generic_event(
        f"t-{uid()}",
        "time.logged",
        secret,
        project_id=project["id"],
        fields={"hours": "8", "date": "01/12/2026", "person": "Ada"},
    )
    response = await send(api, bad_date)
    assert response.status_code == 422 and "date" in response.text
    entry = {"person": "Ada", "date": "2026-12-01", "hours": "8", "description": "x", "rate": "1.234"}
    response = await api.post(f"/projects/{project['id']}/time-entries", json=entry)
    assert response.status_code == 422 and "rate" in response.text
    body = (await api.get(f"/projects/{project['id']}")).json()
    assert body["time_and_materials"]["entries"] == 0  # nothing half-written


async def test_time_entries_and_change_orders_take_an_idempotency_key(api) -> None:  # type: ignore[no-untyped-def]
    project = await _tm_project(api, {"rate": "150.00", "threshold_hours": "40"}, {})
    pid, key = project["id"], f"k-{uid()}"
    entry = {"person": "Ada", "date": "2026-12-01", "hours": "3", "description": "Ops"}
    first = await api.post(f"/projects/{pid}/time-entries", json=entry, headers={"Idempotency-Key": key})
    again = await api.post(f"/projects/{pid}/time-entries", json=entry, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and first.headers["Idempotent-Replayed"] == "false"
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await api.post(
        f"/projects/{pid}/time-entries", json={**entry, "hours": "4"}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.text
    body = (await api.get(f"/projects/{pid}")).json()
    assert body["time_and_materials"]["entries"] == 1

    order = {"reason": "More support", "tm_cap": "9000.00"}
    made = await api.post(f"/projects/{pid}/change-orders", json=order, headers={"Idempotency-Key": key})
    repeat = await api.post(f"/projects/{pid}/change-orders", json=order, headers={"Idempotency-Key": key})
    assert made.status_code == 201 and repeat.json()["id"] == made.json()["id"]
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert len((await api.get(f"/projects/{pid}")).json()["change_orders"]) == 1
