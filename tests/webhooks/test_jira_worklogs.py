"""Jira Cloud worklogs as time entries, end to end on the dev server: worklog webhooks signed as Jira signs
admin webhooks (``X-Hub-Signature: sha256=``) land on the project linked to their issues, once however often
Jira delivers them; an edited worklog changes the unbilled entry, a deleted one withdraws it, and the
threshold bills the moment it is reached. A forged or tampered delivery is a 401, a malformed one a 422
naming the field, a worklog on an issue no project knows waits in the unmatched list."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest_asyncio

from api.webhooks.signatures import sign_jira
from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, customer_body, eventually
from tests.webhooks.test_receivers import PUBLIC_URL, SECRETS, uid
from worker import build_worker

SECRET = SECRETS["jira_webhook_secret"]
HOUR = 3600


@pytest_asyncio.fixture
async def api(temporal_env, make_settings) -> AsyncIterator[Any]:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, public_url=PUBLIC_URL, **SECRETS)
    async with build_worker(client, settings), api_client(settings, client) as live:
        yield live


async def _unbilled(api, pid: str, hours: str, entries: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/projects/{pid}")).json()
        tm = body["time_and_materials"]
        return body if Decimal(tm["unbilled_hours"]) == Decimal(hours) and tm["entries"] == entries else None

    return await eventually(probe, what=f"{hours} h unbilled in {entries} entries")


async def test_worklogs_become_time_entries_and_bill_at_the_threshold(api) -> None:  # type: ignore[no-untyped-def]
    one, two = (str(random.randint(10**6, 10**9)) for _ in range(2))
    customer = (await api.post("/customers", json=customer_body(reminder_offsets=[]))).json()
    response = await api.post(
        "/projects",
        json={
            "customer_id": customer["id"],
            "name": f"Support {uid()}",
            "currency": "USD",
            "time_and_materials": {"rate": "100.00", "threshold_hours": "10"},
            "external_refs": {"jira_issue_id": f"{one},{two}"},
        },
    )
    assert response.status_code == 201, response.text
    pid = response.json()["id"]
    assert response.json()["external_refs"] == {"jira_issue_id": f"{one},{two}"}
    w = f"{random.randint(10**6, 10**9)}"

    first = send_as.jira_worklog(f"{w}1", one, 3 * HOUR, SECRET)
    for _ in range(2):  # Jira retries with the same webhook identifier
        assert (await send(api, first)).status_code == 200
    adf = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": "Reviewed"}, {"type": "text", "text": "the API"}]}]}  # fmt: skip
    second = send_as.jira_worklog(f"{w}2", two, 9000, SECRET, comment=adf, author="Grace Hopper")
    assert (await send(api, second)).json()["events"][0]["status"] == "accepted"
    await _unbilled(api, pid, "5.50", 2)

    edited = send_as.jira_worklog(
        f"{w}2", two, 4 * HOUR, SECRET, event="worklog_updated", author="Grace Hopper", comment=adf
    )
    assert (await send(api, edited)).status_code == 200
    await _unbilled(api, pid, "7.00", 2)
    third = send_as.jira_worklog(f"{w}3", one, HOUR, SECRET)
    assert (await send(api, third)).status_code == 200
    await _unbilled(api, pid, "8.00", 3)
    deleted = send_as.jira_worklog(f"{w}3", one, HOUR, SECRET, event="worklog_deleted")
    assert (await send(api, deleted)).status_code == 200
    await _unbilled(api, pid, "7.00", 2)

    fourth = send_as.jira_worklog(f"{w}4", two, 3 * HOUR, SECRET, started="2026-12-02T23:30:00.000-0800")
    assert (await send(api, fourth)).status_code == 200

    async def billed():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/projects/{pid}")).json()
        return body if body["invoices"] else None

    [invoice] = (await eventually(billed, what="the threshold invoice"))["invoices"]
    assert invoice["total"] == "1000.00"  # 3 + 4 + 3 h × 100.00
    lines = (await api.get(f"/invoices/{invoice['id']}")).json()["lines"]
    assert sorted((line["description"].split(": ")[1].split(",")[0], line["quantity"]) for line in lines) == [
        ("Ada Lovelace", "6.00"),
        ("Grace Hopper", "4.00"),
    ]
    items = (await api.get(f"/customers/{customer['id']}/billable-items")).json()
    assert {i["description"] for i in items} == {"Development", "Reviewed the API"}
    assert "2026-12-02" in {i["incurred_on"] for i in items}  # the author's own day, not UTC's

    # A billed worklog edited in Jira stays as billed.
    late = send_as.jira_worklog(f"{w}1", one, 9 * HOUR, SECRET, event="worklog_updated")
    assert (await send(api, late)).status_code == 200
    body = await _unbilled(api, pid, "0", 3)
    assert body["time_and_materials"]["billed"] == "1000.00"


async def test_jira_worklogs_refuse_bad_signatures_and_malformed_bodies(api) -> None:  # type: ignore[no-untyped-def]
    good = send_as.jira_worklog("1", "2", HOUR, SECRET)
    assert (await send(api, send_as.jira_worklog("1", "2", HOUR, "not-the-secret"))).status_code == 401
    assert (await send(api, good.with_body(good.body.replace(b"3600", b"7200")))).status_code == 401

    async def signed(change) -> Any:  # type: ignore[no-untyped-def]
        payload = json.loads(good.body)
        change(payload["worklog"])
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **sign_jira(body, SECRET)}
        return await api.post("/webhooks/jira", content=body, headers=headers)

    response = await signed(lambda w: w.update(timeSpentSeconds="1h"))
    assert response.status_code == 422 and "worklog.timeSpentSeconds" in response.text
    response = await signed(lambda w: w.pop("issueId"))
    assert response.status_code == 422 and "worklog.issueId" in response.text
    response = await signed(lambda w: w.update(started="yesterday"))
    assert response.status_code == 422 and "worklog.started" in response.text
    stray = await send(api, send_as.jira_worklog(uid(), f"999{random.randint(10**6, 10**9)}", HOUR, SECRET))
    assert stray.status_code == 202 and stray.json()["events"][0]["status"] == "unmatched"
