"""The API's /metrics in-process: approval links used and refused (with the reason), requests counted by
route template, the access log line with the link token redacted, and the inbox gauges read from
PostgreSQL at scrape time."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from persistence.db import session_scope
from persistence.models import WebhookEvent
from tests.support import api_client, customer_body, eventually, wait_mail
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

pytestmark = pytest.mark.usefixtures("isolated_approval_rules")
RULES = """
rules:
  - name: any-invoice
    match: {min_amount: "0.01"}
    steps:
      - {approvers: [%s], mode: any}
"""
LINK = re.compile(r"https?://[^\s\"<>]+(/approvals/[A-Za-z0-9._\-]+)")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_approval_links_used_and_refused_are_counted(
    temporal_env, make_settings, mailbox, caplog
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client)
    links = "invoiceflow_approval_links_total"
    before = {
        "used": value(links, outcome="used", reason=""),
        "again": value(links, outcome="refused", reason="used_or_superseded"),
        "tampered": value(links, outcome="refused", reason="tampered"),
        "route": value(
            "invoiceflow_http_requests_total", method="GET", route="/invoices/{invoice_id}", status="200"
        ),
    }
    caplog.set_level(logging.INFO, logger="invoiceflow.http")
    async with build_worker(client, settings), api_client(settings, client) as api:
        approver = f"approver-{uuid.uuid4().hex[:8]}@firm.example.com"
        rules = await api.put(
            "/approval-rules", content=RULES % approver, headers={"Content-Type": "application/yaml"}
        )
        assert rules.status_code == 200, rules.text
        customer = (await api.post("/customers", json=customer_body())).json()
        invoice = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Work", "unit_price": "100.00"}],
                },
            )
        ).json()
        [message] = await wait_mail(mailbox, 1, where=lambda m: approver in m.rcpt_tos)
        link = LINK.search(message.text_body() or "").group(1)  # type: ignore[union-attr]
        assert (await api.post(link, data={"decision": "approve"})).status_code == 200
        assert (await api.post(link, data={"decision": "approve"})).status_code == 409
        assert (await api.post(link[:-3] + "AAA", data={"decision": "approve"})).status_code == 400
        handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])

        async def issued():  # type: ignore[no-untyped-def]
            state = await handle.query(InvoiceWorkflow.state)
            return state if state.status == "open" else None

        await eventually(issued, what="issued after approval")
        assert (await api.get(f"/invoices/{invoice['id']}")).status_code == 200
        scraped = await api.get("/metrics")
    assert scraped.status_code == 200
    assert value(links, outcome="used", reason="") == before["used"] + 1
    assert value(links, outcome="refused", reason="used_or_superseded") == before["again"] + 1
    assert value(links, outcome="refused", reason="tampered") == before["tampered"] + 1
    route = value(
        "invoiceflow_http_requests_total", method="GET", route="/invoices/{invoice_id}", status="200"
    )
    assert route >= before["route"] + 1
    names = {f.name for f in text_string_to_metric_families(scraped.text)}
    assert {"invoiceflow_http_requests", "invoiceflow_approval_links", "invoiceflow_inbox_backlog"} <= names
    assert not any(invoice["id"] in line for line in scraped.text.splitlines())  # no raw paths as labels

    token = link.removeprefix("/approvals/")
    access = [
        r for r in caplog.records if r.getMessage() == "http.request" and r.route == "/approvals/{value}"
    ]
    assert access and all(r.path == "/approvals/[REDACTED]" for r in access)
    assert not any(token in r.path for r in caplog.records if hasattr(r, "path"))
    decisions = [r for r in caplog.records if r.getMessage() == "approval_link.decision"]
    assert [r.outcome for r in decisions] == ["used", "refused", "refused"]


async def test_inbox_gauges_come_from_postgresql(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)

    async def scrape(api) -> dict[str, float]:  # type: ignore[no-untyped-def]
        text = (await api.get("/metrics")).text
        return {
            s.name: s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name.startswith("invoiceflow_inbox")
        }

    # Without the lifespan the inbox dispatcher does not run, so nothing hands the row over while we look.
    app = create_app(settings, temporal_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as api:
        before = await scrape(api)
        ref = f"DEAL-{uuid.uuid4().hex[:6]}"
        with session_scope(settings.require_database_url()) as session:
            session.add(
                WebhookEvent(
                    provider="hubspot",
                    dedupe_key=ref,
                    kind="deal_won",
                    system="hubspot",
                    ref=ref,
                    status="received",
                    payload={},
                    received_at=datetime.now(UTC) - timedelta(hours=2),
                )
            )
        after = await scrape(api)
        with session_scope(settings.require_database_url()) as session:
            session.query(WebhookEvent).filter(WebhookEvent.dedupe_key == ref).delete()
    assert after["invoiceflow_inbox_backlog"] == before["invoiceflow_inbox_backlog"] + 1
    assert after["invoiceflow_inbox_oldest_undispatched_age_seconds"] >= 2 * 3600 - 5


async def test_a_webhook_delivery_is_one_log_line_with_the_access_fields(make_settings, caplog) -> None:  # type: ignore[no-untyped-def]
    """One line per delivery, not an access line and a delivery line (formatting and redacting a line
    cost a tenth of a delivery's CPU): `webhook.delivery` carries the access log's fields."""
    from standins import webhooks as send_as

    settings = make_settings(generic_webhook_secret="generic-log-secret")
    caplog.set_level(logging.INFO, logger="invoiceflow.http")
    delivery = send_as.generic_event(f"e-{uuid.uuid4()}", "milestone.completed", "not-the-secret")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings)), base_url="http://invoiceflow.test"
    ) as api:
        assert (await send_as.send(api, delivery)).status_code == 401
        assert (await api.get("/healthz")).status_code == 200
    lines = [r for r in caplog.records if r.name == "invoiceflow.http"]
    [webhook] = [r for r in lines if r.getMessage() == "webhook.delivery"]
    assert (webhook.method, webhook.path, webhook.route, webhook.status) == (
        "POST",
        "/webhooks/generic",
        "/webhooks/generic",
        401,
    )
    assert (webhook.provider, webhook.outcome, webhook.reason) == ("generic", "refused", "bad_signature")
    assert webhook.duration_ms >= 0 and webhook.client
    assert [r.route for r in lines if r.getMessage() == "http.request"] == ["/healthz"]
